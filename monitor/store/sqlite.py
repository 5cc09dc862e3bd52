"""The embedded backend: one SQLite file in WAL mode, for one daemon (the default).

One daemon per file, enforced by :class:`~monitor.store.records.StateLock`; so the coordination
of :class:`~monitor.store.sql.SqlStore` (leases, claims, the rule locks) is cheap bookkeeping
here, and ``BEGIN IMMEDIATE`` alone serialises writers. A read-only open (``status``, ``history``)
needs no lock: WAL lets it read while the daemon writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monitor.errors import StoreError
from monitor.store.migrations import MIGRATIONS, statements
from monitor.store.sql import SCHEMA_VERSION, Rows, SqlStore


class _Locked:
    """A connection shared by threads: one statement at a time, its rows fetched at once."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        with self._lock:
            cur = self._conn.execute(sql, parameters)
            return Rows(cur.rowcount, cur.fetchall())

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any:
        with self._lock:
            return self._conn.executemany(sql, seq_of_parameters)


class SqliteStore(SqlStore):
    backend = "sqlite"
    _begin_sql = "BEGIN IMMEDIATE"  # take the write lock now, not at the first write
    _errors = (sqlite3.Error,)

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        """Open (creating and migrating) the state; ``readonly`` opens an existing one to read."""
        super().__init__()
        self.path = Path(path)
        self.where = str(path)
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"{path}: no state yet (news-monitor has not run here)")
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._raw = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
                self._db = _Locked(self._raw, self._lock)
                self._raw.execute("PRAGMA busy_timeout=5000")
                if self.schema_version != SCHEMA_VERSION:
                    raise StoreError(f"{path}: state schema {self.schema_version} is not current")
                return
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._raw = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db = _Locked(self._raw, self._lock)
            self._raw.execute("PRAGMA journal_mode=WAL")
            self._raw.execute("PRAGMA synchronous=NORMAL")
            self._raw.execute("PRAGMA busy_timeout=5000")
            self._raw.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot open the state database: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._raw.close()

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the state was written by a newer news-monitor "
                f"(schema {version}, this one knows {SCHEMA_VERSION})"
            )
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            # A state from before the table: its migrations were applied, at a time unknown.
            db.executemany(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, 0) "
                "ON CONFLICT DO NOTHING",
                [(n,) for n in range(1, version + 1)],
            )
        for n in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                for stmt in statements(MIGRATIONS[n], "sqlite"):
                    db.execute(stmt)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, unixepoch())",
                    (n + 1,),
                )
                # Kept too: a release that predates ``schema_version`` reads this, and so
                # refuses a state newer than it knows instead of misreading it.
                db.execute(f"PRAGMA user_version = {n + 1}")

    @property
    def schema_version(self) -> int:
        """The migrations applied: ``schema_version``, or the older ``PRAGMA user_version``."""
        with self._lock:
            has_table = self._raw.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if has_table:
                (v,) = self._raw.execute("SELECT max(version) FROM schema_version").fetchone()
                if v is not None:
                    return int(v)
            return int(self._raw.execute("PRAGMA user_version").fetchone()[0])
