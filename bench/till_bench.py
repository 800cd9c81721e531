"""Till benchmark: from "pay" (the page's POST /till/api/sale) to the first byte of the
receipt at the printer, with fiscal verification deferred, beside a render-only baseline.

Run:  .venv/bin/python bench/till_bench.py [--sales 300] [--json]

Measured in one run, on loopback:
  - baseline: the receipt alone - validate the job, totals, ZOI (RSA-2048), QR record,
    layout and ESC/POS bytes, no store, no HTTP, no printer;
  - pay -> first byte: an HTTP client posts a three-line cash sale to the till's router on
    the agent's local HTTP server (uvicorn), which prices it from the catalogue, numbers and
    stores it in SQLite (synchronous=FULL, outbox event, FURS queue row), and sends it to a
    TCP 9100 printer; the clock stops when the printer's listener receives the first byte.
    FURS is deferred: the fiscaliser answers "unavailable" at once, so the receipt goes to
    the subsequent-submit queue (the offline path) and the FURS round trip (bounded by
    pos.furs_timeout_s) is not in the figure. The printer is opened with status=false (the
    listener does not answer DLE EOT; a real printer's status answer comes after the bytes).
  - with ``--tickets``, the same with a day ticket on every sale (issue 22 part 6): the
    till's issuer key signs the ticket with the tenant's delegation, verifies it, stores
    it and its ``ticket.issued`` event in the receipt's transaction, and prints it as a
    version 11 QR raster after the FURS code.
Target: pay -> first byte p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import parse_config
from agent.pos.errors import FursUnavailable
from agent.pos.model import Receipt
from agent.pos.pos_runtime import PosRuntime
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from bench.pos_bench import ISSUER, measure, sale_job
from contracts.pin_hash import hash_pin
from contracts.signed_envelope import sign_payload
from contracts.ticket_delegation import encode_delegation
from contracts.ticket_token import delegate_issuer, public_bytes
from contracts.till_catalogue import CataloguePayload, CatalogueProduct
from drivers.registry import open_peripheral
from simulators.furs_endpoint import generate_pki

TAX = 12345678


class DeferredFurs:
    """FURS deferred: every first submission goes to the subsequent-submit queue."""

    def submit_invoice(self, receipt: Receipt, *, subsequent: bool) -> str:
        raise FursUnavailable("deferred by the benchmark")


class FirstByteListener:
    """TCP 9100 stand-in: the perf_counter of the first byte of each connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.first: list[float] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                chunk = conn.recv(65536)
                stamp = time.perf_counter()
                while chunk:
                    chunk = conn.recv(65536)
            with self.cond:
                self.first.append(stamp)
                self.cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.first) >= count, timeout):
                raise TimeoutError("the printer got no bytes")
            return self.first[count - 1]


PRODUCTS: list[dict[str, Any]] = [
    {"id": "kava", "name": "Kava z mlekom", "price": "1.80", "vat": "9.5"},
    {"id": "brisaca", "name": "Brisača Šport", "price": "12.90", "vat": "22"},
    {"id": "revija", "name": "Revija Fitnes", "price": "3.50", "vat": "5"},
    {"id": "dnevna", "name": "Dnevna vstopnica", "price": "8.00", "vat": "9.5",
     "ticket": {"kind": "day", "entries": 1, "valid_days": 1}}]


def _catalogue(folder: Path, tenant_key: Ed25519PrivateKey | None) -> tuple[Path, dict[str, str]]:
    """The catalogue file, signed by the tenant when tickets are measured (a till issues
    tickets only with the tenant public key); the [keys] entries that go with it."""
    keys = {"credential_hmac_key": "base64:" + base64.b64encode(b"k" * 32).decode()}
    if tenant_key is None:
        path = folder / "catalogue.json"
        path.write_text(json.dumps({"version": 1, "products": PRODUCTS[:3]}))
        return path, keys
    payload = CataloguePayload(tenant="t1", version=1, products=[
        CatalogueProduct.model_validate(p) for p in PRODUCTS])
    path = folder / "catalogue.signed"
    path.write_bytes(sign_payload(tenant_key, payload.model_dump(mode="json")))
    public = base64.b64encode(public_bytes(tenant_key.public_key())).decode()
    return path, {**keys, "tenant_public_key": "base64:" + public}


