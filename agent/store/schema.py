"""Schema of the agent's SQLite store and its migrations (PRAGMA user_version).

Each migration is a function applied once, in order, inside one transaction, so a
power cut during an upgrade leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key")
    # The membership tables key rows by unique indexes rather than PRIMARY KEY: a snapshot
    # then loads them append-only and builds each index once, sorted, which is what makes
    # a 1,000,000-credential snapshot fit in seconds (see sync/membership_applier.py).
    db.table("members").create(
        {"id": str, "first_name": str, "waiver_signed_on": str, "blocked": int},
        not_null={"id", "first_name", "blocked"},
        defaults={"blocked": 0, "first_name": ""},
    )
    db.table("members").create_index(["id"], index_name="ux_members_id", unique=True)
    # hash = HMAC-SHA256(tenant key, kind + ":" + normalised UID/code); never the UID itself
    db.table("credentials").create(
        {"hash": str, "id": str, "member_id": str, "kind": str, "blocked": int},
        not_null={"hash", "id", "member_id", "kind", "blocked"},
        defaults={"blocked": 0},
    )
    db.table("credentials").create_index(["hash"], index_name="ux_credentials_hash", unique=True)
    db.table("credentials").create_index(["id"], index_name="ux_credentials_id", unique=True)
    db.table("credentials").create_index(["member_id"], index_name="ix_credentials_member_id")
    db.table("entitlements").create(
        {
            "id": str,
            "member_id": str,
            "kind": str,
            "valid_from": int,  # epoch seconds, UTC
            "valid_to": int,  # exclusive
            "valid_on": str,  # ISO date, day tickets
            "entries_total": int,
            "zones": str,  # JSON list, NULL = all
            "windows": str,  # JSON list of {"days": [0..6], "start": "HH:MM", "end": "HH:MM"}
            "frozen_from": int,
            "frozen_to": int,
            "credential_id": str,
        },
        not_null={"id", "member_id", "kind"},
    )
    db.table("entitlements").create_index(["id"], index_name="ux_entitlements_id", unique=True)
    db.table("entitlements").create_index(["member_id"], index_name="ix_entitlements_member_id")
    # local consumption, kept apart from entitlements so a change batch from the
    # bridge never resets entries used here
    db.table("entry_counters").create({"entitlement_id": str, "used": int}, pk="entitlement_id",
                                not_null={"used"})
    db.table("presence").create(
        {"member_id": str, "direction": str, "at_ms": int, "gate": str}, pk="member_id"
    )
    db.table("presence").create_index(["direction", "at_ms"])
    db.table("used_tokens").create({"token_hash": bytes, "expires_ms": int}, pk="token_hash")
    db.table("used_tokens").create_index(["expires_ms"])
    db.table("outbox").create(
        {"seq": int, "id": str, "type": str, "ts": str, "data": str, "created_ms": int},
        pk="seq",
        not_null={"id", "type", "ts", "data", "created_ms"},
    )


def _v2(db: sqlite_utils.Database) -> None:
    # uses of counted entitlements on other devices, as the bridge knows them (JSON map)
    db.table("entitlements").add_column("used_remote", str)
    # snapshot chunks wait here until all of one snapshot are in
    db.table("snapshot_staging").create(
        {"snapshot_id": str, "chunk": int, "changes": str}, pk=("snapshot_id", "chunk")
    )


def _v_attendance(db: sqlite_utils.Database) -> None:
    # time clock: PIN hashes (scrypt) with their failure counters, kept across restarts
    db.table("employee_pins").create(
        {"member_id": str, "pin_hash": str, "failures": int, "locked_until_ms": int},
        pk="member_id", not_null={"pin_hash", "failures"}, defaults={"failures": 0},
    )
    # each employee's last punch, for suggesting the next one (the outbox forgets acked
    # events, this does not)
    db.table("punch_state").create({"member_id": str, "last_type": str, "at_ms": int},
                             pk="member_id")


def _v_sun_counters(db: sqlite_utils.Database) -> None:
    # NTAG 424 SUN cards: the highest read counter seen per credential, so a recorded
    # SUN message is refused (agent/access/service.py); keyed by credential id, never UID
    db.table("sun_counters").create({"credential_id": str, "counter": int, "at_ms": int},
                              pk="credential_id", not_null={"counter", "at_ms"})


def _v3(db: sqlite_utils.Database) -> None:
    # POS receipts (agent/pos/): the invoice counter per premise/device moves only in the
    # transaction that stores the receipt, so numbers stay gapless (FURS R_3.4.3)
    db.execute("CREATE TABLE pos_counters (premise TEXT NOT NULL, device TEXT NOT NULL, "
               "last_number INTEGER NOT NULL, PRIMARY KEY (premise, device))")
    db.execute(
        "CREATE TABLE pos_receipts (invoice_id TEXT PRIMARY KEY, premise TEXT NOT NULL, "
        "device TEXT NOT NULL, number INTEGER NOT NULL, issued_at TEXT NOT NULL, "
        "issued_ms INTEGER NOT NULL, total_cents INTEGER NOT NULL, zoi TEXT NOT NULL, "
        "qr TEXT NOT NULL, eor TEXT, fiscal_state TEXT NOT NULL, error_code TEXT, "
        "error_message TEXT, deadline_ms INTEGER NOT NULL, print_state TEXT NOT NULL, "
        "print_error TEXT, copies INTEGER NOT NULL DEFAULT 0, operator_tax_number INTEGER, "
        "data TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
        "UNIQUE (premise, device, number))")
    db.execute("CREATE INDEX ix_pos_receipts_fiscal ON pos_receipts (fiscal_state)")
    db.execute("CREATE INDEX ix_pos_receipts_print ON pos_receipts (print_state)")
    # a retried job (same key) returns the first result instead of printing again
    db.execute("CREATE TABLE pos_idempotency (key TEXT PRIMARY KEY, request_hash TEXT NOT "
               "NULL, invoice_id TEXT NOT NULL, created_ms INTEGER NOT NULL)")
    # receipts still owed to FURS, with their retry schedule
    db.execute("CREATE TABLE pos_fiscal_queue (invoice_id TEXT PRIMARY KEY, attempts INTEGER "
               "NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, last_error TEXT, "
               "created_ms INTEGER NOT NULL)")
    db.execute("CREATE INDEX ix_pos_fiscal_queue_next ON pos_fiscal_queue (next_attempt_ms)")


def _v_print_queue(db: sqlite_utils.Database) -> None:
    # non-POS documents waiting for (or done at) a printer (agent/print_queue.py); the
    # job id is the caller's idempotency key, so a retried submit never prints twice
    db.execute("CREATE TABLE print_jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT "
               "NOT NULL UNIQUE, printer_id TEXT NOT NULL, payload BLOB NOT NULL, "
               "payload_sha256 TEXT NOT NULL, meta TEXT NOT NULL, state TEXT NOT NULL, "
               "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, "
               "last_error TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
               "printed_ms INTEGER)")
    db.execute("CREATE INDEX ix_print_jobs_state ON print_jobs (state, printer_id, seq)")


def _v_waiver_version(db: sqlite_utils.Database) -> None:
    # the waiver version a member signed (docs/waivers.md); NULL: unknown (a snapshot, or
    # a record from before versions were sent), and the gate compares days
    db.execute("ALTER TABLE members ADD COLUMN waiver_version INTEGER")


def _v_tickets(db: sqlite_utils.Database) -> None:
    # printed tickets and vouchers (docs/vouchers.md), keyed by the ticket id inside the
    # signed code; the code itself is a bearer document and is never stored.
    # ticket_uses: what this device took (entries, cents), never reset by the bridge
    db.execute("CREATE TABLE ticket_uses (ticket_id TEXT PRIMARY KEY, entries_used INTEGER "
               "NOT NULL DEFAULT 0, value_used_cents INTEGER NOT NULL DEFAULT 0, "
               "valid_to INTEGER NOT NULL, updated_ms INTEGER NOT NULL)")
    # ticket_marks: the bridge's word (membership change feed): refunded/cancelled, and
    # the uses it counts per device (JSON maps), so a device adds the others' uses
    db.execute("CREATE TABLE ticket_marks (ticket_id TEXT PRIMARY KEY, revoked INTEGER NOT "
               "NULL DEFAULT 0, used_remote TEXT, value_remote TEXT, valid_to INTEGER)")
    # both are pruned a day after the ticket's end (agent/store/maintenance.py)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v_attendance,
                                                             _v_sun_counters, _v3,
                                                             _v_print_queue,
                                                             _v_waiver_version, _v_tickets]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the store to SCHEMA_VERSION; returns the version it was at before."""
    before = current_version(conn)
    if before > SCHEMA_VERSION:
        from agent.errors import StoreError

        raise StoreError(
            f"store schema version {before} is newer than this agent understands "
            f"({SCHEMA_VERSION}); install the newer agent or restore a backup"
        )
    db = sqlite_utils.Database(conn)
    for version in range(before, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return before
