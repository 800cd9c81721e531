"""``cloud-bridge events``: partition an older PostgreSQL database's events by month, and
drop whole months past retention (cloud_bridge/partitions.py, docs/scale.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cloud_bridge.db_schema import is_sqlite, make_engine
from cloud_bridge.partitions import migrate, retain

events_app = typer.Typer(help="stored device events: monthly partitions and retention "
                              "(PostgreSQL)", no_args_is_help=True)

DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="postgresql://user@host/db")]


def _postgres(db: str) -> None:
    if is_sqlite(make_engine(db, create=False)):
        typer.echo("SQLite keeps its events in one table: partitions and retention are for "
                   "PostgreSQL", err=True)
        raise typer.Exit(2)


@events_app.command("partition")
def events_partition(db: DbOpt) -> None:
    """Move an unpartitioned events table into monthly partitions (bridges stopped)."""
    _postgres(db)
    moved = migrate(make_engine(db, create=False))
    make_engine(db).dispose()  # the rest of the schema, months ahead
    typer.echo(f"events partitioned by month: {moved} events moved")


@events_app.command("retention")
def events_retention(
    db: DbOpt,
    keep_months: Annotated[int, typer.Option(min=1, help="months kept, the current one "
                                                         "included")] = 24,
) -> None:
    """Drop the month partitions older than KEEP_MONTHS; older events are refused after."""
    _postgres(db)
    cut, dropped, keys = retain(make_engine(db), keep_months)
    typer.echo(f"events before {cut} deleted: dropped {len(dropped)} partitions "
               f"({', '.join(dropped) or 'none'}), {keys} keys; devices resending them "
               "are refused into the quarantine")
