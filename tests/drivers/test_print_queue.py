"""PrintQueue against the virtual ESC/POS printer being off, then on: exactly once."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.print_queue import PrintQueue, PrintState
from agent.store.local_store import LocalStore
from drivers.escpos_printer import EscposPrinter
from simulators.virtual_printer import VirtualPrinter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def printer(port: int) -> EscposPrinter:
    p = EscposPrinter("front", f"escpos-net:127.0.0.1:{port}", {"timeout_s": 0.5, "probe": False})
    p.start()
    return p


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(tmp_path / "agent.db")
    yield s
    s.close()


@pytest.fixture
def vp(tmp_path: Path, port: int) -> Iterator[VirtualPrinter]:
    v = VirtualPrinter("127.0.0.1", port, tmp_path / "out")
    yield v  # not started: the printer is off
    v.stop()


def queue(store: LocalStore, printer: EscposPrinter) -> PrintQueue:
    return PrintQueue(store, {"front": printer}, backoff_s=0.05, max_backoff_s=0.2)


def test_job_prints_exactly_once_when_the_printer_comes_back(
        store: LocalStore, printer: EscposPrinter, vp: VirtualPrinter) -> None:
    q = queue(store, printer)
    assert q.submit("front", "card-7", b"Kartica 7\n\x1dV\x00", {"member": "7"}) \
        is PrintState.PENDING
    st = q.status("card-7")
    assert st is not None and st.attempts == 1
    assert st.last_error is not None and "does not answer" in st.last_error
    # a retried submit (e.g. the office pressed twice) neither duplicates nor re-sends
    assert q.submit("front", "card-7", b"Kartica 7\n\x1dV\x00") is PrintState.PENDING
    assert q.status("card-7").attempts == 1  # type: ignore[union-attr]
    assert [j.job_id for j in q.pending()] == ["card-7"]

    q.start()
    try:
        time.sleep(0.3)  # a few backoff rounds against the dead printer
        failed = q.status("card-7")
        assert failed is not None and failed.state is PrintState.PENDING and failed.attempts > 1
        vp.start()
        assert until(lambda: q.status("card-7").state is PrintState.PRINTED)  # type: ignore[union-attr]
        time.sleep(0.3)  # worker keeps running: nothing more may print
        assert [r.lines for r in vp.receipts] == [("Kartica 7",)]
        assert q.submit("front", "card-7", b"Kartica 7\n\x1dV\x00") is PrintState.PRINTED
        time.sleep(0.05)
        assert len(vp.receipts) == 1
        assert q.pending() == []
        done = q.status("card-7")
        assert done is not None and done.meta == {"member": "7"} and done.last_error is None
    finally:
        q.stop()


def test_jobs_wait_behind_older_ones_and_print_in_order(
        store: LocalStore, printer: EscposPrinter, vp: VirtualPrinter) -> None:
    q = queue(store, printer)
    for n in (1, 2, 3):
        assert q.submit("front", f"j{n}", f"doc {n}\n\x1dV\x00".encode()) is PrintState.PENDING
    assert [j.attempts for j in q.pending()] == [1, 0, 0]  # later ones never tried alone
    vp.start()
    time.sleep(0.06)
    assert q.run_due() == 3
    assert [r.lines for r in vp.receipts] == [("doc 1",), ("doc 2",), ("doc 3",)]
    assert q.run_due() == 0


def test_paper_out_keeps_the_job(store: LocalStore, printer: EscposPrinter,
                                 vp: VirtualPrinter) -> None:
    vp.start()
    vp.set_state(paper_end=True)
    q = queue(store, printer)
    assert q.submit("front", "r1", b"report\n\x1dV\x00") is PrintState.PENDING
    assert "out of paper" in (q.status("r1").last_error or "")  # type: ignore[union-attr]
    vp.set_state(paper_end=False)
    time.sleep(0.06)
    assert q.run_due() == 1
    assert [r.lines for r in vp.receipts] == [("report",)]


def test_jobs_survive_an_agent_restart(tmp_path: Path, printer: EscposPrinter,
                                       vp: VirtualPrinter) -> None:
    first = LocalStore(tmp_path / "a.db")
    queue(first, printer).submit("front", "keep", b"kept\n\x1dV\x00")
    first.close()

    again = LocalStore(tmp_path / "a.db")
    try:
        q = queue(again, printer)
        assert [j.job_id for j in q.pending()] == ["keep"]
        vp.start()
        time.sleep(0.06)
        assert q.run_due() == 1
        assert [r.lines for r in vp.receipts] == [("kept",)]
    finally:
        again.close()


def test_job_interrupted_mid_send_is_not_printed_twice(
        store: LocalStore, printer: EscposPrinter, vp: VirtualPrinter) -> None:
    vp.start()
    q = queue(store, printer)
    q.submit("front", "x", b"maybe\n\x1dV\x00")
    # what a crash between claim and result leaves behind
    with store.transaction() as conn:
        conn.execute("UPDATE print_jobs SET state = 'printing' WHERE job_id = 'x'")
    q2 = queue(store, printer)
    st = q2.status("x")
    assert st is not None and st.state is PrintState.UNCERTAIN
    assert "check whether it printed" in (st.last_error or "")
    assert q2.run_due() == 0
    assert q2.retry("x") is PrintState.PENDING
    assert q2.run_due() == 1
    assert len(vp.receipts) == 2  # the first send, and the retry a person asked for


def test_refusals(store: LocalStore, printer: EscposPrinter) -> None:
    q = queue(store, printer)
    with pytest.raises(BadInput, match="no printer 'back'"):
        q.submit("back", "a", b"x")
    q.submit("front", "a", b"x")
    with pytest.raises(BadInput, match="different document"):
        q.submit("front", "a", b"y")
    assert q.cancel("a") is PrintState.CANCELLED
    assert q.pending() == []
