"""A simulated ISO 14443A card for nfcpy's UDP transport: a second ContactlessFrontend
(nfcpy's own ``udp`` driver) listening as a Type 2 tag (NTAG/MIFARE Ultralight, SEL_RES
00) or MIFARE Classic (SEL_RES 08) with a given UID. It answers the reader's SENS_REQ,
anticollision and SELECT frames exactly as nfcpy's UDP device implements them; nothing
of the reader side is faked.

Limit of the UDP transport: a poll that finds no card waits 1 s for an answer (fixed in
nfcpy's udp driver), so removal is seen about a second late; tests use absent_ms > 1 s.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable

import nfc
import nfc.clf

SEL_RES = {"ntag": "00", "classic": "08"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimulatedCard:
    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._uid: str | None = None
        self._family = "ntag"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nfc-card")
        self._thread.start()

    def place(self, uid: str, family: str = "ntag") -> None:
        with self._lock:
            self._uid, self._family = uid, family

    def remove(self) -> None:
        with self._lock:
            self._uid = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{self.port}")
        try:
            while not self._stop.is_set():
                with self._lock:
                    uid, family = self._uid, self._family
                if uid is None:
                    clf.device.mute()  # no card: nobody bound to the port, polls go unanswered
                    self._stop.wait(0.05)
                    continue
                target = nfc.clf.LocalTarget("106A")
                target.sens_res = bytearray.fromhex("4400")
                target.sdd_res = bytearray.fromhex(uid)
                target.sel_res = bytearray.fromhex(SEL_RES[family])
                # answers anticollision for up to 0.3 s, then we re-check place()/remove()
                clf.listen(target, 0.3)
        finally:
            clf.close()


# ATS: FSCI 8 (256-byte frames), FWI 10 (≈0.3 s frame waiting time), no CID/NAD
ATS = bytes.fromhex("0578809002")


class SimulatedPhone:
    """A phone in host card emulation on nfcpy's UDP transport: an ISO-DEP target
    (SEL_RES 20) that answers RATS with an ATS and carries APDUs in ISO-DEP I-blocks to
    ``applet`` (command APDU -> response APDU), the way Android hands them to an app's
    HostApduService. Blocks other than I-blocks and DESELECT end the session."""

    def __init__(self, port: int, applet: Callable[[bytes], bytes]) -> None:
        self.port = port
        self.applet = applet
        self.present = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nfc-phone")
        self._thread.start()

    def place(self) -> None:
        self.present.set()

    def remove(self) -> None:
        self.present.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _session(self, clf: nfc.ContactlessFrontend, rats: bytes) -> None:
        if not rats or rats[0] != 0xE0:
            return
        response = ATS
        while not self._stop.is_set():
            try:
                command = clf.exchange(bytearray(response), timeout=1.0)
            except nfc.clf.CommunicationError:
                return
            if not command:
                return
            pcb = command[0]
            if pcb & 0xE6 == 0x02:  # I-block (no chaining, no CID)
                response = bytes([0x02 | (pcb & 0x01)]) + self.applet(bytes(command[1:]))
            elif pcb == 0xC2:  # S(DESELECT): confirm and end
                clf.exchange(bytearray(command), timeout=0.05)
                return
            else:
                return

    def _run(self) -> None:
        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{self.port}")
        try:
            while not self._stop.is_set():
                if not self.present.is_set():
                    clf.device.mute()
                    self._stop.wait(0.05)
                    continue
                target = nfc.clf.LocalTarget("106A")
                target.sens_res = bytearray.fromhex("0400")
                target.sdd_res = bytearray(b"\x08" + os.urandom(3))  # random, as phones do
                target.sel_res = bytearray.fromhex("20")
                activated = clf.listen(target, 0.3)
                if activated is not None and activated.tt4_cmd:
                    with contextlib.suppress(nfc.clf.CommunicationError):
                        self._session(clf, bytes(activated.tt4_cmd))
        finally:
            clf.close()
