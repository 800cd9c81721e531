"""``cloud-bridge release``: keygen, publish, serve, rollout, widen, pause, rollback, status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from cloud_bridge.db_schema import devices, make_engine, read_tx
from cloud_bridge.releases.rollout import RolloutControl
from cloud_bridge.releases.signing import ReleaseKeyError, create_key, load_key, public_b64
from cloud_bridge.releases.store import ReleaseError, ReleaseStore
from contracts.errors import ContractError

release_app = typer.Typer(help="signed software releases and their staged rollout",
                          no_args_is_help=True)

FolderOpt = Annotated[Path, typer.Option("--folder", envvar="BRIDGE_RELEASES_DIR",
                                         help="the release folder")]
KeyOpt = Annotated[Path, typer.Option("--key", envvar="BRIDGE_RELEASE_KEY",
                                      help="the release-signing key (not a tenant key)")]
DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB")]
UrlOpt = Annotated[str, typer.Option("--base-url", envvar="BRIDGE_RELEASES_URL",
                                     help="where devices download, e.g. https://bridge:8443")]
MqttOpt = Annotated[str, typer.Option("--mqtt", envvar="BRIDGE_MQTT",
                                      help="broker HOST:PORT the offers are published on")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@release_app.command()
def keygen(key: KeyOpt) -> None:
    """Make the release-signing key; prints the public key for [update] release_public_key."""
    try:
        typer.echo(f"release_public_key = \"base64:{create_key(key)}\"")
    except ReleaseKeyError as exc:
        raise _fail(exc) from None


@release_app.command()
def publish(wheels: list[Path], channel: Annotated[str, typer.Option()],
            version: Annotated[str, typer.Option()], key: KeyOpt, folder: FolderOpt,
            requirement: Annotated[str | None, typer.Option(
                help="what devices install (default: edge-suite==VERSION)")] = None,
            min_config_schema: int = 1) -> None:
    """Sign and publish a wheel set as CHANNEL's VERSION."""
    try:
        manifest = ReleaseStore(folder).publish(
            load_key(key), channel, version, wheels, requirement or f"edge-suite=={version}",
            min_config_schema)
    except (ReleaseError, ReleaseKeyError, ContractError) as exc:
        raise _fail(exc) from None
    typer.echo(f"published {channel} {version}: {len(manifest.files)} files, signed by "
               f"{public_b64(load_key(key))[:12]}…")


@release_app.command()
def serve(folder: FolderOpt, tls_cert: Annotated[Path, typer.Option()],
          tls_key: Annotated[Path, typer.Option()], host: str = "0.0.0.0",
          port: int = 8443) -> None:
    """Serve the release folder over HTTPS (files are public; the signature is the trust)."""
    import uvicorn

    from cloud_bridge.releases.http_files import release_files_app

    uvicorn.run(release_files_app(folder), host=host, port=port, ssl_certfile=str(tls_cert),
                ssl_keyfile=str(tls_key), log_level="warning")


class _Broker:
    def __init__(self, spec: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        host, _, port = spec.rpartition(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(host or "127.0.0.1", int(port))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _devices(db: str, tenant: str) -> list[str]:
    with read_tx(make_engine(db)) as conn:
        return [r[0] for r in conn.execute(select(devices.c.device)
                                           .where(devices.c.tenant == tenant))]


def _control(folder: Path, mqtt: str, base_url: str) -> tuple[RolloutControl, _Broker]:
    broker = _Broker(mqtt)
    return RolloutControl(folder, broker, base_url), broker


@release_app.command()
def rollout(tenant: str, channel: str, version: str, folder: FolderOpt, db: DbOpt,
            mqtt: MqttOpt, base_url: UrlOpt, share: float = 0.1) -> None:
    """Offer CHANNEL's VERSION to SHARE of TENANT's devices (0.1 = 10 %)."""
    if version not in ReleaseStore(folder).versions(channel):
        raise _fail(ReleaseError(f"{channel} {version} is not published"))
    control, broker = _control(folder, mqtt, base_url)
    try:
        state = control.start(tenant, channel, version, share, _devices(db, tenant))
    except ValueError as exc:
        raise _fail(exc) from None
    finally:
        broker.close()
    typer.echo(f"offered {version} to {len(state.offered)} devices")


@release_app.command()
def widen(tenant: str, channel: str, folder: FolderOpt, db: DbOpt, mqtt: MqttOpt,
          base_url: UrlOpt, share: float = 1.0) -> None:
    """Offer the rollout's release to more of the fleet (default: all)."""
    control, broker = _control(folder, mqtt, base_url)
    try:
        state = control.widen(tenant, channel, share, _devices(db, tenant))
    except ValueError as exc:
        raise _fail(exc) from None
    finally:
        broker.close()
    typer.echo(f"offered {state.version} to {len(state.offered)} devices")


@release_app.command()
def pause(tenant: str, channel: str, folder: FolderOpt) -> None:
    """Add no more devices to the rollout (offers made stay)."""
    control = RolloutControl(folder, _NoPublish(), "https://unused")
    try:
        control.pause(tenant, channel)
    except ValueError as exc:
        raise _fail(exc) from None
    typer.echo("paused")


@release_app.command()
def rollback(tenant: str, channel: str, folder: FolderOpt, mqtt: MqttOpt,
             base_url: UrlOpt) -> None:
    """Offer the previous release to every device the rollout reached."""
    control, broker = _control(folder, mqtt, base_url)
    try:
        state = control.roll_back(tenant, channel)
    except ValueError as exc:
        raise _fail(exc) from None
    finally:
        broker.close()
    typer.echo(f"offered {state.previous} back to {len(state.offered)} devices")


@release_app.command()
def status(tenant: str, channel: str, folder: FolderOpt, db: DbOpt) -> None:
    """The rollout and each device's reported version, as JSON."""
    state = RolloutControl(folder, _NoPublish(), "https://unused").load(tenant, channel)
    with read_tx(make_engine(db)) as conn:
        rows = conn.execute(select(devices.c.device, devices.c.state)
                            .where(devices.c.tenant == tenant)).all()
    typer.echo(json.dumps({
        "rollout": None if state is None else {k: getattr(state, k) for k in (
            "version", "previous", "share", "paused", "rolled_back")},
        "devices": {d: {"version": (s or {}).get("version"), "update": (s or {}).get("update")}
                    for d, s in rows}}, indent=1))


class _NoPublish:
    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        raise RuntimeError("pause and status publish nothing")
