"""The ``news-monitor`` command: parses arguments, calls the stages, maps errors to exit codes.

Exit codes are a contract with users' scripts (documented in the README):

- 0  success (``grep``: something matched)
- 1  ``once``: a feed or a delivery failed (nothing is lost; the log says which);
     ``grep``, ``backtest``: nothing matched; ``notify-test``: a URL refused the message
- 2  usage error (``backtest``: a query that does not parse); ``grep``: any error
- 75 another news-monitor holds the state file (EX_TEMPFAIL: try again later)
- 78 configuration error (EX_CONFIG), so systemd does not restart-loop on it

Command output (grep results, ``--json``, dry-run alerts, notify-test answers) goes to stdout;
logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from monitor import __version__, logs
from monitor.config import Config, find_config, load_config
from monitor.errors import ConfigError, ConfigErrors, MonitorError, StateLockedError

if TYPE_CHECKING:
    from monitor.store import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75  # EX_TEMPFAIL
EXIT_CONFIG = 78  # EX_CONFIG

log = logs.get_logger()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="news-monitor",
        description="Polls news feeds, matches watch rules, delivers each alert once.",
    )
    p.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    p.add_argument(
        "-c",
        "--config",
        help="config file (default: $NEWS_MONITOR_CONFIG, else ./config/monitor.yaml, "
        "else /etc/news-monitor/monitor.yaml)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="log format on stderr (default: JSON unless stderr is a terminal)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads)")

    once = sub.add_parser("once", help="poll every enabled feed once, deliver, exit")
    once.add_argument(
        "--dry-run", action="store_true", help="print the alerts it would send; record nothing"
    )
    once.add_argument(
        "--force", action="store_true", help="also poll feeds that asked to wait (Retry-After)"
    )

    sub.add_parser("check", help="validate the config and watchlists")

    st = sub.add_parser("status", help="show each feed's health; exit 1 if any feed is failing")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")

    hi = sub.add_parser(
        "history", help="what the rules caught: alerts sent and repeats recorded without one"
    )
    hi.add_argument("query", nargs="?", help="only entries whose title matches this query")
    hi.add_argument("--rule", help="only this rule's entries")
    hi.add_argument("--since", default="2d", help="how far back (default 2d; e.g. 6h, 1w)")
    hi.add_argument("--json", action="store_true", help="one JSON object per entry")

    bt = sub.add_parser(
        "backtest",
        help="what a query would have matched among the recent items, grouped by story",
    )
    bt.add_argument("query")
    bt.add_argument(
        "--since",
        help="how far back (default: all the items kept, web.keep_items; e.g. 6h, 3d)",
    )
    bt.add_argument("--json", action="store_true", help="one JSON object per story")

    ob = sub.add_parser("outbox", help="list, retry or drop alerts waiting for delivery")
    obs = ob.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    ol = obs.add_parser("list", help="alerts waiting for delivery (or, with --dead, given up)")
    ol.add_argument("--dead", action="store_true", help="list the dead letters instead")
    ol.add_argument("--json", action="store_true", help="one JSON object per alert")
    orr = obs.add_parser("retry", help="queue dead letters again, with a fresh lifetime")
    which = orr.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID")
    which.add_argument("--all", action="store_true", help="every dead letter")
    od = obs.add_parser("drop", help="delete an undelivered alert for good")
    od.add_argument("id", type=int, metavar="ID")

    nt = sub.add_parser("notify-test", help="send a test message to a channel")
    nt.add_argument("channel")

    mg = sub.add_parser(
        "migrate", help="copy a SQLite state into an empty PostgreSQL state (daemon stopped)"
    )
    mg.add_argument("--from", dest="source", required=True, metavar="FILE", help="the SQLite state")
    mg.add_argument("--to", dest="target", required=True, metavar="URL", help="postgresql://…")
    mg.add_argument(
        "--password-file", metavar="FILE", help="the PostgreSQL password, kept out of the URL"
    )

    g = sub.add_parser("grep", help="search feeds (URLs or files) with a query")
    g.add_argument("query")
    g.add_argument("sources", nargs="+", metavar="SOURCE")
    g.add_argument("--json", action="store_true", help="one JSON object per matching item")
    g.add_argument(
        "--stories",
        action="store_true",
        help="group the matching items by story, as story dedup would (members indented, "
        "with their similarity)",
    )
    g.add_argument(
        "--similarity",
        type=_similarity,
        metavar="S",
        help="how alike headlines must be to join a story, 0.5-1.0 "
        "(default: the config's dedup.similarity, else 0.70)",
    )
    g.add_argument(
        "--allow-private",
        action="store_true",
        help="allow fetching from private, loopback and link-local addresses",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    json_logs = {"auto": None, "json": True, "console": False}[args.log_format]
    logs.configure(level=args.log_level or "info", json=json_logs)
    try:
        if args.command == "grep":
            try:
                return cmd_grep(args, json_logs)
            except Exception as e:  # grep's contract: any error exits 2, never 1 ("no match")
                log.critical("grep_failed", error=repr(e), exc_info=True)
                return EXIT_USAGE
        if args.command == "migrate":
            return cmd_migrate(args)
        config_path = find_config(args.config)
        try:
            config = load_config(config_path)
        except ConfigError as e:
            _print_config_error(e)
            return EXIT_CONFIG
        logs.configure(
            level=args.log_level or config.log_level, json=json_logs, secrets=config.secrets
        )
        if args.command == "check":
            return cmd_check(config)
        if args.command == "status":
            return cmd_status(config, as_json=args.json)
        if args.command == "outbox":
            return cmd_outbox(config, args)
        if args.command == "history":
            return cmd_history(config, args)
        if args.command == "backtest":
            return cmd_backtest(config, args)
        if args.command == "notify-test":
            return cmd_notify_test(config, args.channel)
        if args.command == "once":
            return cmd_once(config, dry_run=args.dry_run, force=args.force)
        if args.command == "run":

            def configure_logs(c: Config) -> None:  # on reload: new secrets, same CLI choices
                logs.configure(
                    level=args.log_level or c.log_level, json=json_logs, secrets=c.secrets
                )

            return cmd_run(config, str(config_path), configure_logs)
    except StateLockedError as e:
        print(f"news-monitor: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except ConfigError as e:
        _print_config_error(e)
        return EXIT_CONFIG
    except MonitorError as e:
        print(f"news-monitor: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy a stopped daemon's SQLite state into an empty PostgreSQL one."""
    from monitor.store import SqliteStore, StateLock, is_shared_url
    from monitor.store.copy import copy_state
    from monitor.store.postgres import PostgresStore, redact

    if not is_shared_url(args.target):
        print("news-monitor: migrate --to must be a postgresql:// URL", file=sys.stderr)
        return EXIT_USAGE
    source = Path(args.source)
    if not source.is_file():
        print(f"news-monitor: {source}: no such state file", file=sys.stderr)
        return EXIT_USAGE
    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            print(f"news-monitor: {args.password_file}: {e.strerror}", file=sys.stderr)
            return EXIT_USAGE
    lock = StateLock(source)  # a running daemon would keep writing what is being copied
    lock.acquire()
    try:
        with SqliteStore(source) as src, PostgresStore(args.target, password=password) as dst:
            counts = copy_state(src, dst)
    finally:
        lock.release()
    copied = ", ".join(f"{n} {table}" for table, n in counts.items())
    print(f"{source} -> {redact(args.target)}: copied {copied}")
    return EXIT_OK


