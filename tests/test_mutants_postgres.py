"""The PostgreSQL store's own code that ``make mutants`` found untested: what it says when it
cannot connect or has no driver, the password it connects with, and a server that refuses writes.
"""

from __future__ import annotations

import functools
import socket
from typing import Any

import psycopg
import pytest

from monitor.errors import StoreError
from monitor.store import SCHEMA_VERSION, open_store, postgres
from monitor.store.postgres import PostgresStore, redact


def test_a_password_in_the_state_url_is_masked_and_the_servers_reason_is_given() -> None:
    """The error of an unreachable state names it without its password, then gives the first
    line of the server's reason (not the driver's exception class, not a hint line)."""
    with pytest.raises(StoreError) as e:
        open_store("postgresql://news:hunter2@127.0.0.1:1/state", readonly=True)
    message = str(e.value)
    prefix = "postgresql://news:***@127.0.0.1:1/state: cannot connect to the state database: "
    assert message.startswith(prefix)
    assert message.endswith("Connection refused") and "\n" not in message
    assert "hunter2" not in message
    assert redact("postgres://u:pw@db.example:5432/s") == "postgres://u:***@db.example:5432/s"
    assert redact("postgresql://u@db.example/s") == "postgresql://u@db.example/s"


@pytest.mark.parametrize("missing", ["psycopg", "psycopg_pool"])
def test_a_postgresql_state_without_the_driver_says_how_to_install_it(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either half of the ``[postgres]`` extra missing is the same word-for-word advice."""
    monkeypatch.setattr(postgres, missing, None)
    with pytest.raises(StoreError) as e:
        PostgresStore("postgresql://news@127.0.0.1:1/state")
    assert str(e.value) == (
        "state: a postgresql:// state needs the PostgreSQL driver: "
        "pip install 'news-monitor[postgres]'"
    )


def test_a_separate_password_is_used_by_every_connection(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password from ``password_file`` (not in the URL) reaches the up-front check and the
    pool's connections; the test server trusts everyone, so it is read back from each one."""
    used: list[Any] = []
    real = psycopg.Connection.connect

    def spy(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
        conn = real(conninfo, **kwargs)
        used.append(conn.info.password)
        return conn

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(spy))
    monkeypatch.setattr(psycopg, "connect", functools.partial(spy, psycopg.Connection))
    store = PostgresStore(pg_url, password="s3cret")
    try:
        assert store.feed_states() == []
    finally:
        store.close()
    assert len(used) >= 2 and set(used) == {"s3cret"}


def test_a_state_the_server_keeps_read_only_is_reported_not_writable(pg_url: str) -> None:
    """``/healthz`` on a hot standby (or ``default_transaction_read_only``): the server's
    refusal is the answer, not a crash of the health check."""
    open_store(pg_url).close()
    store = open_store(pg_url + "%20-cdefault_transaction_read_only%3Don", readonly=True)
    try:
        why = store.writable()
    finally:
        store.close()
    assert why == "state not writable: cannot execute DELETE in a read-only transaction"


def test_a_read_only_open_of_an_older_state_says_its_schema_is_not_current(pg_url: str) -> None:
    """`status` on a state an older release wrote (a read never migrates): the error names
    the state and its schema."""
    store = open_store(pg_url)
    where = store.where
    store._db.execute("DELETE FROM schema_version WHERE version = ?", (SCHEMA_VERSION,))
    store.close()
    with pytest.raises(StoreError) as e:
        open_store(pg_url, readonly=True)
    assert str(e.value) == f"{where}: state schema {SCHEMA_VERSION - 1} is not current"


def test_a_state_that_cannot_be_created_gives_the_servers_reason(pg_url: str) -> None:
    """The first start on a database the server keeps read-only: the daemon connects, then
    cannot create its tables, and says so with the server's words (not just that it failed)."""
    ro = pg_url + "%20-cdefault_transaction_read_only%3Don"
    with pytest.raises(StoreError) as e:
        open_store(ro)
    assert str(e.value) == (
        f"{redact(ro)}: cannot open the state database: "
        "cannot execute CREATE TABLE in a read-only transaction"
    )


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    """A host that takes the connection and then says nothing (a firewall, a stuck server): the
    start fails with the driver's reason after ``timeout`` seconds instead of hanging. (The
    kernel completes the handshake for a listening socket that never accepts.)"""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"postgresql://news@127.0.0.1:{silent.getsockname()[1]}/state"
        with pytest.raises(StoreError) as e:
            PostgresStore(url, timeout=1)
    assert str(e.value) == (
        f"{url}: cannot connect to the state database: connection timeout expired"
    )
