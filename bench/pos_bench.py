"""POS receipt benchmark: compose + fiscalise (ZOI) + render to ESC/POS bytes, per receipt.

Run:  .venv/bin/python bench/pos_bench.py [--receipts 2000] [--json]

Measured in one run, with the taxpayer's 2048-bit RSA key from a PKCS#12 (as FURS issues):
  - baseline: the RSA-SHA256 signature alone (the ZOI's irreducible cost),
  - ZOI (signature + MD5) and the 60-digit QR record,
  - the receipt path: validate the job, compute totals, ZOI, QR record, layout, ESC/POS
    bytes with the QR raster (fixed mask, as shipped) - target p99 <= 5 ms,
  - the same with segno's automatic QR mask choice, for comparison,
  - a whole local sale through ReceiptService (SQLite transaction with synchronous=FULL,
    numbering, outbox event, in-memory printer; FURS answered instantly by a stub).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import SecretStr

from agent.daemon_parts import open_store
from agent.pos import layout
from agent.pos.compose import compose
from agent.pos.fiscal.credentials import load_pkcs12
from agent.pos.fiscal.zoi import compute_zoi, qr_data
from agent.pos.job import parse_job
from agent.pos.layout import Issuer, render
from agent.pos.model import InvoiceId, Receipt
from agent.pos.pos_config import PosConfig
from agent.pos.pos_runtime import receipt_service
from drivers.sim_printer import SimPrinter
from simulators.furs_endpoint import generate_pki

TAX = 12345678
ISSUER = Issuer("Trgovina Šrot d.o.o.", ("Tržaška cesta 24", "1000 Ljubljana"), TAX)


def sale_job(key: str) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "operator": {"name": "Žiga Čebašek", "tax_number": 87654321},
        "lines": [
            {"name": "Čokolada Gorenjka 100 g", "quantity": "2", "unit_price": "1.50",
             "vat": "9.5"},
            {"name": "Šampon za lase", "quantity": "1", "unit_price": "4.99", "vat": "22",
             "discount_percent": "10"},
            {"name": "Sir Tolminc", "quantity": "0.355", "unit_price": "12.90", "vat": "9.5"},
            {"name": "Kava mleta 500 g", "quantity": "1", "unit_price": "6.49", "vat": "22"},
            {"name": "Vstopnina", "quantity": "1", "unit_price": "5.00", "vat": "exempt"},
            {"name": "Časopis Delo", "quantity": "1", "unit_price": "1.20", "vat": "5"},
        ],
        "payments": [{"method": "cash", "amount": "30.00"}],
        "totals": {"total": "24.76"},
    }


def measure(fn: Callable[[int], Any], n: int, warmup: int = 50) -> dict[str, float]:
    for i in range(warmup):
        fn(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
            "mean_ms": round(statistics.fmean(samples), 3), "n": n}


class _InstantFurs:
    def submit_invoice(self, receipt: Receipt, *, subsequent: bool) -> str:
        return "00000000-0000-4000-8000-000000000000"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.receipts
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_pki(Path(tmp) / "furs", TAX)
        creds = load_pkcs12(pki.taxpayer_p12, pki.password())
        key = creds.key
        now = datetime.now(UTC).replace(microsecond=0)
        results: dict[str, Any] = {}

        results["baseline_rsa_sha256_sign"] = measure(
            lambda i: key.sign(f"{TAX}{i}".encode(), padding.PKCS1v15(), hashes.SHA256()), n)
        results["zoi_and_qr_record"] = measure(
            lambda i: qr_data(compute_zoi(key, TAX, now, i + 1, "P1", "BLAG1", 2575), TAX, now),
            n)

        def receipt_path(i: int, width: int = 48) -> bytes:
            sale = compose(parse_job(sale_job(f"bench-{i:08d}")))
            zoi = compute_zoi(key, TAX, now, i + 1, "P1", "BLAG1", sale.totals.total_cents)
            receipt = Receipt(InvoiceId("P1", "BLAG1", i + 1), now, TAX, "B", sale, zoi,
                              qr_data(zoi, TAX, now))
            return render(receipt, ISSUER, width, eor="8ebaff4a-8e9a-4714-94a0-198aeee37404")

        results["receipt_compose_zoi_render_80mm"] = measure(receipt_path, n)
        results["receipt_compose_zoi_render_58mm"] = measure(lambda i: receipt_path(i, 32), n)
        shipped = layout.QR_MASK
        layout.QR_MASK = None  # segno scores all eight masks
        results["receipt_path_with_auto_qr_mask"] = measure(receipt_path, max(n // 4, 100))
        layout.QR_MASK = shipped

        store, outbox = open_store(Path(tmp) / "agent.sqlite3", "full", "t", "d")
        pos = PosConfig(tax_number=TAX, premise_id="P1", device_id="BLAG1",
                        issuer_name=ISSUER.name, issuer_address=list(ISSUER.address),
                        pkcs12_path=str(pki.taxpayer_p12), pkcs12_password=SecretStr("unused-here"),
                        printer="receipt")
        printer = SimPrinter("receipt", "sim:", {})
        printer.start()
        service = receipt_service(store, outbox, pos, key, _InstantFurs(), printer)
        results["local_sale_submit_fsync"] = measure(
            lambda i: service.submit(sale_job(f"sale-{i:08d}")), max(n // 4, 100), warmup=10)
        store.close()

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'measurement':40} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'n':>6}")
    for name, r in results.items():
        print(f"{name:40} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['mean_ms']:8.3f} {r['n']:6d}")
    target = results["receipt_compose_zoi_render_80mm"]["p99_ms"]
    print(f"target: receipt path p99 <= 5 ms: {'met' if target <= 5 else 'NOT met'} "
          f"({target:.3f} ms)")


if __name__ == "__main__":
    main()
