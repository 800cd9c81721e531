"""``edge-sim``: technician simulators that talk to a running agent over its local socket."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from agent.cli_errors import refuses_device_errors
from agent.config import load_config
from agent.control_client import ControlClient
from simulators.member_generator import generate, uid_for

app = typer.Typer(help="Simulators for technicians: tap cards, show QR codes, watch gates.",
                  no_args_is_help=True)
try:  # the FURS test endpoint needs the pos extra (pyjwt); the other tools do not
    from simulators.furs_endpoint import app as furs_app
except ImportError as missing:
    _why = str(missing)

    @app.command("furs", help="FURS test endpoint (needs: pip install 'edge-suite[pos]')",
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def furs_unavailable() -> None:
        err_line = f"edge-sim furs needs the pos extra ({_why}): pip install 'edge-suite[pos]'"
        typer.echo(err_line, err=True)
        raise typer.Exit(2) from None
else:
    app.add_typer(furs_app, name="furs")
out = Console()
err = Console(stderr=True)

ConfigOpt = typer.Option(
    Path(os.environ.get("EDGE_AGENT_CONFIG", "demo/data/agent.toml")), "--config", "-c",
    help="the running agent's config (to find its control socket)",
)
SocketOpt = typer.Option(None, "--socket", help="control socket path (overrides --config)")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")


def _client(config: Path, socket: Path | None) -> ControlClient:
    if socket is not None:
        return ControlClient(socket)
    return ControlClient(load_config(config).socket_path)


def _call(client: ControlClient, op: str, **fields: Any) -> dict[str, Any]:
    reply = client.request(op, **fields)
    if not reply.get("ok"):
        err.print(f"[red]agent refused:[/red] {reply.get('error')}")
        raise typer.Exit(1)
    return reply


def _show_punch(reply: dict[str, Any]) -> None:
    """A time-clock reader answers with a punch (pending, recorded or refused), not a
    gate decision."""
    colour = "red" if reply["status"] == "refused" else "green"
    table = Table(show_header=False)
    table.add_row("punch", f"[{colour}]{reply['status'].upper()}[/]")
    table.add_row("terminal", reply["terminal"])
    table.add_row("display", reply["message"])
    if reply.get("punch_type"):
        table.add_row("type", reply["punch_type"])
    if reply.get("problem"):
        table.add_row("reason", reply["problem"])
    if reply["status"] == "pending":
        table.add_row("note", "recorded with this type when the choose window ends, or "
                      "change it on the kiosk page")
    if reply.get("seq") is not None:
        table.add_row("event seq", str(reply["seq"]))
    out.print(table)


def _show_decision(reply: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(reply))
        return
    if reply.get("kind") == "punch":
        _show_punch(reply)
        return
    if reply.get("kind") == "till":  # a reader of the till: a cashier's card or a scan
        out.print(f"till: {reply['status']} ({reply['message']})")
        return
    colour = "green" if reply["granted"] else "red"
    table = Table(show_header=False)
    table.add_row("decision", f"[{colour}]{'GRANTED' if reply['granted'] else 'DENIED'}[/]")
    table.add_row("reason", reply["reason"])
    table.add_row("display", reply["message"])
    if reply.get("entries_left") is not None:
        table.add_row("entries left", str(reply["entries_left"]))
    table.add_row("event seq", str(reply.get("seq")))
    if reply.get("repeat"):
        table.add_row("note", "repeat of the previous tap (nothing consumed, gate not opened)")
    out.print(table)


@app.command()
@refuses_device_errors()
def tap(
    uid: str | None = typer.Argument(None, help="card UID in hex, e.g. 04A1B2C3D4E5F6"),
    member: int | None = typer.Option(None, "--member", "-m",
                                      help="tap the card of synthetic member N instead"),
    reader: str = typer.Option("entry", "--reader", "-r"),
    config: Path = ConfigOpt,
    socket: Path | None = SocketOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Present a card UID at a (simulated) reader of the running agent."""
    if uid is None and member is None:
        err.print("give a UID or --member N")
        raise typer.Exit(2)
    value = uid if uid is not None else uid_for(member or 0)
    reply = _call(_client(config, socket), "present", reader=reader, kind="uid", value=value)
    _show_decision(reply, as_json)


