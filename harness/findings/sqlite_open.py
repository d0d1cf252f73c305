"""Opening the findings database file: identified before anything is written to it, then set up.

Why these settings: WAL lets ``harness findings list`` read while a run writes; ``synchronous=FULL``
makes every committed scenario survive a kill -9 or a power cut. Garbage, another program's database
and a newer schema are refused with one line, never "repaired". sqlite3's own exceptions become
one-line :class:`~harness.contracts.errors.StoreError` (:func:`store_errors`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from harness.contracts.errors import StoreError
from harness.findings.migrations import APPLICATION_ID, LATEST, migrate

__all__ = ["MOVE_HINT", "SQLITE_MAGIC", "connect", "store_errors"]

SQLITE_MAGIC = b"SQLite format 3\x00"
MOVE_HINT = "move it away, or point --db / HARNESS_DB at another file"


def connect(path: Path) -> sqlite3.Connection:
    """The database at ``path`` (created when missing), identified, in WAL mode and migrated."""
    location = str(path)
    _check_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(location, f"cannot create its directory: {exc.strerror}") from None
    with store_errors(location):
        conn = sqlite3.connect(location, isolation_level=None, timeout=10.0)
        conn.row_factory = sqlite3.Row
        _check_identity(conn, location)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    return conn


def _check_file(path: Path) -> None:
    location = str(path)
    if path.is_dir():
        raise StoreError(location, "is a directory, not a database file")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(location, f"cannot be read: {exc.strerror}") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(location, f"is not an SQLite database (damaged, or another kind of file); {MOVE_HINT}")


def _check_identity(conn: sqlite3.Connection, location: str) -> None:
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = int(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    if app_id != APPLICATION_ID and (app_id != 0 or tables or version):
        raise StoreError(location, f"is an SQLite database of another program (application id {app_id}, "
                                   f"{tables} tables), not a harness findings database; {MOVE_HINT}")
    if version > LATEST:
        raise StoreError(location, f"was written by a newer harness (schema version {version}; this "
                                   f"harness knows up to {LATEST}): upgrade the harness or use another "
                                   "database")


@contextlib.contextmanager
def store_errors(location: str) -> Iterator[None]:
    """sqlite3's exceptions as one-line StoreErrors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(location, "is locked by another process for more than 10 s") from None
        raise StoreError(location, f"cannot be used ({exc}); {MOVE_HINT}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(location, f"is damaged ({exc}); {MOVE_HINT}") from None
