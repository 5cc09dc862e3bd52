#!/bin/sh
# Install news-monitor as a systemd service, upgrade it (run again), or remove it (--uninstall).
# Idempotent: what the operator owns (config, watchlists, secrets, state) is created only when
# absent and never overwritten or removed. deploy/README.md has the details.
set -eu

usage() {
    cat <<'USAGE'
Usage: deploy/install.sh [PATH | WHEEL]   install or upgrade (default: this source tree)
       deploy/install.sh --uninstall      remove the service, keep config and state
       deploy/install.sh --help

Installs:
  /opt/news-monitor/.venv              a venv with news-monitor from PATH or WHEEL, upgraded on
                                       every run; README.md and deploy/ beside it
  /etc/news-monitor/monitor.yaml       the example config, only when absent
  /etc/news-monitor/watchlists/        the example watchlists, only when the folder is absent
  /etc/news-monitor/secrets.env        empty, mode 0600, only when absent
  /etc/systemd/system/news-monitor.service
                                       the unit, replaced on every run (local changes belong
                                       in a drop-in: systemctl edit news-monitor)
  the news-monitor system user and group, when absent
then, when systemd is running: systemctl daemon-reload, systemctl enable --now news-monitor,
and a restart when it was already running, so that an upgrade takes effect.

--uninstall stops and removes the unit, /opt/news-monitor and the user and group; it keeps
/etc/news-monitor (config, secrets) and /var/lib/news-monitor (state).

Environment:
  DESTDIR   prefix for every path (packaging, tests); no user and no systemctl then
  PYTHON    the interpreter the venv is made from (default python3; 3.11 or later)
  PIP_*     pip's own settings, e.g. PIP_INDEX_URL for a mirror, PIP_NO_INDEX=1 offline
USAGE
}

say() { printf 'install.sh: %s\n' "$*"; }
skip() { say "skipped: $*"; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

action=install
src=
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help)
            usage
            exit 0
            ;;
        --uninstall) action=uninstall ;;
        -*)
            printf 'install.sh: unknown option %s\n' "$1" >&2
            usage >&2
            exit 2
            ;;
        *)
            [ -z "$src" ] || die "one PATH or WHEEL only (got '$src' and '$1')"
            src=$1
            ;;
    esac
    shift
done
[ "$action" = install ] || [ -z "$src" ] || die "--uninstall takes no PATH"

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
OPT=$DESTDIR/opt/news-monitor
VENV=$OPT/.venv
ETC=$DESTDIR/etc/news-monitor
UNIT=$DESTDIR/etc/systemd/system/news-monitor.service
STATE=$DESTDIR/var/lib/news-monitor
NAME=news-monitor

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or set DESTDIR=/some/dir to install into a staging tree)"
fi

# Users and systemctl act on this machine, not on a tree under DESTDIR: say what is left out.
systemd_usable() {
    if [ -n "$DESTDIR" ]; then
        skip "$1 (DESTDIR is set)"
        return 1
    fi
    if [ ! -d /run/systemd/system ]; then
        skip "$1 (systemd is not running)"
        return 1
    fi
}

uninstall() {
    systemd=no
    if systemd_usable "systemctl disable --now $NAME && systemctl daemon-reload"; then
        systemd=yes
    fi
    if [ "$systemd" = yes ] && [ -e "$UNIT" ]; then
        systemctl disable --now "$NAME"
    fi
    if [ -e "$UNIT" ]; then
        rm -f "$UNIT"
        say "removed $UNIT"
    fi
    if [ "$systemd" = yes ]; then
        systemctl daemon-reload
    fi
    if [ -e "$UNIT.d" ]; then
        say "kept $UNIT.d (your drop-ins; harmless without the unit)"
    fi
    if [ -e "$OPT" ]; then
        rm -rf "$OPT"
        say "removed $OPT"
    fi
    if [ -n "$DESTDIR" ]; then
        skip "userdel $NAME, groupdel $NAME (DESTDIR is set)"
    else
        if getent passwd "$NAME" >/dev/null; then
            userdel "$NAME"
            say "removed user $NAME"
        fi
        if getent group "$NAME" >/dev/null; then
            groupdel "$NAME"
            say "removed group $NAME"
        fi
    fi
    say "kept $ETC (config, watchlists, secrets) and $STATE (state): they are yours;" \
        "remove them by hand to erase everything"
}

