"""The numbered schema migrations, shared by both backends.

Written once, in the SQL both SQLite and PostgreSQL read; :func:`for_postgres` turns the few
type names that differ (SQLite's ``REAL`` is PostgreSQL's 4-byte float, too small for epoch
seconds; ``INTEGER PRIMARY KEY`` is SQLite's row id). Applied at open, each in its own
transaction, and recorded in ``schema_version`` (one row per migration applied). A database
made before that table existed (SQLite, ``PRAGMA user_version`` 1 to 4) is read by that number.
"""

from __future__ import annotations

import re

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE feeds (
        name            TEXT PRIMARY KEY,
        config_url      TEXT NOT NULL,
        url             TEXT NOT NULL,
        etag            TEXT,
        last_modified   TEXT,
        first_polled_at REAL,
        next_poll_at    REAL,
        not_before      REAL,
        last_attempt_at REAL,
        last_success_at REAL,
        last_status     INTEGER,
        last_error      TEXT,
        failures        INTEGER NOT NULL DEFAULT 0,
        backoff_seconds REAL,
        last_new_item_at REAL,
        gone            INTEGER NOT NULL DEFAULT 0,
        notice          TEXT,
        body_hash       TEXT,
        rules_fingerprint TEXT,
        ttl_seconds     REAL
    );
    CREATE TABLE seen (
        key           TEXT PRIMARY KEY,
        first_seen_at REAL NOT NULL,
        last_seen_at  REAL NOT NULL,
        published_at  REAL,
        eligible_at   REAL,
        feed          TEXT NOT NULL,
        title         TEXT NOT NULL
    );
    CREATE INDEX seen_last_seen ON seen(last_seen_at);
    CREATE TABLE hits (
        key        TEXT NOT NULL,
        rule       TEXT NOT NULL,
        matched_at REAL NOT NULL,
        PRIMARY KEY (key, rule)
    );
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        key             TEXT NOT NULL,
        rule            TEXT NOT NULL,
        channel         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        created_at      REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_at REAL,
        last_error      TEXT,
        sent_at         REAL,
        next_attempt_at REAL,
        done            TEXT NOT NULL DEFAULT '[]',
        dead_at         REAL,
        UNIQUE (key, rule, channel)
    );
    CREATE INDEX outbox_pending ON outbox(sent_at, dead_at, next_attempt_at, id);
    CREATE TABLE feed_days (
        feed  TEXT NOT NULL,
        day   TEXT NOT NULL,
        items INTEGER NOT NULL,
        PRIMARY KEY (feed, day)
    );
    """,
    # 2: stories (story dedup). A story is named by the key of its first hit; ``updated_at`` is
    # when its last "also reported by" follow-up was queued.
    """
    CREATE TABLE stories (
        rule           TEXT NOT NULL,
        story          TEXT NOT NULL,
        title          TEXT NOT NULL,
        link           TEXT,
        source         TEXT,
        created_at     REAL NOT NULL,
        last_joined_at REAL NOT NULL,
        members        INTEGER NOT NULL DEFAULT 1,
        updated_at     REAL,
        PRIMARY KEY (rule, story)
    );
    CREATE INDEX stories_last_joined ON stories(last_joined_at);
    CREATE TABLE story_members (
        rule         TEXT NOT NULL,
        key          TEXT NOT NULL,
        story        TEXT NOT NULL,
        title        TEXT NOT NULL,
        summary      TEXT,
        related      TEXT NOT NULL DEFAULT '[]',
        source       TEXT,
        link         TEXT,
        feed         TEXT NOT NULL,
        published_at REAL,
        joined_at    REAL NOT NULL,
        similarity   REAL,
        reason       TEXT NOT NULL,
        announced    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (rule, key)
    );
    CREATE INDEX story_members_story ON story_members(rule, story);
    CREATE INDEX story_members_joined ON story_members(joined_at);
    """,
    # 3: delivery for people. ``batch`` names the message an alert went out in (a digest, or
    # one item's rules grouped): rate limits count messages, not rows.
    """
    ALTER TABLE outbox ADD COLUMN batch TEXT;
    CREATE INDEX outbox_channel_sent ON outbox(channel, sent_at);
    """,
    # 4: what the running daemon says about itself, for `status` (one row per daemon).
    """
    CREATE TABLE daemon (
        pid              INTEGER PRIMARY KEY,
        host             TEXT NOT NULL,
        started_at       REAL NOT NULL,
        config_loaded_at REAL NOT NULL,
        reload_at        REAL,
        reload_result    TEXT,
        last_tick_at     REAL,
        stopped_at       REAL
    );
    """,
    # 5: several daemons on one state. A feed is polled under a lease (``lease_until``, on the
    # database's clock; ``lease_gen`` fences a daemon that outlived its lease), an alert is sent
    # under a claim, and ``jobs`` says when each periodic job last ran for the whole group.
    # ``seq`` orders story members in commit order per rule (SQLite has its rowid for that),
    # which is how a daemon catches up on the members the others recorded.
    """
    ALTER TABLE feeds ADD COLUMN lease_owner TEXT;
    ALTER TABLE feeds ADD COLUMN lease_until REAL;
    ALTER TABLE feeds ADD COLUMN lease_gen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN claim_owner TEXT;
    ALTER TABLE outbox ADD COLUMN claim_until REAL;
    /* postgres */ ALTER TABLE story_members ADD COLUMN seq BIGSERIAL;
    /* postgres */ CREATE INDEX story_members_seq ON story_members(rule, seq);
    CREATE TABLE jobs (
        name        TEXT PRIMARY KEY,
        last_run_at REAL NOT NULL,
        owner       TEXT
    );
    DROP TABLE daemon;
    CREATE TABLE daemon (
        host             TEXT NOT NULL,
        pid              INTEGER NOT NULL,
        started_at       REAL NOT NULL,
        config_loaded_at REAL NOT NULL,
        reload_at        REAL,
        reload_result    TEXT,
        last_tick_at     REAL,
        stopped_at       REAL,
        PRIMARY KEY (host, pid)
    );
    """,
    # 6: recent items for the web view's /preview and `backtest`: what a query would have
    # matched. Bounded by ``web.keep_items`` and ``web.max_items`` (prune_recent). ``words`` is
    # the folded words of every field, space-separated with a space at each end, so that a
    # query's index keys become LIKE patterns and most rows are never read into Python.
    """
    CREATE TABLE recent_items (
        key          TEXT PRIMARY KEY,
        seen_at      REAL NOT NULL,
        feed         TEXT NOT NULL,
        title        TEXT NOT NULL,
        summary      TEXT NOT NULL,
        source       TEXT,
        source_url   TEXT,
        link         TEXT,
        published_at REAL,
        lang         TEXT,
        related      TEXT NOT NULL DEFAULT '[]',
        words        TEXT NOT NULL
    );
    CREATE INDEX recent_items_seen ON recent_items(seen_at);
    """,
)


_ONLY = re.compile(r"^\s*/\* (postgres|sqlite) \*/\s*")


def statements(migration: str, backend: str) -> list[str]:
    """One migration's statements for ``backend`` (``sqlite`` or ``postgres``).

    A statement marked ``/* postgres */`` or ``/* sqlite */`` is for that backend only.
    """
    out = []
    for stmt in migration.split(";"):
        if not stmt.strip():
            continue
        only = _ONLY.match(stmt)
        if only is not None:
            if only.group(1) != backend:
                continue
            stmt = stmt[only.end() :]
        out.append(for_postgres(stmt) if backend == "postgres" else stmt.strip())
    return out


def for_postgres(stmt: str) -> str:
    """SQLite's type names as PostgreSQL spells them."""
    stmt = re.sub(
        r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", stmt
    )
    stmt = re.sub(r"\bREAL\b", "DOUBLE PRECISION", stmt)
    return stmt.strip()
