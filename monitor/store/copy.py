"""``news-monitor migrate``: copy one daemon's SQLite state into a PostgreSQL state.

Every record that matters moves (feed state and schedule, seen items, hits, the outbox with its
ids and delivery state, stories with their members in join order, per-day counts, periodic
jobs, the recent items the web view searches); the ``daemon`` rows stay behind (they describe
the old process). The destination must be empty: merging two histories would break "one
alert per item and rule" in ways no one could see. All of it is one transaction on the
destination: a failed copy leaves it empty.
"""

from __future__ import annotations

from monitor.errors import StoreError
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore

# In dependency-free order; story members in commit order (rowid), which PostgreSQL's ``seq``
# then numbers the same way.
TABLES = (
    "feeds",
    "seen",
    "hits",
    "outbox",
    "feed_days",
    "stories",
    "story_members",
    "jobs",
    "recent_items",
)


def copy_state(src: SqliteStore, dst: PostgresStore) -> dict[str, int]:
    """Copy ``src`` into the empty ``dst``; returns the rows copied per table."""
    counts: dict[str, int] = {}
    with dst._tx() as out:
        for table in TABLES:
            (n,) = out.execute(f"SELECT count(*) FROM {table}").fetchone()
            if n:
                raise StoreError(
                    f"{dst.where}: table {table} already holds {n} rows; "
                    "migrate copies into an empty state only"
                )
        for table in TABLES:
            cols = [r[1] for r in src._db.execute(f"PRAGMA table_info({table})").fetchall()]
            rows = src._db.execute(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid"
            ).fetchall()
            marks = ", ".join("?" * len(cols))
            out.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
            counts[table] = len(rows)
        # Ids were copied as they were: new alerts continue after the highest.
        out.execute(
            "SELECT setval(pg_get_serial_sequence('outbox', 'id'), "
            "COALESCE((SELECT max(id) FROM outbox), 0) + 1, false)"
        )
    return counts
