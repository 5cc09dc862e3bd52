"""The shared backend: PostgreSQL, for several daemons on one state (``pip install
news-monitor[postgres]``).

The same queries as SQLite (:class:`~monitor.store.sql.SqlStore`), through psycopg 3 with
client-side parameter binding (so ``?``-style portable SQL maps onto ``%s`` and a ``NULL`` needs
no declared type). What only PostgreSQL does here:

- claims skip rows another daemon is claiming (``FOR UPDATE SKIP LOCKED``) and leases run on
  the database's clock, so no daemon's clock skew steals or stretches a lease;
- story decisions for a rule are serialised across daemons with transaction advisory locks,
  taken in sorted order (two daemons never deadlock);
- migrations take an advisory lock too: daemons starting together migrate once.

One connection per daemon, from a pool of one: the pool reconnects after the server restarts
and checks a connection before handing it out. Every statement runs under the store's lock, so
a transaction and the reads of other threads never interleave.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import StoreError
from monitor.store.migrations import MIGRATIONS, statements
from monitor.store.sql import SCHEMA_VERSION, Conn, Rows, SqlStore

try:
    import psycopg
    import psycopg_pool
except ImportError:  # pragma: no cover - the extra is not installed
    psycopg = None  # type: ignore[assignment]
    psycopg_pool = None  # type: ignore[assignment]

_MIGRATION_LOCK = 0x6E6D5F6D  # an advisory lock key of our own ("nm_m")


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return re.sub(r"\?", "%s", sql.replace("%", "%%"))


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class _PgConn:
    """Statements on the transaction's connection, or on one borrowed for a lone read."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def _run(self, conn: Any, sql: str, parameters: Sequence[Any]) -> Rows:
        with conn.cursor() as cur:
            cur.execute(_pg(sql) if parameters else sql, tuple(parameters) or None)
            rows = cur.fetchall() if cur.description is not None else []
            return Rows(cur.rowcount, rows)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        store = self._store
        with store._lock:
            if store._conn is not None:
                return self._run(store._conn, sql, parameters)
            with store._pool.connection() as conn:
                return self._run(conn, sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any:
        rows = [tuple(p) for p in seq_of_parameters]
        if not rows:
            return None
        store = self._store
        with store._lock:
            assert store._conn is not None, "executemany runs inside a transaction"
            with store._conn.cursor() as cur:
                cur.executemany(_pg(sql), rows)
        return None


class PostgresStore(SqlStore):
    backend = "postgres"
    _seq = "seq"
    _concat = "string_agg"
    _skip_locked = " FOR UPDATE SKIP LOCKED"
    shared = True

    def __init__(
        self, url: str, *, password: str | None = None, readonly: bool = False, timeout: float = 10
    ) -> None:
        """Connect (within ``timeout`` seconds) and migrate, unless ``readonly``."""
        super().__init__()
        if psycopg is None or psycopg_pool is None:
            raise StoreError(
                "state: a postgresql:// state needs the PostgreSQL driver: "
                "pip install 'news-monitor[postgres]'"
            )
        self.path = Path()
        self.where = redact(url)
        self._errors = (psycopg.Error,)
        self._conn: Any = None  # the connection of the open transaction, if any
        kwargs: dict[str, Any] = {"autocommit": True, "cursor_factory": psycopg.ClientCursor}
        if password is not None:
            kwargs["password"] = password
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=1,
            kwargs=kwargs,
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="news-monitor",
        )
        try:
            # One plain connection first: a refused connection or a bad password is reported
            # at once, with the server's reason, instead of after the pool's timeout.
            psycopg.connect(url, connect_timeout=max(1, int(timeout)), **kwargs).close()
            self._pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            self._pool.close()
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(f"{self.where}: cannot connect to the state database: {reason}") from e
        self._db: Conn = _PgConn(self)
        try:
            if readonly:
                if self.schema_version != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.where}: state schema {self.schema_version} is not current"
                    )
                return
            self._migrate()
        except psycopg.Error as e:
            self._pool.close()
            raise StoreError(f"{self.where}: cannot open the state database: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A pooled connection for the transaction; every statement inside runs on it."""
        with self._pool.connection() as conn, conn.transaction():
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    def _db_now(self, now: datetime) -> float:
        (t,) = self._db.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return float(t)

    def _lock_rules(self, rules: Sequence[str]) -> None:
        for rule in rules:
            self._db.execute(
                "SELECT pg_advisory_xact_lock(hashtext(?))", (f"news-monitor rule {rule}",)
            )

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.where}: the state was written by a newer news-monitor "
                    f"(schema {version}, this one knows {SCHEMA_VERSION})"
                )
            for n in range(version, SCHEMA_VERSION):
                for stmt in statements(MIGRATIONS[n], "postgres"):
                    db.execute(stmt)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) "
                    "VALUES (?, extract(epoch FROM now()))",
                    (n + 1,),
                )

    @property
    def schema_version(self) -> int:
        row = self._db.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version' "
            "AND table_schema = current_schema()"
        ).fetchone()
        if row is None:
            return 0
        (v,) = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(v or 0)
