"""The whole POS path: numbering, FURS (simulated over HTTPS), printing, offline queue,
idempotency, printer failures and crashes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import pyzbar.pyzbar as zbar

from agent.pos.deadline import subsequent_deadline
from agent.pos.errors import IdempotencyConflict, JobRejected
from agent.pos.model import FiscalState
from drivers.protocols import PrintJob
from simulators.furs_endpoint import FursSimulator

from .conftest import TcpListener, job
from .escpos_decode import decode


def _net_printer(port: int) -> Any:
    """The escpos-net: back-end against a raw 9100 listener that, like many cheap
    printers, never answers status queries (hence status = false)."""
    from drivers.registry import open_peripheral

    printer = open_peripheral("printer", "receipt", f"escpos-net://127.0.0.1:{port}",
                              {"status": False, "probe": False})
    printer.start()
    return printer


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


@pytest.mark.parametrize("width", [58, 80])
def test_full_sale_prints_every_required_field(furs: FursSimulator, make_pos: Any,
                                               width: int) -> None:
    listener = TcpListener()
    pos = make_pos(furs.url, printer=_net_printer(listener.port), paper_width=width)
    result = pos.service.submit(job())
    assert result.fiscal_state == "fiscalised" and result.printed
    _wait(lambda: len(listener.jobs) == 1)
    out = decode(listener.jobs[0])
    listener.close()
    assert out.codepages == [18]  # CP852
    text = out.text
    columns = 32 if width == 58 else 48
    assert [ln for ln in text.splitlines() if len(ln) > columns] == []
    for needle in ("Trgovina Šrot d.o.o.", "Tržaška cesta 24", "1000 Ljubljana",
                   "Davčna št.: 12345678", "RAČUN št.: P1-BLAG1-1", "Prostor: P1",
                   "Naprava: BLAG1", "Blagajnik: Žiga Čebašek", "Čokolada Gorenjka",
                   "Šampon za lase", "Vstopnina Žale", "Časopis", "SKUPAJ EUR", "13,69",
                   "Gotovina", "20,00", "Vračilo", "6,31", "A 22 %", "B 9,5 %", "C 5 %",
                   "E oproščeno", result.zoi):
        assert needle in text, needle
    assert result.eor is not None and result.eor in text.replace("-\n", "-")
    issued = datetime.fromisoformat(result.issued_at)
    assert f"Datum: {issued.strftime('%d.%m.%Y %H:%M:%S')}" in text
    assert "87654321" not in text  # the operator's tax number goes to FURS only
    (qr_image,) = out.images
    (code,) = zbar.decode(qr_image)
    assert code.data.decode() == result.qr and len(result.qr) == 60
    assert out.cuts == 1
    sent = furs.received.invoices[-1]
    assert sent["ProtectedID"] == result.zoi and sent["SubsequentSubmit"] is False
    assert sent["OperatorTaxNumber"] == 87654321 and sent["InvoiceAmount"] == 13.69


def test_outbox_events_carry_receipt_zoi_and_eor(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    result = pos.service.submit(job())
    (receipt,) = pos.events("pos.receipt")
    assert receipt["invoice_id"] == "P1-BLAG1-1" and receipt["zoi"] == result.zoi
    assert receipt["totals"]["total_cents"] == 1369 and len(receipt["lines"]) == 4
    assert "tax_number" not in receipt["operator"]
    (fiscalised,) = pos.events("pos.fiscalised")
    assert fiscalised == {"invoice_id": "P1-BLAG1-1", "eor": result.eor, "subsequent": False,
                          "zoi": result.zoi}


def test_furs_down_prints_without_eor_then_subsequent_submit(furs: FursSimulator,
                                                             make_pos: Any) -> None:
    pos = make_pos(furs.url)
    furs.set_mode("down")
    first = pos.service.submit(job("offline-1"))
    assert first.fiscal_state == "pending_subsequent" and first.eor is None
    assert first.printed and first.deadline is not None
    printed = decode(pos.printer.jobs[-1].payload).text
    assert "EOR: naknadno potrjevanje" in printed and first.zoi in printed
    second = pos.service.submit(job("offline-2"))
    assert second.number == 2 and second.fiscal_state == "pending_subsequent"
    assert pos.service.summary()["queue_depth"] == 2
    furs.set_mode("ok")
    pos.runtime.start()  # the retry worker
    _wait(lambda: pos.service.status("P1-BLAG1-2").fiscal_state == "fiscalised")
    _wait(lambda: pos.service.status("P1-BLAG1-1").fiscal_state == "fiscalised")
    assert all(inv["SubsequentSubmit"] is True for inv in furs.received.invoices)
    assert {inv["ProtectedID"] for inv in furs.received.invoices} == {first.zoi, second.zoi}
    assert pos.service.status("P1-BLAG1-1").eor == furs.received.eors[first.zoi]
    assert [e["subsequent"] for e in pos.events("pos.fiscalised")] == [True, True]
    assert pos.service.summary()["queue_depth"] == 0
    assert len(pos.printer.jobs) == 2  # the late EOR does not print anything again


def test_slow_furs_times_out_within_the_limit(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url, furs_timeout_s=0.5)
    furs.set_mode("slow", delay_s=3)
    started = time.monotonic()
    result = pos.service.submit(job())
    assert time.monotonic() - started < 2.0
    assert result.fiscal_state == "pending_subsequent" and result.printed


@pytest.mark.parametrize("code", ["S001", "S002", "S003", "S004", "S005", "S006", "S007",
                                  "S008"])
def test_furs_error_codes_fail_the_receipt_with_the_code(furs: FursSimulator, make_pos: Any,
                                                         code: str) -> None:
    pos = make_pos(furs.url)
    furs.set_mode("error", error_code=code)
    result = pos.service.submit(job())
    assert result.fiscal_state == "failed_rejected" and result.error_code == code
    assert result.printed and pos.service.summary()["queue_depth"] == 0
    assert pos.events("pos.fiscal_rejected")[0]["error_code"] == code
    furs.set_mode("ok")  # after fixing the cause, the receipt can be sent again
    pos.service.resubmit(result.invoice_id)
    pos.service.process_due()
    assert pos.service.status(result.invoice_id).fiscal_state == "fiscalised"


def test_s100_system_error_is_retried(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    furs.set_mode("error", error_code="S100")
    assert pos.service.submit(job()).fiscal_state == "pending_subsequent"


def test_real_validation_refuses_unknown_certificate_and_premise(furs: FursSimulator,
                                                                 make_pos: Any) -> None:
    furs.behaviour.require_premise = True
    pos = make_pos(furs.url)
    assert pos.service.submit(job("a-000001")).error_code == "S006"
    assert pos.runtime._client is not None  # the test config has no [pos.premise] table
    pos.runtime._client.register_premise(validity=datetime.now(UTC).date(), premise_id="P1",
                                         software_supplier_tax_number=12345678,
                                         movable_type="A")
    assert pos.service.submit(job("a-000002")).fiscal_state == "fiscalised"


def test_retried_job_never_numbers_or_prints_twice(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    first = pos.service.submit(job("same-key-1"))
    again = pos.service.submit(job("same-key-1"))
    assert again.duplicate and again.invoice_id == first.invoice_id and again.zoi == first.zoi
    assert len(pos.printer.jobs) == 1 and pos.last_number() == 1
    assert len(pos.events("pos.receipt")) == 1 and len(furs.received.invoices) == 1
    with pytest.raises(IdempotencyConflict):
        pos.service.submit(job("same-key-1", note="a different sale"))
    assert pos.service.submit(job("next-key-2")).number == 2


def test_concurrent_jobs_get_gapless_unique_numbers(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    results: list[Any] = []

    def till(n: int) -> None:
        for i in range(5):
            key = f"till-{n}-key-{i % 3}"  # some retries of the same key among them
            results.append(pos.service.submit(job(key)))

    threads = [threading.Thread(target=till, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted({r.number for r in results})
    assert numbers == list(range(1, 19))  # 6 tills x 3 distinct keys
    assert len(pos.printer.jobs) == 18


def test_printer_error_keeps_the_job_and_its_number(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    pos.printer.fail = True
    first = pos.service.submit(job("paper-001"))
    assert not first.printed and first.print_state == "pending" and first.print_error
    assert first.fiscal_state == "fiscalised"
    retry = pos.service.submit(job("paper-001"))  # the POS retries: same receipt
    assert retry.invoice_id == first.invoice_id and not retry.printed
    pos.printer.fail = False
    assert pos.service.print_pending() == 1
    assert pos.service.status(first.invoice_id).printed and len(pos.printer.jobs) == 1
    assert pos.service.submit(job("paper-001")).duplicate and len(pos.printer.jobs) == 1
    assert pos.service.submit(job("paper-002")).number == 2


def test_reprint_is_marked_as_numbered_copy(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    result = pos.service.submit(job())
    pos.service.reprint(result.invoice_id)
    again = pos.service.reprint(result.invoice_id)
    assert again.copies == 2
    texts = [decode(j.payload).text for j in pos.printer.jobs]
    assert "KOPIJA" not in texts[0] and "KOPIJA 1" in texts[1] and "KOPIJA 2" in texts[2]
    assert all(f"EOR: {result.eor}" in t for t in texts)


def test_power_cut_before_commit_loses_nothing_and_leaves_no_gap(furs: FursSimulator,
                                                                 make_pos: Any,
                                                                 monkeypatch: Any) -> None:
    pos = make_pos(furs.url)
    assert pos.service.submit(job("before-cut")).number == 1
    real_append = pos.outbox.append

    def cut(*args: Any, **kwargs: Any) -> Any:
        raise OSError("power cut")  # the last write of the receipt transaction

    monkeypatch.setattr(pos.outbox, "append", cut)
    with pytest.raises(OSError):
        pos.service.submit(job("during-cut"))
    monkeypatch.setattr(pos.outbox, "append", real_append)
    assert pos.last_number() == 1  # the counter rolled back with the receipt
    assert pos.store.conn.execute("SELECT COUNT(*) FROM pos_receipts").fetchone()[0] == 1
    assert len(pos.printer.jobs) == 1
    # the POS retries the job that failed: it gets the next number, no gap
    assert pos.service.submit(job("during-cut")).number == 2


def test_crash_while_printing_is_never_printed_twice(furs: FursSimulator, make_pos: Any,
                                                     tmp_path: Any) -> None:
    pos = make_pos(furs.url)

    class Crash(BaseException):
        pass

    def dies(job: PrintJob) -> None:
        raise Crash  # the process stops while the job is on the wire

    pos.printer.print_job = dies
    with pytest.raises(Crash):
        pos.service.submit(job("crash-001"))
    del pos.printer.print_job
    assert pos.service.status("P1-BLAG1-1").print_state == "printing"
    assert pos.service.recover() == 1  # what PosRuntime.start() does after the restart
    assert pos.service.print_pending() == 0 and pos.printer.jobs == []
    assert pos.service.status("P1-BLAG1-1").print_state == "uncertain"
    pos.service.reprint("P1-BLAG1-1")  # an operator decides: a marked copy
    assert "KOPIJA 1" in decode(pos.printer.jobs[0].payload).text


def test_bad_jobs_print_and_number_nothing(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    bad = [job(lines=[{"name": "x", "quantity": "-2", "unit_price": "1", "vat": "22"}]),
           job(lines=[{"name": "x", "quantity": "1", "unit_price": "1", "vat": "20"}]),
           job(totals={"total": "99.99"})]
    for body in bad:
        with pytest.raises(JobRejected):
            pos.service.submit(body)
    assert pos.last_number() == 0 and pos.printer.jobs == [] and pos.events("pos.receipt") == []


def test_deadline_is_two_working_days_and_flags_receipts_at_risk(furs: FursSimulator,
                                                                 make_pos: Any) -> None:
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Fri -> Mon, Tue
    assert subsequent_deadline(friday).isoformat() == "2026-12-02T00:00:00+01:00"
    christmas_eve = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)  # 25th, 26th holidays
    assert subsequent_deadline(christmas_eve).isoformat() == "2026-12-30T00:00:00+01:00"
    before_easter = datetime(2027, 3, 26, 10, 0, tzinfo=UTC)  # Fri; Easter Monday 29 Mar
    assert subsequent_deadline(before_easter).date().isoformat() == "2027-04-01"
    now = [friday]
    pos = make_pos(furs.url, clock=lambda: now[0], at_risk_hours=8)
    furs.set_mode("down")
    result = pos.service.submit(job())
    assert result.deadline == "2026-12-01T23:00:00.000Z" and not result.at_risk
    now[0] = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert pos.service.status(result.invoice_id).at_risk
    assert pos.service.summary()["at_risk"] == 1
    now[0] = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert pos.service.status(result.invoice_id).overdue
    furs.set_mode("ok")
    pos.service.retry_all_now()
    pos.service.process_due()
    final = pos.service.status(result.invoice_id)
    assert final.fiscal_state == FiscalState.FISCALISED and not final.at_risk
    assert final.deadline is None


def test_restart_keeps_the_queue(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    furs.set_mode("down")
    pos.service.submit(job())
    pos.close()
    furs.set_mode("ok")
    # reopen the same store with a fresh runtime
    from agent.pos.pos_runtime import PosRuntime
    from agent.store.local_store import LocalStore
    from agent.store.outbox import Outbox

    store = LocalStore(pos.config.store_path)
    runtime = PosRuntime(pos.config, store, Outbox(store, "t1", "dev1"),
                         {"receipt": pos.printer})
    try:
        runtime.start()
        _wait(lambda: runtime.service.status("P1-BLAG1-1").fiscal_state == "fiscalised")
        assert runtime.service.submit(job("after-restart")).number == 2
    finally:
        runtime.stop()
        store.close()


def test_health_summary_counts_states(furs: FursSimulator, make_pos: Any) -> None:
    pos = make_pos(furs.url)
    pos.service.submit(job("h-000001"))
    furs.set_mode("down")
    pos.service.submit(job("h-000002"))
    summary = pos.runtime.status()
    assert summary["fiscal"] == {"fiscalised": 1, "pending_subsequent": 1}
    assert summary["last_number"] == 2 and summary["queue_depth"] == 1


def test_sale_on_the_virtual_printer_with_status_checks(furs: FursSimulator, make_pos: Any,
                                                        tmp_path: Any) -> None:
    """The technician's virtual printer (edge-sim printer) as the peer: status queried
    before and after the job, Slovenian letters, the FURS QR read back from the PNG; then
    paper out refuses the next receipt's print, which is kept and printed once later."""
    from drivers.registry import open_peripheral
    from simulators.virtual_printer import VirtualPrinter

    virtual = VirtualPrinter("127.0.0.1", 0, tmp_path / "paper", paper_mm=80)
    port = virtual.start()
    printer = open_peripheral("printer", "receipt", f"escpos-net://127.0.0.1:{port}", {})
    printer.start()
    pos = make_pos(furs.url, printer=printer)
    try:
        result = pos.service.submit(job("virtual-0001"))
        assert result.printed and virtual.wait_for(1)
        receipt = virtual.receipts[0]
        for needle in ("Čokolada Gorenjka", "Šampon za lase", "Vstopnina Žale", result.zoi):
            assert needle in receipt.text, needle
        assert receipt.qr == (result.qr,) and receipt.cut
        assert receipt.png_path is not None and receipt.png_path.exists()
        assert virtual.status_queries >= 2

        virtual.set_state(paper_end=True)
        second = pos.service.submit(job("virtual-0002"))
        assert second.fiscal_state == "fiscalised" and not second.printed
        assert "paper" in (second.print_error or "").lower()
        assert len(virtual.receipts) == 1  # nothing half-printed
        virtual.set_state(paper_end=False)
        pos.runtime.start()  # the worker retries the print
        _wait(lambda: pos.service.status(second.invoice_id).printed)
        assert virtual.wait_for(2) and len(virtual.receipts) == 2
        assert second.zoi in virtual.receipts[1].text
    finally:
        virtual.stop()