def _print_config_error(e: ConfigError) -> None:
    errors = e.errors if isinstance(e, ConfigErrors) else [e]
    for err in errors:
        print(str(err), file=sys.stderr)


def _open_store(config: Config, *, readonly: bool = False) -> Store:
    """The state the config names: a shared ``postgresql://`` one, or the SQLite file."""
    from monitor.store import open_store

    if config.state_url is not None:
        return open_store(config.state_url, password=config.state_password, readonly=readonly)
    return open_store(config.state_path, readonly=readonly)


@contextmanager
def _locked_store(config: Config) -> Any:
    """The state, for writing: a SQLite file is locked to this process; a PostgreSQL state is
    shared by design (its daemons coordinate through leases and locks in the database)."""
    from monitor.store import StateLock

    lock = None if config.state_url is not None else StateLock(config.state_path)
    if lock is not None:
        lock.acquire()
    try:
        store = _open_store(config)
        try:
            yield store
        finally:
            store.close()
    finally:
        if lock is not None:
            lock.release()


# -- check ------------------------------------------------------------------------------------


def cmd_check(config: Config) -> int:
    from monitor.rules import parse_query

    for rule in config.rules:
        query = parse_query(rule.query, config.aliases)
        pos = rule.position
        for warning in query.warnings():
            print(
                f"{pos.file}:{pos.line}:{pos.col}: warning: rule {rule.name!r}: {warning}",
                file=sys.stderr,
            )
    feeds = config.enabled_feeds()
    rules = config.enabled_rules()
    print(
        f"{config.path}: OK: {len(feeds)} feeds, {len(rules)} rules, "
        f"{len(config.channels)} channels, {len(config.watchlist_files)} watchlist files"
    )
    return EXIT_OK


