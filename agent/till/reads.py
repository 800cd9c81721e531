"""Reads at the till's own reader (``[[readers]]`` with ``till = true``): a cashier's card
signs that cashier in; a scanned barcode (a ``serial:`` scanner with ``format=qr``) adds
its product to the open sale.

The agent's reader path (agent/daemon.py ``handle_read``, ``edge-sim tap``) hands each
read here. A card's UID is compared only as a keyed hash (contracts/credential_hash.py,
the tenant's HMAC key; ``card_hash`` of ``[[pos.till.cashiers]]``) and never kept, logged
or sent. What a read means for the screen waits in a short queue the page polls
(``GET /till/api/reads``): a card sign-in is handed out once, to the first poll, within
``HOLD_S`` seconds, and only to a page on the device itself (a loopback client: the
till's touch screen), so nobody else on the network can take a cashier's session by
polling; a product is handed out only to a signed-in page.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.till.cashiers import Cashiers
from agent.till.catalogue import Catalogue
from contracts.credential_hash import credential_hash
from drivers.protocols import CardRead

HOLD_S = 15.0
MAX_WAITING = 20


@dataclass(frozen=True, slots=True)
class TillReadView:
    """What the reader path reports back (``edge-sim tap`` prints it)."""

    status: str  # signed_in | unknown_card | product | unknown_barcode
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "till", "status": self.status, "message": self.message}


@dataclass
class _Waiting:
    seq: int
    at: float
    data: dict[str, Any]
    taken: bool = field(default=False)


class TillReads:
    def __init__(self, cashiers: Cashiers, hmac_key: bytes,
                 catalogue: Any) -> None:
        self.cashiers = cashiers
        self.hmac_key = hmac_key
        self._catalogue = catalogue  # () -> the till's current Catalogue
        self._lock = threading.Lock()
        self._seq = 0
        self._waiting: deque[_Waiting] = deque(maxlen=MAX_WAITING)

    def offer(self, read: CardRead) -> TillReadView:
        if read.kind == "uid":
            return self._card(read.value)
        return self._barcode(read.value.strip())

    def _card(self, uid: str) -> TillReadView:
        digest = credential_hash(self.hmac_key, "uid", uid.strip().upper())
        cashier = next((c for c in self.cashiers.all()
                        if c.card_hash is not None and hmac.compare_digest(c.card_hash, digest)),
                       None)
        if cashier is None:
            self._put({"kind": "unknown_card"})
            return TillReadView("unknown_card", "card of no cashier")
        session = self.cashiers.sign_in_card(cashier)
        self._put({"kind": "signin", "session": session.public()})
        return TillReadView("signed_in", f"cashier {cashier.name} signed in")

    def _barcode(self, code: str) -> TillReadView:
        catalogue: Catalogue = self._catalogue()
        product = catalogue.by_barcode.get(code)
        if product is None:
            self._put({"kind": "unknown_barcode"})  # the code itself is not repeated
            return TillReadView("unknown_barcode", "no product with this barcode")
        self._put({"kind": "product", "product": product.id})
        return TillReadView("product", product.name)

    def _put(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._waiting.append(_Waiting(self._seq, time.monotonic(), data))

    def since(self, after: int, signed_in: bool, on_device: bool
              ) -> tuple[int, list[dict[str, Any]]]:
        """(the newest seq, the reads after ``after`` this page may have). A sign-in is
        given once and only to the device's own screen (``on_device``: a loopback
        client); products only to a signed-in page; nothing older than HOLD_S."""
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        with self._lock:
            for w in self._waiting:
                if w.seq <= after or w.taken or now - w.at > HOLD_S:
                    continue
                if w.data["kind"] == "signin":
                    if not on_device:
                        continue
                    w.taken = True
                elif not signed_in and w.data["kind"] != "unknown_card":
                    continue  # what the scanner read is for the open sale only
                out.append({"seq": w.seq, **w.data})
            return self._seq, out