install_files() {
    here=$(cd "$(dirname "$0")" && pwd)
    tree=$(dirname "$here")
    [ -f "$here/news-monitor.service" ] && [ -f "$tree/config/monitor.yaml" ] \
        || die "run deploy/install.sh from a news-monitor source tree ($tree has no config/monitor.yaml)"
    src=${src:-$tree}
    [ -e "$src" ] || die "$src does not exist"
    # An absolute path: pip takes a bare word for a package name on PyPI.
    src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
    if [ -d "$src" ] && [ ! -f "$src/pyproject.toml" ]; then
        die "$src has no pyproject.toml"
    fi

    # 1. The service's user and group (no login, home is the state directory).
    group=
    if [ -n "$DESTDIR" ]; then
        skip "groupadd --system $NAME, useradd --system $NAME (DESTDIR is set)"
    else
        if ! getent group "$NAME" >/dev/null; then
            groupadd --system "$NAME"
            say "created group $NAME"
        fi
        if ! getent passwd "$NAME" >/dev/null; then
            nologin=$(command -v nologin || echo /usr/sbin/nologin)
            useradd --system --gid "$NAME" --home-dir /var/lib/news-monitor --no-create-home \
                --shell "$nologin" --comment "news-monitor daemon" "$NAME"
            say "created user $NAME"
        fi
        group=$NAME
    fi

    # 2. The code: a venv of its own, so upgrades never touch the system's Python.
    python=${PYTHON:-python3}
    if [ ! -x "$VENV/bin/python" ]; then
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || die "$python is older than Python 3.11 (set PYTHON=python3.11)"
        mkdir -p "$OPT"
        "$python" -m venv "$VENV"
        say "created venv $VENV"
    fi
    # -I: nothing from the current directory (a source tree, its egg-info) or PYTHON* variables.
    pip="$VENV/bin/python -I -m pip --disable-pip-version-check --quiet"
    case $src in
        *.whl) wheel=$src ;;
        *)
            wheels=$(mktemp -d)
            trap 'rm -rf "$wheels"' EXIT
            $pip wheel --no-deps --wheel-dir "$wheels" "$src"
            wheel=$(ls "$wheels"/*.whl)
            ;;
    esac
    # Dependencies as needed, then our own files even when the version number did not change
    # (pip takes an installed 0.1.0 as satisfying a newer build of 0.1.0).
    $pip install --upgrade "$wheel"
    $pip install --no-deps --force-reinstall "$wheel"
    version=$("$VENV/bin/python" -I -c 'import importlib.metadata as m; print(m.version("news-monitor"))')
    say "installed news-monitor $version from $src into $VENV"
    # The unit's Documentation= and deploy/README.md's commands point here.
    install -m 0644 "$tree/README.md" "$OPT/README.md"
    mkdir -p "$OPT/deploy"
    install -m 0644 "$here/README.md" "$here/news-monitor.service" "$OPT/deploy/"
    install -m 0755 "$here/check" "$here/install.sh" "$OPT/deploy/"

    # 3. Config: the operator's from the first run on. The group lets the service read it
    # (PrivateUsers= maps only root and news-monitor); secrets.env is read by systemd as root.
    mkdir -p "$ETC"
    if [ -e "$ETC/monitor.yaml" ]; then
        say "kept $ETC/monitor.yaml (yours)"
    else
        install -m 0640 "$tree/config/monitor.yaml" "$ETC/monitor.yaml"
        [ -z "$group" ] || chgrp "$group" "$ETC/monitor.yaml"
        say "installed the example config $ETC/monitor.yaml"
    fi
    # The folder as a whole: putting back an example watchlist the operator deleted would
    # bring back alerts they chose to drop.
    if [ -e "$ETC/watchlists" ]; then
        say "kept $ETC/watchlists/ (yours)"
    else
        mkdir -m 0750 "$ETC/watchlists"
        for f in "$tree"/config/watchlists/*.yaml; do
            install -m 0640 "$f" "$ETC/watchlists/"
        done
        [ -z "$group" ] || chgrp -R "$group" "$ETC/watchlists"
        say "installed the example watchlists $ETC/watchlists/"
    fi
    if [ -e "$ETC/secrets.env" ]; then
        say "kept $ETC/secrets.env (yours)"
        if [ -n "$(find "$ETC/secrets.env" -perm /077)" ]; then
            say "warning: $ETC/secrets.env is readable by others (chmod 0600 it)"
        fi
    else
        install -m 0600 /dev/null "$ETC/secrets.env"
        say "created an empty $ETC/secrets.env (mode 0600): put TG_TOKEN=… and the like there"
    fi

    # 4. The unit: ours, replaced on upgrade (the operator's changes live in drop-ins).
    mkdir -p "$(dirname "$UNIT")"
    if cmp -s "$here/news-monitor.service" "$UNIT"; then
        say "unchanged $UNIT"
    else
        install -m 0644 "$here/news-monitor.service" "$UNIT"
        say "installed $UNIT"
    fi

    # 5. Start it, or restart it so that the new code runs.
    if systemd_usable "systemctl daemon-reload && systemctl enable --now $NAME"; then
        was_active=no
        if systemctl is-active --quiet "$NAME"; then
            was_active=yes
        fi
        systemctl daemon-reload
        systemctl enable --now "$NAME"
        if [ "$was_active" = yes ]; then
            systemctl restart "$NAME"
            say "restarted $NAME"
        fi
        say "running: journalctl -u $NAME -f"
    fi
    say "state goes to $STATE (StateDirectory=); edit $ETC/monitor.yaml, then:" \
        "$OPT/deploy/check && systemctl reload $NAME"
}

if [ "$action" = uninstall ]; then
    uninstall
else
    install_files
fi