@app.command()
@refuses_device_errors()
def qr(
    text: str = typer.Argument(..., help="the text the QR code carries"),
    reader: str = typer.Option("entry", "--reader", "-r"),
    config: Path = ConfigOpt,
    socket: Path | None = SocketOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Present QR code text at a (simulated) reader."""
    reply = _call(_client(config, socket), "present", reader=reader, kind="qr", value=text)
    _show_decision(reply, as_json)


@app.command()
@refuses_device_errors()
def gate(
    config: Path = ConfigOpt,
    socket: Path | None = SocketOpt,
    as_json: bool = JsonOpt,
    count: int = typer.Option(0, help="stop after this many items (0 = until Ctrl-C)"),
) -> None:
    """Watch gate pulses and decisions live."""
    client = _client(config, socket)
    seen = 0
    try:
        for item in client.watch():
            if item.get("watching"):
                if not as_json:
                    err.print("watching; Ctrl-C to stop")
                continue
            if as_json:
                print(json.dumps(item), flush=True)
            elif item["kind"] == "pulse":
                out.print(f"[bold]PULSE[/] gate={item['gate']} direction={item['direction']} "
                          f"{item['pulse_ms']} ms")
            elif item["kind"] == "decision":
                colour = "green" if item["granted"] else "red"
                out.print(f"[{colour}]{item['reason']}[/] gate={item['gate']} "
                          f"reader={item['reader']} \"{item['message']}\" "
                          f"{item['latency_ms']} ms")
            elif item["kind"] == "punch":
                colour = "red" if item["status"] == "refused" else "green"
                out.print(f"[{colour}]punch {item['status']}[/] terminal={item['terminal']} "
                          f"\"{item['message']}\" type={item.get('punch_type') or '-'}")
            else:
                out.print(str(item))
            seen += 1
            if count and seen >= count:
                return
    except KeyboardInterrupt:
        return


@app.command()
@refuses_device_errors()
def members(
    count: int = typer.Option(1000, "--count", "-n", min=1, max=5_000_000),
    start: int = typer.Option(1, help="index of the first synthetic member"),
    chunk: int = typer.Option(5000, min=1, max=50_000),
    config: Path = ConfigOpt,
    socket: Path | None = SocketOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load a synthetic membership set of N members into the running agent."""
    client = _client(config, socket)
    loaded = 0
    batch: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  disable=as_json) as progress:
        task = progress.add_task("loading members", total=count)

        def flush() -> None:
            nonlocal loaded
            reply = _call(client, "members.load", members=batch)
            loaded += reply["loaded"]
            progress.advance(task, reply["loaded"])
            batch.clear()

        for record in generate(count, start):
            kind = record.pop("kind")
            if len(samples) < 5:
                samples.append({"member": int(record["id"][1:]), "uid": record["uid"],
                                "name": record["first_name"], "kind": kind})
            batch.append(record)
            if len(batch) >= chunk:
                flush()
        if batch:
            flush()
    if as_json:
        print(json.dumps({"loaded": loaded, "samples": samples}))
        return
    table = Table(title=f"{loaded} members loaded; try these cards")
    for col in ("member", "uid", "name", "kind"):
        table.add_column(col)
    for s in samples:
        table.add_row(str(s["member"]), s["uid"], s["name"], s["kind"])
    out.print(table)
    out.print("tap one with: edge-sim tap --member N")