def _device(folder: Path, printer_port: int, tenant_key: Ed25519PrivateKey | None = None
            ) -> tuple[PosRuntime, LocalStore]:
    pki = generate_pki(folder / "furs", TAX, "TESTNO PODJETJE d.o.o.")
    catalogue, keys = _catalogue(folder, tenant_key)
    config = parse_config({
        "tenant": "t1", "device": "dev1", "site": "s1", "data_dir": str(folder / "data"),
        "keys": keys,
        "printers": [{"id": "receipt", "url": f"escpos-net://127.0.0.1:{printer_port}"}],
        "pos": {"tax_number": TAX, "premise_id": "P1", "device_id": "BLAG1",
                "issuer_name": ISSUER.name, "issuer_address": list(ISSUER.address),
                "pkcs12_path": str(pki.taxpayer_p12),
                "pkcs12_password_file": str(pki.password_file), "printer": "receipt",
                "http": {"token": "bench-token-0123456789", "bind": "127.0.0.1", "port": 0},
                "till": {"catalogue_file": str(catalogue), "drawer_kick": False,
                         "cashiers": [{"id": "11", "name": "Ana", "tax_number": 87654321,
                                       "pin_hash": hash_pin("2468")}]}}})
    store = LocalStore(config.store_path)
    printer = open_peripheral("printer", "receipt",
                              f"escpos-net://127.0.0.1:{printer_port}",
                              {"status": False, "probe": False})
    printer.start()
    runtime = PosRuntime(config, store, Outbox(store, "t1", "dev1"), {"receipt": printer},
                         furs=DeferredFurs())
    runtime.start()
    runtime.worker.stop()  # no background resubmissions while measuring
    if tenant_key is not None:
        assert runtime.till is not None and runtime.till.tickets is not None
        issuer = runtime.till.tickets.issuer
        now = int(time.time())
        issuer.install(encode_delegation(delegate_issuer(
            tenant_key, issuer.public_key, "s1", now + 86_400)), now)
    return runtime, store


def pay_to_first_byte(folder: Path, sales: int, tickets: bool = False) -> dict[str, float]:
    listener = FirstByteListener()
    runtime, store = _device(folder, listener.port,
                             Ed25519PrivateKey.generate() if tickets else None)
    base = f"http://127.0.0.1:{runtime.http_port}"
    samples: list[float] = []
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            token = client.post("/till/api/signin", json={"cashier": "11", "pin": "2468"}
                                ).json()["token"]
            headers = {"X-Till-Session": token}
            for i in range(sales + 30):
                body = {"idempotency_key": f"bench-{i:06d}",
                        "lines": [{"product": "kava", "quantity": "2"},
                                  {"product": "brisaca", "quantity": "1"},
                                  {"product": "revija", "quantity": "1"},
                                  *([{"product": "dnevna", "quantity": "1"}]
                                    if tickets else [])],
                        "payment": {"method": "cash", "given": "50.00"}}
                t0 = time.perf_counter()
                r = client.post("/till/api/sale", json=body, headers=headers)
                first = listener.wait(i + 1)
                assert r.status_code == 200, r.text
                if i >= 30:  # warm-up
                    samples.append((first - t0) * 1000)
    finally:
        runtime.stop()
        store.close()
    samples.sort()
    return {"p50_ms": round(samples[len(samples) // 2], 3),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
            "mean_ms": round(sum(samples) / len(samples), 3), "n": len(samples)}


def render_only(folder: Path, n: int) -> dict[str, float]:
    from agent.pos.compose import compose
    from agent.pos.fiscal.credentials import load_pkcs12
    from agent.pos.fiscal.zoi import compute_zoi, local_time, qr_data
    from agent.pos.job import parse_job
    from agent.pos.layout import render
    from agent.pos.model import InvoiceId

    pki = generate_pki(folder / "furs-render", TAX, "TESTNO PODJETJE d.o.o.")
    key = load_pkcs12(pki.taxpayer_p12, pki.password()).key

    def one(i: int) -> None:
        sale = compose(parse_job(sale_job(f"render-{i:06d}")))
        issued = local_time(time_now())
        zoi = compute_zoi(key, TAX, issued, i + 1, "P1", "BLAG1", sale.totals.total_cents)
        receipt = Receipt(InvoiceId("P1", "BLAG1", i + 1), issued, TAX, "B", sale, zoi,
                          qr_data(zoi, TAX, issued))
        render(receipt, ISSUER, 48, eor=None)

    return measure(one, n)


def time_now() -> Any:
    from datetime import UTC, datetime
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sales", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tickets", action="store_true",
                        help="a day ticket on every sale (signed, stored, printed as QR)")
    args = parser.parse_args()
    # every bench receipt is deferred on purpose; its "not fiscalised yet" warning is noise
    logging.getLogger("agent.pos.service").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = render_only(folder, args.sales)
        till = pay_to_first_byte(folder, args.sales, args.tickets)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    result = {"baseline_render_only": baseline, "pay_to_first_byte_fiscal_deferred": till,
              "ratio_p99": round(till["p99_ms"] / baseline["p99_ms"], 2),
              "target_p99_ms": 50, "met": till["p99_ms"] <= 50, "tickets": args.tickets,
              "loadavg": loadavg}
    if args.json:
        print(json.dumps(result))
        return
    print(f"load average {' '.join(loadavg)}")
    for name in ("baseline_render_only", "pay_to_first_byte_fiscal_deferred"):
        m = result[name]
        assert isinstance(m, dict)
        print(f"{name:36s} p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms  n={m['n']}")
    print(f"ratio p99 (till / baseline): {result['ratio_p99']}  target p99 <= 50 ms: "
          f"{'met' if result['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
