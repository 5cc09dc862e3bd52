"""A real PostgreSQL server for the tests: a throwaway cluster per test process.

``initdb`` and ``pg_ctl`` from the Debian ``postgresql`` package (``.ci/run`` installs it when
missing), run as an unprivileged user when the tests run as root (PostgreSQL refuses root).
Each test gets a fresh schema of its own (``pg_url``), which is much cheaper than a database.
Without PostgreSQL the tests that need it skip on a developer's machine and fail under
``CI=true``, like missing fixture data (:func:`tests.fixturedata.missing`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixturedata import missing


def _bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or the newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running server: ``url(schema)`` connects to ``schema`` in database ``postgres``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="news-monitor-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pwd.getpwnam(name)
                    self.user = name
                    break
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.root, info.pw_uid, info.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> str | None:
        """None when the server runs, else why not."""
        r = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "monitor",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        if r.returncode:
            return f"initdb failed: {r.stderr.strip()[-500:]}"
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.root / "server.log")
        r = self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", log, "-w", "start")
        if r.returncode:
            tail = Path(log).read_text(errors="replace")[-500:] if Path(log).exists() else ""
            return f"pg_ctl start failed: {r.stderr.strip()[-300:]} {tail}"
        return None

    def restart(self) -> str | None:
        """Restart the server (``-m fast``: connections are cut); None when it runs again."""
        log = str(self.root / "server.log")  # not our pipe: the server would hold it open
        r = self._run("pg_ctl", "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")
        return None if r.returncode == 0 else f"pg_ctl restart failed: {r.stderr.strip()[-300:]}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return f"postgresql://monitor@127.0.0.1:{self.port}/postgres"

    def url(self, schema: str) -> str:
        return f"{self.base_url}?options=-csearch_path%3D{schema}"

    def new_schema(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install -e '.[dev]')")
    assert bindir is not None
    cluster = Cluster(bindir)
    why = cluster.start()
    if why is not None:
        shutil.rmtree(cluster.root, ignore_errors=True)
        missing(f"PostgreSQL cannot start: {why}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A connection URL to an empty schema of this test's own."""
    return pg_cluster.new_schema()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's state lives, on each backend in turn: a SQLite file or a PostgreSQL URL."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "state.sqlite3")


@pytest.fixture
def open_state(state: str) -> Iterator[Callable[..., object]]:
    """Open the test's state (as often as a test likes); every store opened is closed after."""
    from monitor.store import open_store

    opened = []

    def opener(readonly: bool = False):  # type: ignore[no-untyped-def]
        s = open_store(state, readonly=readonly)
        opened.append(s)
        return s

    yield opener
    for s in opened:
        with contextlib.suppress(Exception):
            s.close()


@pytest.fixture
def pg_store_factory(pg_url: str) -> Callable[..., object]:
    """A stand-in for ``SqliteStore(path, readonly=...)`` that opens this test's PostgreSQL
    schema instead, whatever the path: a test written for one state runs on PostgreSQL as is."""
    from monitor.store import open_store

    def factory(path: object = None, *, readonly: bool = False) -> object:
        return open_store(pg_url, readonly=readonly)

    return factory


def on_both_backends(module: str) -> Callable[..., object]:
    """An autouse fixture for a test module that names ``Store`` (the SQLite store): every test
    of it runs on SQLite, then on PostgreSQL."""

    @pytest.fixture(autouse=True, params=["sqlite", "postgres"])
    def backend_for_module(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        if request.param == "postgres":
            import sys

            factory = request.getfixturevalue("pg_store_factory")
            monkeypatch.setattr(sys.modules[module], "Store", factory)
        return str(request.param)

    return backend_for_module


# For a test of such a module that reads the state through the CLI, a daemon process or the
# SQLite file itself (its state is the config's file): it runs on SQLite only.
sqlite_only = pytest.mark.parametrize("backend_for_module", ["sqlite"], indirect=True)
