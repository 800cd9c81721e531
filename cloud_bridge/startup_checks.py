"""What ``cloud-bridge serve`` checks before it starts anything: the database named by
``--db`` opens, and ``--keys-dir`` is a folder it can read (and write, where the web
pages still have to make their link key). Each problem is ONE line naming the option,
the problem and the fix, not a traceback or a three-paragraph driver error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cloud_bridge.db_schema import make_engine, normalise_url
from cloud_bridge.errors import BridgeError
from cloud_bridge.member_qr_links import LINK_KEY_FILE
from cloud_bridge.partitions import UnpartitionedEvents

DB_FIX = ("fix: give --db (or BRIDGE_DB) as sqlite:///path/to/bridge.sqlite3 in a folder "
          "that exists, or postgresql://user@host:5432/db of a running server")


class StartupError(BridgeError):
    """The bridge cannot start; the message is one line for the operator."""


def shown_url(db: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(normalise_url(db)).render_as_string(hide_password=True)
    except ArgumentError:
        return db.split("@")[-1]


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def open_database(db: str) -> Engine:
    try:
        return make_engine(db)
    except ArgumentError:
        raise StartupError(f"--db {shown_url(db)}: not a database URL; {DB_FIX}") from None
    except UnpartitionedEvents as exc:
        raise StartupError(f"--db {shown_url(db)}: {exc}") from None
    except (SQLAlchemyError, ValueError, OSError, ImportError) as exc:
        raise StartupError(f"--db {shown_url(db)}: cannot open the database: "
                           f"{_first_line(exc)}; {DB_FIX}") from None


def check_keys_dir(keys_dir: Path, web: bool) -> None:
    where = f"--keys-dir {keys_dir}"
    if keys_dir.exists() and not keys_dir.is_dir():
        raise StartupError(f"{where}: is a file, not a folder; fix: give --keys-dir (or "
                           "BRIDGE_KEYS_DIR) the folder 'cloud-bridge tenant create' wrote to")
    try:
        keys_dir.mkdir(parents=True, exist_ok=True)
        os.listdir(keys_dir)
    except OSError as exc:
        raise StartupError(f"{where}: cannot use the folder: {exc.strerror}; fix: let the "
                           "bridge's user read and write it, or give --keys-dir another "
                           "folder") from None
    if web and not (keys_dir / LINK_KEY_FILE).exists():
        try:  # the member-link key is made here on first use
            fd, probe = tempfile.mkstemp(dir=keys_dir, prefix=".write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StartupError(f"{where}: cannot write in the folder ({exc.strerror}), and the "
                               f"web pages must create {LINK_KEY_FILE} there; fix: let the "
                               "bridge's user write in it, or run with --no-web") from None
