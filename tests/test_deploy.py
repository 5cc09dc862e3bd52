"""deploy/install.sh, run for real into a temporary DESTDIR: the tree, a rerun, --uninstall.

Under DESTDIR the script creates no user and calls no systemctl (and says so), so these tests
need neither root nor systemd. They stay offline and fast: the project is built here into a
wheel (``--no-build-isolation``, the dev venv's setuptools) and installed with ``PIP_NO_INDEX``
and ``PIP_NO_DEPS``; a ``.pth`` file then lends the installed venv this venv's site-packages for
the dependencies, so ``news-monitor --version`` and ``check`` run the installed copy.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import monitor

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "install.sh"


def _require(tool: str) -> None:
    """A tool the script needs: skip without it, but fail under CI=true (.ci/run provides it)."""
    if shutil.which(tool) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{tool} not found (CI=true: a missing tool fails instead of skipping)")
        pytest.skip(f"{tool} not found")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as a wheel, built from a copy so the tree gets no build/ or egg-info."""
    for tool in ("sh", "install", "cmp", "find"):
        _require(tool)
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "monitor", src / "monitor", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "wheel", *offline, "--wheel-dir", str(out), str(src)], check=True)
    (whl,) = out.glob("news_monitor-*.whl")
    return whl


def run_script(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(DESTDIR=str(destdir), PYTHON=sys.executable, PIP_NO_INDEX="1", PIP_NO_DEPS="1")
    # Away from the checkout, whose monitor/ would shadow the installed one for `python -c`.
    return subprocess.run(
        [str(SCRIPT), *args], cwd=destdir, env=env, capture_output=True, text=True, check=False
    )


def install(destdir: Path, wheel: Path) -> str:
    r = run_script(destdir, str(wheel))
    assert r.returncode == 0, r.stdout + r.stderr
    venv = destdir / "opt/news-monitor/.venv"
    purelib = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return r.stdout


def snapshot(*roots: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``roots`` with its mode and, for files, its bytes."""
    seen: dict[str, tuple[int, bytes | None]] = {}
    for root in roots:
        for p in [root, *sorted(root.rglob("*"))]:
            st = p.lstat()
            seen[str(p)] = (st.st_mode, p.read_bytes() if p.is_file() else None)
    return seen


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_help_and_bad_usage(tmp_path: Path) -> None:
    _require("sh")
    r = run_script(tmp_path, "--help")
    assert r.returncode == 0
    assert "Usage: deploy/install.sh" in r.stdout
    assert "--uninstall" in r.stdout
    assert list(tmp_path.iterdir()) == []  # --help installs nothing

    r = run_script(tmp_path, "--frobnicate")
    assert r.returncode == 2
    assert "unknown option --frobnicate" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # builds a wheel and installs it into a fresh venv
def test_install_then_rerun_keeps_what_the_operator_edited(tmp_path: Path, wheel: Path) -> None:
    d = tmp_path
    out = install(d, wheel)
    venv = d / "opt/news-monitor/.venv"
    etc = d / "etc/news-monitor"
    unit = d / "etc/systemd/system/news-monitor.service"

    # The machine-wide steps are skipped, and said to be.
    assert "skipped: groupadd --system news-monitor, useradd --system news-monitor" in out
    assert "skipped: systemctl daemon-reload && systemctl enable --now news-monitor" in out

    # The installed copy runs, from the venv under DESTDIR.
    r = subprocess.run(
        [str(venv / "bin/news-monitor"), "--version"], capture_output=True, text=True, check=True
    )
    assert r.stdout.strip() == f"news-monitor {monitor.__version__}"
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import monitor; print(monitor.__file__)"],
        cwd=d,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv))

    # The example config, readable by the service's group only; secrets empty and 0600.
    assert (etc / "monitor.yaml").read_bytes() == (ROOT / "config/monitor.yaml").read_bytes()
    assert mode(etc / "monitor.yaml") == 0o640
    examples = sorted(p.name for p in (ROOT / "config/watchlists").glob("*.yaml"))
    assert sorted(p.name for p in (etc / "watchlists").iterdir()) == examples
    assert mode(etc / "watchlists") == 0o750
    assert (etc / "secrets.env").read_bytes() == b""
    assert mode(etc / "secrets.env") == 0o600
    assert unit.read_bytes() == (ROOT / "deploy/news-monitor.service").read_bytes()
    assert os.access(d / "opt/news-monitor/deploy/check", os.X_OK)
    assert (d / "opt/news-monitor/README.md").is_file()  # the unit's Documentation=

    # The installed config and watchlists belong together: `check` passes on them.
    r = subprocess.run(
        [str(venv / "bin/news-monitor"), "-c", str(etc / "monitor.yaml"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(examples)} watchlist files" in r.stdout

    # The operator edits the config, drops a watchlist, fills in secrets; the unit and the
    # code go stale (an older build of the same version).
    edited = (etc / "monitor.yaml").read_text() + "# edited by the operator\n"
    (etc / "monitor.yaml").write_text(edited)
    (etc / "watchlists" / examples[0]).unlink()
    (etc / "secrets.env").write_text("TG_TOKEN=123:abc\n")
    unit.write_text("[Service]\nExecStart=/bin/false\n")
    init = Path(where.strip())
    init.write_text(init.read_text() + "raise SystemExit('stale build')\n")

    out = install(d, wheel)
    assert "kept" in out
    assert (etc / "monitor.yaml").read_text() == edited
    assert not (etc / "watchlists" / examples[0]).exists()  # not brought back
    assert (etc / "secrets.env").read_text() == "TG_TOKEN=123:abc\n"
    assert mode(etc / "secrets.env") == 0o600
    assert unit.read_bytes() == (ROOT / "deploy/news-monitor.service").read_bytes()
    assert "stale build" not in init.read_text()  # reinstalled though the version is the same
    subprocess.run([str(venv / "bin/news-monitor"), "--version"], check=True, capture_output=True)

    # A third run changes nothing at all in the config or the unit.
    before = snapshot(etc, unit.parent)
    install(d, wheel)
    assert snapshot(etc, unit.parent) == before


@pytest.mark.slow  # builds a wheel and installs it into a fresh venv
def test_uninstall_keeps_config_and_state(tmp_path: Path, wheel: Path) -> None:
    d = tmp_path
    install(d, wheel)
    etc = d / "etc/news-monitor"
    (etc / "monitor.yaml").write_text((etc / "monitor.yaml").read_text() + "# mine\n")
    state = d / "var/lib/news-monitor"
    state.mkdir(parents=True)
    (state / "state.db").write_bytes(b"SQLite format 3\x00")
    kept = snapshot(etc, state)

    r = run_script(d, "--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (d / "etc/systemd/system/news-monitor.service").exists()
    assert not (d / "opt/news-monitor").exists()
    assert snapshot(etc, state) == kept
    assert "skipped: userdel news-monitor, groupdel news-monitor (DESTDIR is set)" in r.stdout
    assert f"kept {etc} (config, watchlists, secrets) and {state} (state)" in r.stdout

    again = run_script(d, "--uninstall")  # nothing left to remove is not an error
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removed" not in again.stdout
    assert snapshot(etc, state) == kept