# -- status -----------------------------------------------------------------------------------


def cmd_status(config: Config, *, as_json: bool) -> int:
    """Each configured feed's health, read from the state without taking the lock."""
    from monitor.health import FAILING, GONE, assess, health_record
    from monitor.logs import redact_url
    from monitor.store import FeedState

    store = _open_store(config, readonly=True)
    try:
        now = datetime.now(UTC)
        states = {s.name: s for s in store.feed_states()}
        records = []
        for feed in config.feeds:
            state = states.get(feed.name)
            if state is None or state.config_url != feed.url:
                state = FeedState.new(feed.name, feed.url)  # added or moved since the last run
            health = assess(feed, state, now, config.defaults.failure_threshold)
            if not feed.enabled:
                health = type(health)("disabled", "enabled: false")
            record = health_record(feed, state, health, store.items_per_day(feed.name))
            record["url"] = redact_url(str(record["url"]))  # feed URLs may carry credentials
            records.append(record)
        pending = store.pending_count()
        outbox = store.outbox_summary()
        dead = store.outbox(dead=True, limit=20)
        daemon = _daemon_record(store.daemon_info())
        hits = store.rule_hits(now - timedelta(hours=24))
        rules = [{"name": r.name, "hits_24h": hits.get(r.name, 0)} for r in config.rules]
    finally:
        store.close()
    failing = [r["name"] for r in records if r["status"] in (FAILING, GONE)]
    if as_json:
        summary = {
            "pending": outbox["pending"],
            "oldest_pending": _iso(outbox["oldest_pending"]),
            "dead": outbox["dead"],
            "dead_letters": [_outbox_record(a) for a in dead],
        }
        print(
            json.dumps(
                {
                    "daemon": daemon,
                    "feeds": records,
                    "rules": rules,
                    "pending_alerts": pending,
                    "outbox": summary,
                },
                ensure_ascii=False,
            )
        )
    else:
        _print_daemon(daemon, config)
        _print_status_table(records, config)
        caught = ", ".join(f"{r['name']} {r['hits_24h']}" for r in rules) or "no rules"
        print(f"\nhits in the last 24 h: {caught}")
        print(f"alerts waiting for delivery: {pending}")
        if outbox["oldest_pending"] is not None:
            oldest = outbox["oldest_pending"].astimezone(config.timezone)
            print(f"oldest waiting since: {oldest:%Y-%m-%d %H:%M %Z}")
        if outbox["dead"]:
            print(f"dead letters (given up): {outbox['dead']} (news-monitor outbox list --dead)")
        if failing:
            print(f"failing: {', '.join(failing)}")
    return EXIT_FAILED if failing else EXIT_OK


