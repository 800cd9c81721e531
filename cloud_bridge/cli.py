"""``cloud-bridge``: run the bridge, create tenants, prune change logs."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cloud_bridge import change_log
from cloud_bridge.attendance.cli import attendance_app
from cloud_bridge.catalogue.delegation import till_app
from cloud_bridge.db_schema import make_engine, write_tx
from cloud_bridge.device_ca import ca_app
from cloud_bridge.device_config_cli import device_config_app
from cloud_bridge.enrolment_cli import enrolment_app
from cloud_bridge.errors import BridgeError
from cloud_bridge.events_cli import events_app
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.notifications import mailer_from_url, sms_from_url
from cloud_bridge.releases.cli import release_app
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.share_group import ShareGroupError, check, load_or_create
from cloud_bridge.startup_checks import StartupError, check_keys_dir, open_database
from cloud_bridge.tenant_keys import TenantKeyError, add_api_token, create_tenant
from cloud_bridge.web.user_cli import user_app
from cloud_bridge.web.web_app import ensure_web_schema
from cloud_bridge.web_processes import WebWorkerSettings, serve_workers
from contracts.command_expiry import DEFAULT_LIFETIME_S, CommandLifetimes

if TYPE_CHECKING:
    from cloud_bridge.jetstream_link import JetStreamSettings

app = typer.Typer(help="edge-suite cloud bridge: ingest device events, publish signed "
                  "membership changes, serve the JSON API.", no_args_is_help=True)
tenant_app = typer.Typer(help="tenants and their keys", no_args_is_help=True)
changes_app = typer.Typer(help="the per-tenant change log", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(changes_app, name="changes")
app.add_typer(ca_app, name="ca")
app.add_typer(user_app, name="user")
app.add_typer(attendance_app, name="attendance")
app.add_typer(enrolment_app, name="enrolment")
app.add_typer(device_config_app, name="device-config")
app.add_typer(events_app, name="events")
app.add_typer(release_app, name="release")
app.add_typer(till_app, name="till")

log = logging.getLogger("cloud_bridge")

DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="sqlite:///path or postgresql://user@host/db")]
KeysOpt = Annotated[Path, typer.Option("--keys-dir", envvar="BRIDGE_KEYS_DIR",
                                       help="directory with one sub-directory of keys per tenant")]


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    db: DbOpt = "sqlite:///bridge.sqlite3",
    mqtt_host: Annotated[str, typer.Option(envvar="BRIDGE_MQTT_HOST")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option(envvar="BRIDGE_MQTT_PORT")] = 1883,
    mqtt_username: Annotated[str | None, typer.Option(envvar="BRIDGE_MQTT_USERNAME")] = None,
    mqtt_password: Annotated[str | None, typer.Option(envvar="BRIDGE_MQTT_PASSWORD",
                                                      show_default=False)] = None,
    mqtt_tls_ca: Annotated[str | None, typer.Option(help="CA file: use TLS")] = None,
    mqtt_tls_cert: Annotated[str | None, typer.Option(
        help="client certificate (cloud-bridge ca bridge); needs --mqtt-tls-ca")] = None,
    mqtt_tls_key: Annotated[str | None, typer.Option(help="its private key (0600)")] = None,
    http_host: Annotated[str, typer.Option(envvar="BRIDGE_HTTP_HOST")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(envvar="BRIDGE_HTTP_PORT",
                                           help="JSON API port; 0 = no API")] = 8080,
    keys_dir: KeysOpt = Path("keys"),
    prefix: Annotated[str, typer.Option(help="topic prefix")] = "es/v1",
    share_group: Annotated[str | None, typer.Option(
        envvar="BRIDGE_SHARE_GROUP", show_default=False,
        help="MQTT 5 shared-subscription group, a secret (default: the one in "
             "<keys-dir>/mqtt-share-group, created on first start)")] = None,
    client_id: Annotated[str | None, typer.Option(
        help="MQTT client id (default: cloud-bridge-<host>-<pid>)")] = None,
    session_expiry: Annotated[int, typer.Option(
        help="MQTT session expiry in s; 0 = clean session (see docs/bridge.md)")] = 0,
    api_token: Annotated[str | None, typer.Option(envvar="BRIDGE_API_TOKEN",
                                                  show_default=False,
                                                  help="bearer token for the JSON API")] = None,
    insecure_dev: Annotated[bool, typer.Option(
        help="run the API without a token (development only)")] = False,
    snapshot_lag: Annotated[int, typer.Option(
        help="a device more versions behind than this gets a snapshot")] = 1000,
    snapshot_chunk: Annotated[int, typer.Option(help="rows per snapshot chunk")] = 2000,
    stats_interval: Annotated[float, typer.Option(help="log ingest figures every N s")] = 60.0,
    log_level: Annotated[str, typer.Option()] = "info",
    web: Annotated[bool, typer.Option(
        help="serve the staff web pages next to the JSON API (docs/web.md)")] = True,
    ca_dir: Annotated[Path | None, typer.Option(
        envvar="BRIDGE_CA_DIR", help="device CAs (cloud-bridge ca init): enrolment codes "
        "get their certificates here (docs/technician.md)")] = None,
    cmd_expiry_physical: Annotated[int, typer.Option(
        envvar="BRIDGE_CMD_EXPIRY_PHYSICAL", help="s a device command that moves something "
        "(open) stays valid; max 60")] = DEFAULT_LIFETIME_S["physical"],
    cmd_expiry_printing: Annotated[int, typer.Option(
        envvar="BRIDGE_CMD_EXPIRY_PRINTING",
        help="s a printing command stays valid; max 3600")] = DEFAULT_LIFETIME_S["printing"],
    cmd_expiry_other: Annotated[int, typer.Option(
        envvar="BRIDGE_CMD_EXPIRY_OTHER",
        help="s any other device command stays valid; max 600")] = DEFAULT_LIFETIME_S["other"],
    nats: Annotated[str | None, typer.Option(
        envvar="BRIDGE_NATS", help="comma-separated nats:// URLs of a NATS cluster: take "
        "the uplink from its JetStream stream instead of MQTT (docs/scale.md)")] = None,
    nats_user: Annotated[str | None, typer.Option(envvar="BRIDGE_NATS_USER")] = None,
    nats_password: Annotated[str | None, typer.Option(envvar="BRIDGE_NATS_PASSWORD",
                                                      show_default=False)] = None,
    nats_replicas: Annotated[int, typer.Option(help="stream replicas (new stream)")] = 3,
    nats_ack_wait: Annotated[float, typer.Option(
        help="s before an unacked message goes to another bridge")] = 30.0,
    workers: Annotated[int, typer.Option(
        min=1, help="processes serving HTTP (the MQTT link and ingest stay in this one)")] = 1,
    mail_url: Annotated[str | None, typer.Option(
        envvar="BRIDGE_MAIL_URL", show_default=False,
        help="SMTP server for e-mail to people: smtp://[user:pass@]host:port?from=addr"
             "[&starttls=1] or smtps://... (docs/notifications.md)")] = None,
    sms_url: Annotated[str | None, typer.Option(
        envvar="BRIDGE_SMS_URL", show_default=False,
        help="SMS provider: file:///path/sms.jsonl or https://gateway/...?token=...")] = None,
    public_url: Annotated[str | None, typer.Option(
        envvar="BRIDGE_PUBLIC_URL", show_default=False,
        help="the bridge's address as members reach it (https://...): the notices to "
             "members link their opt-out page there (docs/notifications.md)")] = None,
) -> None:
    """Run one bridge process (any number may run against one broker and database)."""
    _logging(log_level)
    _refuse_bad_options(http_port=http_port, api_token=api_token, insecure_dev=insecure_dev,
                        nats=nats, workers=workers, session_expiry=session_expiry,
                        client_id=client_id, tls=(mqtt_tls_ca, mqtt_tls_cert, mqtt_tls_key))
    settings = bridge_settings(
        db=db, keys_dir=keys_dir, web=bool(http_port) and web, snapshot_lag=snapshot_lag,
        snapshot_chunk=snapshot_chunk, ca_dir=ca_dir,
        cmd_expiry=(cmd_expiry_physical, cmd_expiry_printing, cmd_expiry_other),
        mqtt=MqttSettings(
            host=mqtt_host, port=mqtt_port, prefix=prefix, share_group=share_group or "",
            client_id=client_id or f"cloud-bridge-{socket.gethostname()}-{os.getpid()}",
            username=mqtt_username, password=mqtt_password, tls_ca=mqtt_tls_ca,
            tls_cert=mqtt_tls_cert, tls_key=mqtt_tls_key, session_expiry_s=session_expiry),
        jetstream=_jetstream_settings(
            nats, prefix, client_id, nats_user, nats_password, nats_replicas, nats_ack_wait,
            mqtt_tls_ca, mqtt_tls_cert, mqtt_tls_key))
    settings = dataclasses.replace(settings, mail_url=mail_url, sms_url=sms_url,
                                   public_url=public_url)
    _check_notification_urls(mail_url, sms_url)
    if public_url and (not re.fullmatch(r"https?://[^\s<>\"#?]+", public_url)):
        _refuse("refusing to start: --public-url must be the bridge's http(s) address as "
                "members reach it, without a query or fragment, e.g. https://gym.example.si")
    http = WebWorkerSettings(settings, None if insecure_dev else api_token, web, not insecure_dev)
    run_bridge(http, http_host, http_port, workers, stats_interval)


def _refuse(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def _refuse_bad_options(*, http_port: int, api_token: str | None, insecure_dev: bool,
                        nats: str | None, workers: int, session_expiry: int,
                        client_id: str | None,
                        tls: tuple[str | None, str | None, str | None]) -> None:
    """Combinations of ``serve`` options that can never work (exit 2)."""
    mqtt_tls_ca, mqtt_tls_cert, mqtt_tls_key = tls
    if http_port and not api_token and not insecure_dev:
        _refuse("refusing to start: the JSON API needs a token. Set BRIDGE_API_TOKEN (or "
                "--api-token), or pass --insecure-dev on a development machine, or "
                "--http-port 0 to run without the API.")
    if nats and workers > 1:
        _refuse("--workers > 1 with --nats is not supported yet: web workers publish over "
                "MQTT only; run one process per bridge on the cluster")
    if session_expiry and not client_id:
        _refuse("--session-expiry needs a stable --client-id (the session is found by it)")
    if (mqtt_tls_cert or mqtt_tls_key) and not (mqtt_tls_ca and mqtt_tls_cert and mqtt_tls_key):
        _refuse("--mqtt-tls-cert and --mqtt-tls-key go together, with --mqtt-tls-ca")


def _check_notification_urls(mail_url: str | None, sms_url: str | None) -> None:
    try:
        if mail_url:
            mailer_from_url(mail_url)
        if sms_url:
            sms_from_url(sms_url)
    except BridgeError as exc:
        _refuse(f"refusing to start: {exc}")


def bridge_settings(*, db: str, keys_dir: Path, web: bool, snapshot_lag: int,
                    snapshot_chunk: int, ca_dir: Path | None,
                    cmd_expiry: tuple[int, int, int], mqtt: MqttSettings,
                    jetstream: JetStreamSettings | None) -> BridgeSettings:
    """The bridge's settings from ``serve``'s options, with the keys directory checked,
    the MQTT share group checked (empty: read from the keys directory, or created there)
    and the command lifetimes bounded (exit 2)."""
    try:
        check_keys_dir(keys_dir, web=web)
    except StartupError as exc:
        _refuse(f"cannot start: {exc}")
    try:
        group = check(mqtt.share_group) if mqtt.share_group else load_or_create(keys_dir)
    except (ShareGroupError, OSError) as exc:
        _refuse(f"refusing to start: {exc}")
    physical, printing, other = cmd_expiry
    try:
        lifetimes = CommandLifetimes(physical_s=physical, printing_s=printing,
                                     other_s=other)
    except ValueError as exc:
        _refuse(f"--cmd-expiry-*: {exc}")
    return BridgeSettings(
        db_url=db, keys_dir=keys_dir, max_lag=snapshot_lag, chunk_rows=snapshot_chunk,
        ca_dir=ca_dir, command_lifetimes=lifetimes,
        mqtt=dataclasses.replace(mqtt, share_group=group), jetstream=jetstream)


def run_bridge(http: WebWorkerSettings, host: str, port: int, workers: int,
               stats_interval: float) -> None:
    """Open the database, start the bridge and its HTTP server (port 0: none; one
    process, or ``workers`` processes), log the ingest figures every ``stats_interval``
    s until SIGTERM or SIGINT, then stop."""
    settings = http.bridge
    try:
        bridge = Bridge(settings, engine=open_database(settings.db_url))
    except StartupError as exc:
        _refuse(f"cannot start: {exc}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bridge.start(wait_connected_s=5)
    if port and workers > 1:
        _serve_with_workers(bridge, stop, stats_interval, http, host, port, workers)
        return
    server = None
    if port:
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(bridge.app(http.api_token, web=http.web,
                                                          secure_cookies=http.secure_cookies),
                                               host=host, port=port, log_level="warning"))
        threading.Thread(target=server.run, name="http", daemon=True).start()
        log.info("JSON API on http://%s:%d/api/v1", host, port)
    log.info("bridge running (db %s, broker %s:%d)", settings.db_url.split("@")[-1],
             settings.mqtt.host, settings.mqtt.port)  # the share group is a secret: not logged
    while not stop.wait(stats_interval):
        log.info("stats %s", " ".join(f"{k}={v}" for k, v in bridge.stats.items()))
    log.info("stopping; stats %s", " ".join(f"{k}={v}" for k, v in bridge.stats.items()))
    if server is not None:
        server.should_exit = True
    bridge.stop()


def _jetstream_settings(nats: str | None, prefix: str, client_id: str | None,
                        user: str | None, password: str | None, replicas: int,
                        ack_wait: float, tls_ca: str | None, tls_cert: str | None,
                        tls_key: str | None) -> JetStreamSettings | None:
    if not nats:
        return None
    from cloud_bridge.jetstream_link import JetStreamSettings

    return JetStreamSettings(
        servers=tuple(u.strip() for u in nats.split(",") if u.strip()), prefix=prefix,
        replicas=replicas, ack_wait_s=ack_wait,
        client_id=client_id or f"cloud-bridge-{socket.gethostname()}-{os.getpid()}",
        username=user, password=password, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key)


def _serve_with_workers(bridge: Bridge, stop: threading.Event, stats_interval: float,
                        settings: WebWorkerSettings, host: str, port: int,
                        workers: int) -> None:
    """This process keeps MQTT and ingest; ``workers`` processes serve HTTP until
    SIGINT/SIGTERM (uvicorn's supervisor, in this main thread, takes the signals)."""
    if settings.web:  # the web tables exist before the workers race to create them
        ensure_web_schema(bridge.engine)

    def stats() -> None:
        while not stop.wait(stats_interval):
            log.info("stats %s", " ".join(f"{k}={v}" for k, v in bridge.stats.items()))

    threading.Thread(target=stats, name="stats", daemon=True).start()
    log.info("JSON API on http://%s:%d/api/v1 (%d worker processes)", host, port, workers)
    try:
        serve_workers(settings, host, port, workers)
    finally:
        stop.set()
        log.info("stopping; stats %s", " ".join(f"{k}={v}" for k, v in bridge.stats.items()))
        bridge.stop()


@tenant_app.command("create")
def tenant_create(name: str, keys_dir: KeysOpt = Path("keys")) -> None:
    """Generate the tenant's Ed25519 signing key and HMAC key (files mode 0600)."""
    try:
        created = create_tenant(keys_dir, name)
    except TenantKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"tenant {created.tenant}: keys written to {created.directory}")
    typer.echo(f"public key (base64): {created.public_key_b64}")
    typer.echo(f"HMAC key file:       {created.hmac_key_path.resolve()}")
    typer.echo("device config:")
    typer.echo("  [keys]")
    typer.echo(f'  tenant_public_key = "base64:{created.public_key_b64}"')
    typer.echo(f'  credential_hmac_key = "file:/etc/edge-agent/{created.hmac_key_path.name}"'
               "   # a copy of the HMAC key file, mode 0600")


@tenant_app.command("token")
def tenant_token(name: str, keys_dir: KeysOpt = Path("keys"),
                 label: Annotated[str, typer.Option(help="who or what uses it")] = "api") -> None:
    """Make an API token that opens this tenant's JSON API only (shown once; only its
    SHA-256 is kept, in <keys-dir>/<tenant>/api-tokens: delete its line to revoke it)."""
    try:
        token = add_api_token(keys_dir, name, label)
    except TenantKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


@changes_app.command("prune")
def changes_prune(tenant: str, keep: Annotated[int, typer.Option(min=0)] = 10_000,
                  db: DbOpt = "sqlite:///bridge.sqlite3") -> None:
    """Drop all but the newest KEEP versions; devices older than that get a snapshot."""
    engine = make_engine(db)
    with write_tx(engine) as conn:
        removed = change_log.prune(conn, tenant, keep)
        state = change_log.state(conn, tenant)
    typer.echo(f"{tenant}: removed {removed} entries; log now covers "
               f"v{state.log_floor + 1}..v{state.version}")


if __name__ == "__main__":
    app()
