"""Issue and refund as one transaction each, shared by the staff pages and the JSON API:
the ledger change, the buyer's e-mail in the notification outbox, the change record that
tells devices, and the audit row (pages) commit together; the change-log entry is
published to the devices after the commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from cloud_bridge import change_log
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import write_tx
from cloud_bridge.notifications import Notifier
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.tickets import ledger
from cloud_bridge.tickets.notice import pdf_link, ticket_notice
from cloud_bridge.tickets.schema import ensure_ticket_schema

Audit = Callable[[Connection, str, str, dict[str, Any]], None]


def _no_audit(conn: Connection, action: str, target: str, detail: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class TicketDesk:
    engine: Engine
    keys: TenantKeyStore
    feed: ChangeFeed
    notifier: Notifier | None = None
    link_key: bytes | None = None  # the server secret behind buyers' PDF links

    def ensure_schema(self) -> None:
        ensure_ticket_schema(self.engine)

    def issue(self, tenant: str, req: ledger.IssueRequest, base_url: str,
              audit: Audit = _no_audit) -> tuple[dict[str, Any], str, bool]:
        """(the row, its code, whether an e-mail was queued)."""
        signer = self.keys.get(tenant).signing_key
        mailed = False
        with write_tx(self.engine) as conn:
            row, code = ledger.issue(conn, tenant, signer, req)
            if row["buyer_email"] and self.notifier is not None:
                link = (pdf_link(base_url, self.link_key, tenant, row["id"])
                        if self.link_key else None)
                mailed = self.notifier.enqueue(conn, ticket_notice(row, code, tenant, link))
            audit(conn, "ticket.issue", row["id"],
                  {"kind": row["kind"], "price_cents": row["price_cents"],
                   "entries": row["entries"], "value_cents": row["value_cents"],
                   "mailed": mailed})
        return row, code, mailed

    def refund(self, tenant: str, ticket_id: str, note: str,
               audit: Audit = _no_audit) -> dict[str, Any]:
        """Mark refunded and revoke on the devices; the refreshed row."""
        with write_tx(self.engine) as conn:
            record = ledger.refund(conn, tenant, ticket_id, note)
            entry = change_log.append(conn, tenant, [record])
            audit(conn, "ticket.refund", ticket_id, {"version": entry.version})
            row = ledger.get_ticket(conn, tenant, ticket_id)
        self.feed.publish(entry)
        return row

    def code(self, tenant: str, row: dict[str, Any]) -> str:
        return ledger.code_for(row, self.keys.get(tenant).signing_key)