@app.command()
@refuses_device_errors()
def fleet(
    devices: int = typer.Option(10, "--devices", "-n", min=1, max=2000),
    broker: str = typer.Option("127.0.0.1:1883", help="host:port of the MQTT broker"),
    tenant: str = typer.Option("demo-gym"),
    rate: float = typer.Option(1.0, help="taps per second per device"),
    duration: float = typer.Option(10.0, help="seconds of tap load"),
    drain_timeout: float = typer.Option(60.0, help="seconds to wait for every event's ack"),
    hmac_key_file: Path | None = typer.Option(None, help="tenant HMAC key (base64 text)"),
    workdir: Path | None = typer.Option(None, help="where the simulated stores live"),
    as_json: bool = JsonOpt,
) -> None:
    """Start N simulated agents against a broker, put tap load on them, and report how
    many events the bridge acknowledged."""
    import base64
    import tempfile

    from simulators.fleet import Fleet, FleetSpec

    host, _, port = broker.rpartition(":")
    key = (base64.b64decode(hmac_key_file.read_text().strip()) if hmac_key_file
           else b"fleet-simulation-key-0123456789ab")
    spec = FleetSpec(devices=devices, tenant=tenant, host=host or "127.0.0.1", port=int(port),
                     workdir=workdir or Path(tempfile.mkdtemp(prefix="edge-fleet-")),
                     hmac_key=key)
    sim = Fleet(spec)
    sim.start()
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                      disable=as_json) as progress:
            expected = int(devices * rate * duration)
            task = progress.add_task("tap load", total=expected)
            made = sim.tap_load(rate, duration,
                                on_tick=lambda n: progress.update(task, completed=n))
            drain = progress.add_task("waiting for acks", total=made)
            t0 = time.monotonic()
            while sim.backlog() and time.monotonic() - t0 < drain_timeout:
                progress.update(drain, completed=made - sim.backlog())
                time.sleep(0.2)
            progress.update(drain, completed=made - sim.backlog())
        rows = sim.rows()
    finally:
        sim.stop()
    summary = {"devices": devices, "taps": made, "unacked": sum(r["outbox_depth"] for r in rows),
               "connected": sum(1 for r in rows if r["connected"]), "devices_detail": rows}
    if as_json:
        print(json.dumps(summary))
    else:
        table = Table(title=f"fleet of {devices} simulated agents")
        for col in ("device", "connected", "last_seq", "acked_seq", "outbox_depth",
                    "reconnects", "resends"):
            table.add_column(col)
        for r in rows[:50]:
            table.add_row(*(str(r[c]) for c in ("device", "connected", "last_seq", "acked_seq",
                                                 "outbox_depth", "reconnects", "resends")))
        out.print(table)
        out.print(f"{made} taps, {summary['unacked']} events not yet acknowledged")
    if summary["unacked"]:
        raise typer.Exit(1)


@app.command()
@refuses_device_errors()
def status(config: Path = ConfigOpt, socket: Path | None = SocketOpt,
           as_json: bool = JsonOpt) -> None:
    """Show the running agent's state and peripheral health."""
    reply = _call(_client(config, socket), "status")
    if as_json:
        print(json.dumps(reply))
        return
    table = Table(title=f"agent {reply['device']} ({reply['tenant']} / {reply['site']})")
    table.add_column("fact")
    table.add_column("value")
    for key in ("version", "uptime_s", "membership_version", "outbox_depth", "last_seq",
                "decisions"):
        table.add_row(key, str(reply[key]))
    site = reply.get("site_link")
    if site is not None:  # [site_link]: presence shared with the site's gates
        peers = ", ".join(f"{d} {s}" for d, s in sorted(site["peers"].items())) or "-"
        state = "[red]cut off[/]" if site["cut_off"] else "[green]linked[/]"
        table.add_row("site link", f"{state}; broker {site['broker']}; peers: {peers}; "
                                   f"inside: {site['occupancy']}")
    out.print(table)
    pt = Table(title="peripherals")
    for col in ("id", "role", "url", "health", "detail"):
        pt.add_column(col)
    for p in reply["peripherals"]:
        colour = {"ok": "green", "degraded": "yellow"}.get(p["health"], "red")
        pt.add_row(p["id"], p["role"], p["url"], f"[{colour}]{p['health']}[/]", p["detail"])
    out.print(pt)


@app.command()
@refuses_device_errors()
def receipts(config: Path = ConfigOpt, socket: Path | None = SocketOpt,
             limit: int = typer.Option(30, min=1, max=10_000, help="newest N receipts"),
             as_json: bool = JsonOpt) -> None:
    """Show the POS receipts of a running agent: fiscal state (EOR or owed), print state."""
    reply = _call(_client(config, socket), "receipts", limit=limit)
    if as_json:
        print(json.dumps(reply))
        return
    summary = reply["summary"]
    st = Table(title="receipts")
    st.add_column("fact")
    st.add_column("value")
    for key in ("last_number", "queue_depth", "at_risk", "overdue"):
        st.add_row(key, str(summary[key]))
    st.add_row("fiscal", ", ".join(f"{k} {v}" for k, v in summary["fiscal"].items()) or "-")
    st.add_row("print", ", ".join(f"{k} {v}" for k, v in summary["print"].items()) or "-")
    out.print(st)
    table = Table()
    for col in ("invoice", "issued", "total", "fiscal", "EOR / deadline", "print", "copies"):
        table.add_column(col)
    for r in reply["receipts"]:
        colour = "green" if r["eor"] else ("red" if r["overdue"] else "yellow")
        fiscal = f"[{colour}]{r['fiscal_state']}[/]"
        eor = r["eor"] or (f"owed by {r['deadline']}" if r["deadline"] else
                           (r["error_code"] or "-"))
        table.add_row(r["invoice_id"], r["issued_at"], r["total"], fiscal, eor,
                      r["print_state"] + (f" ({r['print_error']})" if r["print_error"] else ""),
                      str(r["copies"]))
    out.print(table)