def _daemon_record(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The daemon's row as JSON: is it running, since when, and its last reload."""
    import os

    if info is None:
        return None
    running = info["stopped_at"] is None
    if running:
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            running = False  # killed without a clean stop
        except PermissionError:
            pass  # alive, another user's
    return {
        "pid": info["pid"],
        "host": info["host"],
        "running": running,
        "started_at": _iso(info["started_at"]),
        "config_loaded_at": _iso(info["config_loaded_at"]),
        "last_reload_at": _iso(info["reload_at"]),
        "last_reload": info["reload_result"],
        "last_tick_at": _iso(info["last_tick_at"]),
        "stopped_at": _iso(info["stopped_at"]),
    }


def _print_daemon(daemon: dict[str, Any] | None, config: Config) -> None:
    def when(iso: str | None) -> str:
        if not iso:
            return "-"
        return f"{datetime.fromisoformat(iso).astimezone(config.timezone):%Y-%m-%d %H:%M %Z}"

    if daemon is None:
        print("daemon: has not run on this state")
    elif daemon["running"]:
        reload = daemon["last_reload"] or "none yet"
        print(
            f"daemon: running since {when(daemon['started_at'])} (pid {daemon['pid']}); "
            f"config loaded {when(daemon['config_loaded_at'])}; last reload: {reload}"
        )
    else:
        print(f"daemon: not running (last started {when(daemon['started_at'])})")
    print()


def _print_status_table(records: list[dict[str, Any]], config: Config) -> None:
    def when(iso: str | None) -> str:
        if not iso:
            return "-"
        return datetime.fromisoformat(iso).astimezone(config.timezone).strftime("%m-%d %H:%M")

    rows = [("FEED", "STATUS", "LAST OK", "HTTP", "FAILS", "NEXT POLL", "ITEMS/DAY", "REASON")]
    for r in records:
        per_day = r["items_per_day"]
        avg = f"{sum(per_day.values()) / len(per_day):.0f}" if per_day else "-"
        rows.append(
            (
                r["name"],
                r["status"],
                when(r["last_success"]),
                str(r["last_status"] or "-"),
                str(r["consecutive_failures"]),
                when(r["next_poll"]),
                avg,
                (r["reason"] or "")[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


# -- history ----------------------------------------------------------------------------------


def cmd_history(config: Config, args: argparse.Namespace) -> int:
    """The alerts sent and the story repeats recorded, newest first; exit 1 if none."""
    from monitor.config import parse_duration
    from monitor.rules import QueryError, RuleSet, parse_query

    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as err:
        print(f"news-monitor: --since: {err}", file=sys.stderr)
        return EXIT_USAGE
    matcher = None
    if args.query:
        try:
            matcher = RuleSet([("q", parse_query(args.query, config.aliases))])
        except QueryError as err:
            print(str(err), file=sys.stderr)
            return EXIT_USAGE
    with _open_store(config, readonly=True) as store:
        entries = store.history(since, args.rule)
    if matcher is not None:
        entries = [e for e in entries if matcher.match({"title": e["title"]})]
    for e in entries:
        if args.json:
            record = {**e, "at": _iso(e["at"])}
            print(json.dumps(record, ensure_ascii=False))
            continue
        when = e["at"].astimezone(config.timezone).strftime("%m-%d %H:%M") if e["at"] else "-"
        where = ",".join(e["channels"]) if e["channels"] else "-"
        print(f"{when}  {e['kind']:<10} {e['rule']:<16} {where:<12} {e['title']}")
        if e["kind"] == "suppressed":
            print(f"{'':30}joined {e['story_title']!r} ({e['similarity']:.2f}, {e['reason']})")
    return EXIT_OK if entries else EXIT_FAILED


# -- backtest ---------------------------------------------------------------------------------


def cmd_backtest(config: Config, args: argparse.Namespace) -> int:
    """What a query would have matched, as stories; exit 0 if anything, 1 if nothing, 2 on a
    bad query. Reads the state without the lock, records and sends nothing."""
    from monitor.config import format_duration, parse_duration
    from monitor.rules import QueryError, parse_query
    from monitor.web.backtest import backtest

    keep = config.web.keep_items
    try:
        span = keep if args.since is None else parse_duration(args.since)
    except ValueError as err:
        print(f"news-monitor: --since: {err}", file=sys.stderr)
        return EXIT_USAGE
    if span > keep:
        print(
            f"news-monitor: items are kept for {format_duration(keep)} (web.keep_items): "
            f"searching those, not {format_duration(span)}",
            file=sys.stderr,
        )
        span = keep
    try:
        query = parse_query(args.query, config.aliases)
    except QueryError as err:
        print(str(err), file=sys.stderr)
        print(f"  {args.query}\n  {' ' * (err.column - 1)}^", file=sys.stderr)
        return EXIT_USAGE
    now = datetime.now(UTC)
    with _open_store(config, readonly=True) as store:
        result = backtest(
            store,
            query,
            since=now - span,
            window=config.dedup.window,
            threshold=config.dedup.similarity,
        )
    for story in result.stories:
        if args.json:
            print(json.dumps(_backtest_record(story), ensure_ascii=False))
            continue
        _print_backtest_story(story, config)
    more = " (the newest shown; more matched)" if result.truncated else ""
    print(
        f"{result.matched} of {result.searched} items since "
        f"{result.since.astimezone(config.timezone):%Y-%m-%d %H:%M %Z} matched, in "
        f"{len(result.stories)} stories{more}",
        file=sys.stderr,
    )
    return EXIT_OK if result.matched else EXIT_FAILED


def _backtest_match(m: Any) -> dict[str, Any]:
    return {
        "title": m.item.title,
        "link": m.item.link,
        "source": m.item.source,
        "feed": m.item.feed,
        "seen": _iso(m.item.seen_at),
        "published": _iso(m.item.published_at),
        "matched": list(m.terms),
    }


def _backtest_record(story: Any) -> dict[str, Any]:
    members = []
    for m in story.members:
        members.append(
            {**_backtest_match(m), "similarity": round(m.similarity, 2), "reason": m.reason}
        )
    return {**_backtest_match(story.first), "outlets": list(story.outlets), "members": members}


def _print_backtest_story(story: Any, config: Config) -> None:
    first = story.first
    when = first.item.seen_at.astimezone(config.timezone)
    print(first.item.title)
    print(f"    {first.item.link or '-'}")
    print(
        f"    {when:%Y-%m-%d %H:%M}  {first.item.source or first.item.feed}  "
        f"matched: {', '.join(first.terms)}"
    )
    for m in story.members:
        print(f"  + {m.similarity:.2f}  {m.item.title}  ({m.item.source or m.item.feed})")
        print(f"          {m.item.link or '-'}\n          {m.reason}")


# -- outbox -----------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _outbox_record(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "rule": a.rule,
        "channel": a.channel,
        "title": a.payload.get("title"),
        "created_at": _iso(a.created_at),
        "attempts": a.attempts,
        "next_attempt_at": _iso(a.next_attempt_at),
        "last_error": a.last_error,
        "dead_at": _iso(a.dead_at),
    }


def cmd_outbox(config: Config, args: argparse.Namespace) -> int:
    """The delivery queue, for a person: what waits, what was given up, and acting on it.

    Works while the daemon runs (SQLite takes care of concurrent writers); the daemon sees a
    retried alert on its next delivery pass.
    """
    from monitor.logs import redact_url

    action = args.outbox_command
    store = _open_store(config, readonly=action == "list")
    try:
        if action == "list":
            alerts = store.outbox(dead=args.dead, limit=100_000)
            for a in alerts:
                record = _outbox_record(a)
                if record["last_error"]:
                    record["last_error"] = redact_url(str(record["last_error"]))
                if args.json:
                    print(json.dumps(record, ensure_ascii=False))
                    continue
                state = "dead" if a.dead_at else ("retry" if a.next_attempt_at else "queued")
                print(
                    f"{a.id:>6}  {state:<6}  {a.channel:<12}  {a.rule:<16}  "
                    f"{a.attempts:>2} tries  {a.payload.get('title', '')}"
                )
                if record["last_error"]:
                    print(f"        {record['last_error'][:200]}")
            if not args.json:
                kind = "dead letters" if args.dead else "alerts waiting"
                print(f"{len(alerts)} {kind}", file=sys.stderr)
            return EXIT_OK
        now = datetime.now(UTC)
        if action == "retry":
            n = store.retry_alerts(None if args.all else args.ids, now)
            print(f"queued again: {n}")
            return EXIT_OK if n or args.all else EXIT_FAILED
        if store.drop_alert(args.id):
            log.warning("alert_dropped", id=args.id)
            print(f"dropped: {args.id}")
            return EXIT_OK
        print(f"news-monitor: no undelivered alert {args.id}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()


# -- once -------------------------------------------------------------------------------------


def cmd_once(config: Config, *, dry_run: bool, force: bool) -> int:
    from monitor.notify import render
    from monitor.service import Monitor

    if dry_run:
        # Records nothing: no lock, the state opened read-only (or none at all yet).
        from monitor.store import SqliteStore

        exists = config.state_url is not None or config.state_path.exists()
        store = _open_store(config, readonly=True) if exists else SqliteStore(":memory:")
        try:
            monitor = Monitor(config, store, sync=False)
            report = asyncio.run(monitor.run_once(dry_run=True, force=force))
        finally:
            store.close()
    else:
        with _locked_store(config) as store:
            monitor = Monitor(config, store)
            report = asyncio.run(monitor.run_once(force=force))
    if dry_run:
        for m in report.dry_run_messages:
            title, body = render(m, config.timezone)
            print(title)
            for line in body.splitlines():
                print(f"    {line}")
            print()
        sys.stdout.flush()
    failed = [f for f in report.feeds if f.status == "failed"]
    log.info(
        "cycle_finished",
        feeds=len(report.feeds),
        failed_feeds=[f.feed for f in failed],
        alerts_sent=report.delivered,
        alerts_failed=report.delivery_failed,
        dry_run=dry_run or None,
    )
    return EXIT_OK if report.ok else EXIT_FAILED


# -- run --------------------------------------------------------------------------------------


def cmd_run(config: Config, config_path: str, configure_logs: Callable[[Config], None]) -> int:
    from monitor.daemon import Daemon, load_for_reload
    from monitor.service import Monitor

    with _locked_store(config) as store:
        monitor = Monitor(config, store)
        daemon = Daemon(
            monitor, reload_config=load_for_reload(config_path), configure_logs=configure_logs
        )
        asyncio.run(daemon.run())
    _exit_past_stuck_sends()
    return EXIT_OK


def _exit_past_stuck_sends() -> None:
    """Exit now if a delivery cut off by the shutdown grace is still stuck in apprise.

    apprise sends from its own thread pool, whose threads Python joins at exit: a channel that
    hangs would hold the process past the grace (and past systemd's stop timeout). The state is
    committed and closed by now, and the stuck alert was never marked sent, so it is queued for
    the next start: leaving at once loses nothing.
    """
    import os
    import threading

    # Daemon threads count too: concurrent.futures joins its workers at exit all the same.
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if stuck:
        # Other helper threads (the file watcher's) are idle by now: only sends are news.
        sends = [t.name for t in stuck if t.name.startswith(("deliver", "ThreadPoolExecutor"))]
        if sends:
            log.warning("daemon_exit_abandoning_sends", threads=len(sends))
        else:
            log.debug("daemon_exit_threads", threads=[t.name for t in stuck])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)


# -- notify-test ------------------------------------------------------------------------------


def cmd_notify_test(config: Config, channel_name: str) -> int:
    from monitor.notify import Channel, outcome_lines, register_console_scheme, render, sample_alert

    if channel_name not in config.channels:
        known = ", ".join(sorted(config.channels)) or "none"
        print(
            f"news-monitor: no channel {channel_name!r} in the config (known: {known})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    register_console_scheme()
    channel = Channel(channel_name, config.channels[channel_name])
    title, body = render(sample_alert(datetime.now(UTC)), config.timezone)
    result = channel.deliver(title, body)
    for line in outcome_lines(channel_name, result):
        print(line)
    return EXIT_OK if result.ok else EXIT_FAILED


# -- grep -------------------------------------------------------------------------------------


def cmd_grep(args: argparse.Namespace, json_logs: bool | None) -> int:
    """grep for feeds: exit 0 if something matched, 1 if nothing did, 2 on any error."""
    from monitor.dedup.similarity import DEFAULT_THRESHOLD
    from monitor.fetch import Fetcher, FetchFailed, FetchLimits, NotModified
    from monitor.parse import ParsedFeed, ParseError, parse_feed
    from monitor.poll import discover, item_fields
    from monitor.rules import QueryError, RuleSet, parse_query

    aliases: dict[str, tuple[str, ...]] = {}
    threshold = DEFAULT_THRESHOLD
    limits = FetchLimits(allow_private=bool(args.allow_private))
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as e:
            _print_config_error(e)
            return EXIT_USAGE
        logs.configure(level=args.log_level or "info", json=json_logs, secrets=config.secrets)
        aliases = dict(config.aliases)
        threshold = config.dedup.similarity
        from monitor.poll import fetch_limits

        limits = fetch_limits(config)
        if args.allow_private:
            limits = FetchLimits(
                timeout=limits.timeout,
                max_bytes=limits.max_bytes,
                max_redirects=limits.max_redirects,
                allow_private=True,
                user_agent=limits.user_agent,
            )
    try:
        query = parse_query(args.query, aliases)
    except QueryError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    ruleset = RuleSet([("query", query)])

    async def fetch_one(fetcher: Fetcher, source: str) -> ParsedFeed | str:
        """The parsed feed, or why not. A web page is searched for the feed it advertises."""
        result = await fetcher.fetch(_source(source))
        if isinstance(result, FetchFailed):
            return result.reason
        if isinstance(result, NotModified):  # a local file seen before; cannot happen here
            return "not modified"
        try:
            return await asyncio.to_thread(
                parse_feed,
                result.body,
                feed_name=source,
                url=result.url,
                content_type=result.content_type,
            )
        except ParseError as e:
            found = await discover(fetcher, result, e, source, limits, log)
            return str(e) if found is None else found[1]

    async def fetch_all() -> list[ParsedFeed | str]:
        async with Fetcher(limits) as fetcher:
            return await asyncio.gather(*(fetch_one(fetcher, s) for s in args.sources))

    results = asyncio.run(fetch_all())
    errors = matched = 0
    out: TextIO = sys.stdout
    found: list[tuple[Any, str, list[dict[str, Any]]]] = []
    for source, parsed in zip(args.sources, results, strict=True):
        if isinstance(parsed, str):
            print(f"news-monitor: {source}: {parsed}", file=sys.stderr)
            errors += 1
            continue
        for item in parsed.items:
            fields = item_fields(item)
            hits = ruleset.match(fields)
            if not hits:
                continue
            matched += 1
            spans = [
                {
                    "term": h.term,
                    "text": fields[h.field][h.start : h.end],
                    "field": h.field,
                    "start": h.start,
                    "end": h.end,
                }
                for m in hits
                for h in m.hits
            ]
            if args.stories:
                found.append((item, source, spans))
            elif args.json:
                out.write(json.dumps(_grep_record(item, source, spans), ensure_ascii=False) + "\n")
            else:
                _print_match(_grep_record(item, source, spans), out)
    if args.stories:
        _print_stories(found, args.similarity or threshold, out, as_json=args.json)
    out.flush()
    if errors:
        return EXIT_USAGE
    return EXIT_OK if matched else EXIT_FAILED


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.5 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0.5 and 1.0")
    return value


def _grep_record(item: Any, source: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": item.title,
        "link": item.link,
        "published": item.published.isoformat() if item.published else None,
        "source": item.source,
        "feed": source,
        "matched": spans,
    }


def _print_stories(
    found: list[tuple[Any, str, list[dict[str, Any]]]],
    threshold: float,
    out: TextIO,
    *,
    as_json: bool,
) -> None:
    """Cluster grep's matches as the daemon's story dedup would, and print them grouped.

    Items are placed oldest first (the first report of a story names it), each against every
    story so far: no window, since grep reads what the feeds list now.
    """
    from monitor.dedup.stories import Candidate, Member, StoryBook
    from monitor.poll import item_evidence, outlet

    def when(x: tuple[Any, str, list[dict[str, Any]]]) -> float:
        return x[0].published.timestamp() if x[0].published else float("inf")

    book = StoryBook()
    stories: dict[str, dict[str, Any]] = {}
    for n, (item, source, spans) in enumerate(sorted(found, key=when)):
        key = f"{n}"
        evidence = item_evidence(item)
        placement = book.place(
            "query", Candidate(key, evidence, item.title), since=-1.0, threshold=threshold
        )
        story = placement.story or key
        book.add("query", Member(story, key, 0.0, evidence, item.title, outlet(item)))
        record = _grep_record(item, source, spans)
        if placement.story is None:
            stories[key] = {**record, "members": []}
        else:
            record["similarity"] = round(placement.verdict.score, 2)
            record["reason"] = placement.verdict.reason
            stories[story]["members"].append(record)
    for group in stories.values():
        if as_json:
            out.write(json.dumps(group, ensure_ascii=False) + "\n")
            continue
        _print_match(group, out)
        for m in group["members"]:
            out.write(f"  + {m['similarity']:.2f}  {m['title']}  ({m['source'] or m['feed']})\n")
            out.write(f"          {m['link'] or '-'}\n          {m['reason']}\n")


def _print_match(record: dict[str, Any], out: TextIO) -> None:
    terms = ", ".join(
        dict.fromkeys(s["term"] for s in record["matched"] if isinstance(s["term"], str))
    )
    published = record["published"]
    when = datetime.fromisoformat(published).strftime("%Y-%m-%d %H:%M UTC") if published else "-"
    out.write(f"{record['title']}\n    {record['link'] or '-'}\n    {when}  matched: {terms}\n")


def _source(s: str) -> str:
    if s.startswith(("http://", "https://", "file://")):
        return s
    return str(Path(s).resolve())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
