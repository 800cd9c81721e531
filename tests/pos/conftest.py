from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig, parse_config
from agent.pos.pos_runtime import PosRuntime
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from drivers.registry import open_peripheral
from simulators.furs_endpoint import FursSimulator, SimPki, generate_pki

TAX_NUMBER = 12345678
TOKEN = "pos-token-0123456789abcdef"


@pytest.fixture(scope="session")
def furs_pki(tmp_path_factory: pytest.TempPathFactory) -> SimPki:
    return generate_pki(tmp_path_factory.mktemp("furs"), TAX_NUMBER, "TESTNO PODJETJE Šiška d.o.o.")


@pytest.fixture
def furs(furs_pki: SimPki) -> Iterator[FursSimulator]:
    sim = FursSimulator(furs_pki.directory).start()
    yield sim
    sim.stop()


def pos_table(pki: SimPki, furs_url: str, **over: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "tax_number": TAX_NUMBER, "premise_id": "P1", "device_id": "BLAG1",
        "issuer_name": "Trgovina Šrot d.o.o.",
        "issuer_address": ["Tržaška cesta 24", "1000 Ljubljana"],
        "pkcs12_path": str(pki.taxpayer_p12), "pkcs12_password_file": str(pki.password_file),
        "furs_url": furs_url, "furs_ca_file": str(pki.ca_file), "furs_timeout_s": 0.6,
        "retry_initial_s": 0.1, "retry_max_s": 0.4, "printer": "receipt", "paper_width": 80,
        "http": {"token": TOKEN, "bind": "127.0.0.1", "port": 0},
    }
    table.update(over)
    return table


def agent_config(tmp_path: Path, pos: dict[str, Any]) -> AgentConfig:
    return parse_config({
        "tenant": "t1", "device": "dev1", "site": "s1", "data_dir": str(tmp_path / "data"),
        "keys": {"credential_hmac_key": "base64:" + base64.b64encode(b"k" * 32).decode()},
        "printers": [{"id": "receipt", "url": "sim:"}],
        "pos": pos,
    })


class Pos:
    """One POS device under test: store, outbox, printer and the runtime."""

    def __init__(self, tmp_path: Path, pki: SimPki, furs_url: str, printer: Any = None,
                 clock: Callable[[], Any] | None = None, displays: dict[str, Any] | None = None,
                 **over: Any) -> None:
        self.config = agent_config(tmp_path, pos_table(pki, furs_url, **over))
        self.store = LocalStore(self.config.store_path)
        self.outbox = Outbox(self.store, "t1", "dev1")
        self.printer = printer or open_peripheral("printer", "receipt", "sim:", {})
        self.printer.start()
        kwargs = {"clock": clock} if clock else {}
        self.runtime = PosRuntime(self.config, self.store, self.outbox,
                                  {"receipt": self.printer}, displays=displays, **kwargs)
        self.service = self.runtime.service

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.outbox.pending(limit=10_000) if e.type == kind]

    def last_number(self) -> int:
        row = self.store.conn.execute("SELECT MAX(last_number) FROM pos_counters").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self.runtime.stop()
        self.store.close()


@pytest.fixture
def make_pos(tmp_path: Path, furs_pki: SimPki) -> Iterator[Callable[..., Pos]]:
    made: list[Pos] = []

    def make(furs_url: str, **kw: Any) -> Pos:
        pos = Pos(tmp_path / f"pos{len(made)}", furs_pki, furs_url, **kw)
        made.append(pos)
        return pos

    yield make
    for pos in made:
        pos.close()


def job(key: str = "sale-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": key,
        "operator": {"name": "Žiga Čebašek", "tax_number": 87654321},
        "lines": [
            {"name": "Čokolada Gorenjka", "quantity": "2", "unit_price": "1.50", "vat": "9.5"},
            {"name": "Šampon za lase", "quantity": "1", "unit_price": "4.99", "vat": "22",
             "discount_percent": "10"},
            {"name": "Vstopnina Žale", "quantity": "1", "unit_price": "5.00", "vat": "exempt"},
            {"name": "Časopis", "quantity": "1", "unit_price": "1.20", "vat": "5"},
        ],
        "payments": [{"method": "cash", "amount": "20.00"}],
        "totals": {"total": "13.69"},
    }
    body.update(over)
    return body


class TcpListener:
    """A raw TCP 9100-style listener that keeps every connection's bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.jobs: list[bytes] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = bytearray()
            with conn:
                while chunk := conn.recv(65536):
                    data += chunk
            self.jobs.append(bytes(data))

    def close(self) -> None:
        self.sock.close()