@app.command("bridge-members")
def bridge_members(
    count: int = typer.Option(1000, "--count", "-n", min=1, max=1_000_000),
    start: int = typer.Option(1, min=1, help="index of the first member"),
    api: str = typer.Option("http://127.0.0.1:8080", envvar="BRIDGE_API_URL",
                            help="the bridge's JSON API"),
    tenant: str = typer.Option(..., envvar="BRIDGE_TENANT"),
    token: str = typer.Option(..., envvar="BRIDGE_API_TOKEN", show_default=False),
    as_json: bool = JsonOpt,
) -> None:
    """Create the synthetic members (with cards and plans) through the bridge's API; they
    reach the devices as signed change batches. Existing members are skipped."""
    from simulators.bridge_members import BridgeRefused, load_through_bridge

    with Progress(*Progress.get_default_columns()[:-1], MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, disable=as_json) as progress:
        task = progress.add_task("members via bridge", total=count)
        try:
            result = load_through_bridge(api, tenant, token, count, start,
                                         lambda n: progress.advance(task, n))
        except BridgeRefused as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"created": result.created, "existed": result.existed}))
    else:
        out.print(f"{result.created} members created, {result.existed} already there")


@app.command("printer")
def printer_sim(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: whole LAN)"),
    port: int = typer.Option(9100, help="TCP port (0 = any free port)"),
    out_dir: Path = typer.Option(Path("printer-out"), "--out", "-o",
                                 help="folder for receipt-NNNN.txt and .png"),
    paper_mm: int = typer.Option(80, "--paper", help="paper width in mm: 80 or 58"),
    paper_out: bool = typer.Option(False, "--paper-out", help="answer status: paper end"),
    near_end: bool = typer.Option(False, "--near-end", help="answer status: paper near end"),
    offline: bool = typer.Option(False, "--offline", help="answer status: offline"),
    cover_open: bool = typer.Option(False, "--cover-open", help="answer status: cover open"),
    count: int = typer.Option(0, help="stop after this many receipts (0 = until Ctrl-C)"),
    as_json: bool = JsonOpt,
) -> None:
    """Run a virtual ESC/POS network printer: shows each receipt, saves it as text and PNG,
    and answers status requests (DLE EOT) as a real printer would."""
    import threading

    from rich.panel import Panel

    from simulators.virtual_printer import PrinterState, VirtualPrinter, VirtualReceipt

    done = threading.Event()

    def show(receipt: VirtualReceipt) -> None:
        if as_json:
            print(json.dumps(receipt.as_json()), flush=True)
        else:
            facts = [f"{'cut' if receipt.cut else 'not cut'}",
                     f"code pages {', '.join(receipt.code_pages) or 'cp437'}"]
            facts += [f"QR: {q}" for q in receipt.qr] + list(receipt.notes)
            out.print(Panel(receipt.text or "(no text)",
                            title=f"receipt {receipt.index}",
                            subtitle=f"{'; '.join(facts)} -> {receipt.png_path}"))
        if count and len(vp.receipts) >= count:
            done.set()

    state = PrinterState(offline=offline, paper_end=paper_out, paper_near_end=near_end,
                         cover_open=cover_open)
    try:
        vp = VirtualPrinter(host, port, out_dir, paper_mm=paper_mm, state=state,
                            on_receipt=show)
        bound = vp.start()
    except (OSError, ValueError) as exc:
        err.print(f"[red]cannot start the virtual printer on {host}:{port}: {exc}[/red]")
        raise typer.Exit(2) from None
    err.print(f"virtual ESC/POS printer on {host}:{bound} ({paper_mm} mm), receipts in "
              f"{out_dir}; point a printer at escpos-net:{host}:{bound}; Ctrl-C to stop")
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        vp.stop()
