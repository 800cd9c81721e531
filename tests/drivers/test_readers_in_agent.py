"""Acceptance: a real AgentDaemon with one reader of each hardware back-end, each fed by
a real software peer (socat pty, a video file, pcscd + vpcd, nfcpy's UDP transport). Each
read is decided by the access engine and recorded as an event; a peer that dies shows as
DOWN in the daemon's status and the reader recovers without restarting the daemon."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.store.membership import SyntheticMember, bulk_insert, synthetic_changes
from drivers.protocols import CardRead
from simulators.member_generator import member_record, uid_for
from tests.drivers.nfc_peer import SimulatedCard, free_udp_port
from tests.drivers.pcsc_peer import PCSCD, VPCD_LIB, PcscPeer
from tests.drivers.qr_video import Scene, write_video
from tests.drivers.reader_helpers import wait_for
from tests.drivers.socat_pty import SocatPty

CODE = "EDGE-MEMBER-CODE-10"
# members 5, 10, 15, 20, 25 hold plain memberships (index % 5 == 0): unlimited entries
SERIAL_M, CAMERA_M, PCSC_M, NFC_M, SERIAL_M2 = 5, 10, 15, 20, 25


def _gate_and_reader(name: str, url: str, options: str = "") -> str:
    return f"""
[[gates]]
id = "g-{name}"
url = "sim:"
zone = "main"

[[readers]]
id = "{name}"
url = "{url}"
gate = "g-{name}"
direction = "in"
{options}
"""


def _status(daemon: AgentDaemon, reader: str) -> dict[str, Any]:
    return next(p for p in daemon.status()["peripherals"] if p["id"] == reader)


def test_each_reader_kind_decides_and_recovers_in_a_running_daemon(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    pty = SocatPty(tmp_path)
    pty.start()
    video = write_video(tmp_path / "door.avi",
                        [Scene(None, 10), Scene(CODE, 8, "blur"), Scene(None, 5)])
    nfc_port = free_udp_port()
    have_pcsc = PCSCD is not None and VPCD_LIB.exists()
    peripherals = (
        _gate_and_reader("serial", f"serial://{pty.device}?format=hex")
        + _gate_and_reader("camera", f"camera:file://{video}", "loop = false")
        + _gate_and_reader("nfc", f"nfc:udp:127.0.0.1:{nfc_port}",
                           "absent_ms = 1500\nholdoff_ms = 500")
    )
    if have_pcsc:  # pcsc_peer skips with the reason when the packages are missing
        peripherals += _gate_and_reader("pcsc", "pcsc:?reader=Virtual PCD 00 00")
    daemon = AgentDaemon(load_config(write_config(gates=peripherals)))
    members = []
    for index in (SERIAL_M, CAMERA_M, PCSC_M, NFC_M, SERIAL_M2):
        record = {k: v for k, v in member_record(index).items() if k != "kind"}
        if index == CAMERA_M:
            record = {**record, "uid": None, "code": CODE}
        members.append(SyntheticMember.model_validate(record))
    with daemon.store.transaction() as conn:
        bulk_insert(conn, *synthetic_changes(daemon.config.hmac_key(), members))

    decided: list[tuple[str, bool, str, int | None]] = []
    lock = threading.Lock()
    handle = daemon.handle_read

    def recording(read: CardRead) -> Any:
        outcome = handle(read)
        with lock:
            decided.append((read.reader_id, outcome.granted, outcome.decision.reason.value,
                            outcome.event.seq if outcome.event else None))
        return outcome

    daemon.handle_read = recording  # type: ignore[method-assign]
    pcsc = PcscPeer(tmp_path / "pcsc") if have_pcsc else None
    card = SimulatedCard(nfc_port)
    try:
        if pcsc is not None:
            pcsc.start()
        daemon.start()

        def granted(reader: str) -> int:
            with lock:
                return sum(1 for r, g, _, seq in decided if r == reader and g and seq)

        wait_for(lambda: _status(daemon, "serial")["health"] == "ok", 5, "serial up")
        pty.write(uid_for(SERIAL_M).encode() + b"\r\n")
        card.place(uid_for(NFC_M))
        if pcsc is not None:
            pcsc.insert(uid_for(PCSC_M))
        wait_for(lambda: granted("serial") == 1, 5, "serial decision")
        wait_for(lambda: granted("camera") == 1, 10, "camera decision")
        wait_for(lambda: granted("nfc") == 1, 5, "nfc decision")
        if pcsc is not None:
            wait_for(lambda: granted("pcsc") == 1, 5, "pcsc decision")
        for name in ("serial", "camera", "nfc", *(["pcsc"] if pcsc else [])):
            assert len(daemon.gates[f"g-{name}"].pulses) == 1, name  # type: ignore[attr-defined]
        assert _status(daemon, "camera")["health"] == "degraded"  # loop=false: end of file

        # the serial port vanishes and comes back: DOWN, then reads again, same daemon
        pty.kill()
        wait_for(lambda: _status(daemon, "serial")["health"] == "down", 5, "serial down")
        pty.start()
        wait_for(lambda: _status(daemon, "serial")["health"] == "ok", 10, "serial back")
        pty.write(uid_for(SERIAL_M2).encode() + b"\n")
        wait_for(lambda: granted("serial") == 2, 5, "serial decision after replug")

        if pcsc is not None:  # pcscd dies and is restarted
            pcsc.close()
            wait_for(lambda: _status(daemon, "pcsc")["health"] == "down", 5, "pcsc down")
            pcsc.start()
            wait_for(lambda: _status(daemon, "pcsc")["health"] == "ok", 10, "pcsc back")
            time.sleep(1.0)  # the card was taken away: it counts again after the hold-off
            pcsc.insert(uid_for(PCSC_M))
            wait_for(lambda: granted("pcsc") == 2, 10, "pcsc decision after restart")

        status = daemon.status()
        assert status["last_seq"] == len([d for d in decided if d[3] is not None])
        assert all(g for _, g, _, _ in decided), decided
    finally:
        daemon.stop()
        card.close()
        pty.kill()
        if pcsc is not None:
            pcsc.close()
