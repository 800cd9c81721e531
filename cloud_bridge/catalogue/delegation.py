"""``cloud-bridge till delegate``: the tenant's delegation for a till's ticket issuer key.

A till sells tickets and vouchers that the gates of its site accept offline (issue 22
part 6, contracts/ticket_token.py). It signs them with its own issuer key, made on the
device; the gates trust only the tenant key, so the bridge signs a delegation: this
issuer key may issue tickets for this one site until a date. A technician reads the key
from the till (``GET /till/api/tickets/issuer``), runs this command on the bridge and
installs the printed line on the till (``PUT /till/api/tickets/delegation``); the till
checks it against the tenant public key before it keeps it (docs/pos.md).

A command rather than something automatic because the bridge does not know which
issuer key belongs to which device: a device reporting its own key over MQTT would let a
stolen device config mint delegations. The technician who stands at the till vouches
for the key, as for the device's enrolment.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from contracts.ticket_delegation import encode_delegation
from contracts.ticket_token import delegate_issuer

till_app = typer.Typer(help="till tickets: delegations for the tills' issuer keys",
                       no_args_is_help=True)

MAX_DAYS = 3 * 366
DAY_S = 86_400


def make_delegation(keys: TenantKeyStore, tenant: str, site: str, issuer_key_hex: str,
                    days: int, now_s: int) -> str:
    """The delegation line; ValueError for a bad key or period, TenantKeyError without
    the tenant's keys."""
    try:
        issuer = bytes.fromhex(issuer_key_hex.strip())
    except ValueError:
        raise ValueError("the issuer key is 64 hexadecimal digits") from None
    if len(issuer) != 32:
        raise ValueError("the issuer key is 64 hexadecimal digits")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a delegation lasts 1 to {MAX_DAYS} days")
    if not site or len(site) > 64:
        raise ValueError("name the till's site (its device config's 'site')")
    delegation = delegate_issuer(keys.get(tenant).signing_key, issuer, site,
                                 now_s + days * DAY_S)
    return encode_delegation(delegation)


@till_app.command("delegate")
def delegate(
    tenant: str,
    site: Annotated[str, typer.Option(help="the till's site, as in its device config")],
    issuer_key: Annotated[str, typer.Option(help="the till's issuer public key (hex, from "
                                            "GET /till/api/tickets/issuer)")],
    days: Annotated[int, typer.Option(help="how long the till may issue tickets")] = 365,
    keys_dir: Annotated[Path, typer.Option("--keys-dir", envvar="BRIDGE_KEYS_DIR")
                        ] = Path("keys"),
) -> None:
    """Print the delegation line for a till's ticket issuer key (install it on the till
    with PUT /till/api/tickets/delegation)."""
    try:
        line = make_delegation(TenantKeyStore(keys_dir), tenant, site, issuer_key, days,
                               int(time.time()))
    except (ValueError, TenantKeyError) as exc:
        typer.echo(f"napaka: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(line)
