"""The daemon: APScheduler ticks, a delivery worker, signals, reload and systemd.

The schedule lives in the store: each feed's ``next_poll_at`` (and backoff) is in its row, and the
scheduler fires short ticks that poll whichever feeds are due. A stuck fetch therefore delays only
its own feed. Signal handlers only set an event (or start a reload); shutdown stops taking work,
cancels polls in flight (a cancelled poll has recorded nothing), lets the delivery in progress
finish within a deadline, then cancels it: an alert not yet marked sent stays in the outbox and
goes out on the next start.

Owns: when things run (ticks, pruning, the delivery worker), signals, reload and sd_notify. May
not touch: what a poll decides or how an alert is sent; it calls the poll path and delivery of
the current :class:`~monitor.service.Monitor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import logs, metrics
from monitor.config import Config, Feed, load_config
from monitor.delivery import IDLE_RECHECK
from monitor.errors import ConfigError, MonitorError
from monitor.fetch import Fetcher
from monitor.poll import FeedOutcome, feed_lease
from monitor.service import Monitor
from monitor.store import off_loop, owner

log = logs.get_logger()

TICK = timedelta(seconds=15)
PRUNE_EVERY = timedelta(hours=6)
STATUS_EVERY = 30.0  # seconds between STATUS= updates to systemd
# The scheduler counts as stalled when no tick ran for this many tick intervals: the watchdog
# then stops, and systemd restarts the service (after WatchdogSec).
STALL_TICKS = 3


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds (sd_watchdog_enabled's advice), or None if off."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


def sd_notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send a systemd notification (READY=1, STATUS=…, WATCHDOG=1, STOPPING=1) if supervised."""
    env = os.environ if env is None else env
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace socket
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError as e:
        log.warning("systemd_notify_failed", error=str(e))
        return False


class Daemon:
    """The long-running service: APScheduler ticks, a delivery worker, signals, reload."""

    def __init__(
        self,
        monitor: Monitor,
        *,
        reload_config: Callable[[], Config] | None = None,
        configure_logs: Callable[[Config], None] | None = None,
        tick: timedelta | None = None,
    ) -> None:
        """``tick`` defaults to :func:`poll_tick` of the config."""
        self.monitor = monitor
        self.reload_config = reload_config
        self.configure_logs = configure_logs
        self.tick = tick or poll_tick(monitor.config)
        self.stop = asyncio.Event()
        self._force = asyncio.Event()  # a second SIGTERM: stop now, without the grace
        self._wake_delivery = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None
        self._reload_again = False  # a SIGHUP during a reload: one more reload after it
        self._last_tick = time.monotonic()  # the scheduler's heartbeat, for the watchdog
        self._watcher: asyncio.Task[None] | None = None
        self.started_at = datetime.now(UTC)
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
        self._begun: set[asyncio.Task[Any]] = set()  # polls whose body has started
        self._releases: set[asyncio.Task[None]] = set()  # claims given back by unstarted polls
        self._ticking = asyncio.Lock()
        self._more_due = False  # the last claim was cut at the free slots: more may be due
        self._refilling: asyncio.Task[None] | None = None
        self._fetcher: Fetcher | None = None
        # Outcomes of the first poll of each feed since start, to say plainly when nothing at all
        # could be reached (a machine without internet) instead of only N separate failures.
        self._first_round: dict[str, FeedOutcome] | None = {}

    async def run(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)

        # Explicit APScheduler settings: its default misfire grace of 1 s silently drops a late
        # tick; coalesce + one instance mean a slow tick is never stacked behind itself.
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.tick.total_seconds(), timezone=UTC),
            id="poll-due-feeds",
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self._prune,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds(), timezone=UTC),
            id="prune-state",
            next_run_time=datetime.now(UTC),
        )
        self._fetcher = await self.monitor.fetcher().__aenter__()
        store = self.monitor.store
        try:
            delivery = asyncio.create_task(self._delivery_worker(), name="delivery")
            scheduler.start()
            store.daemon_started(os.getpid(), socket.gethostname(), self.started_at)
            sd_notify("READY=1\n" + self._status())
            heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
            web = await self._serve_metrics()
            self._watch()
            log.info(
                "daemon_started",
                feeds=len(self.monitor.config.enabled_feeds()),
                rules=len(self.monitor.config.enabled_rules()),
                state=self.monitor.store.where,
            )
            await self.stop.wait()
            sd_notify("STOPPING=1")
            log.info("daemon_stopping", in_flight=len(self._in_flight))
            scheduler.shutdown(wait=False)
            for task in (heartbeat, self._watcher):
                if task is not None:
                    task.cancel()
            await self._drain(delivery)
            if web is not None:
                await web.cleanup()
        finally:
            await self._fetcher.__aexit__(None, None, None)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        self.monitor.store.daemon_stopped(os.getpid(), datetime.now(UTC))
        log.info("daemon_stopped", pending_alerts=self.monitor.store.pending_count())

    def _status(self, note: str = "") -> str:
        """``STATUS=`` for systemctl status: feeds ok/failing, rules, queue depth, last poll."""
        m = self.monitor
        feeds, failing, last = m.store.health_counts(m.config.defaults.failure_threshold)
        queued = m.store.pending_count()
        when = f"{last.astimezone(m.config.timezone):%H:%M:%S}" if last else "never"
        text = (
            f"{feeds - failing} feeds ok, {failing} failing; "
            f"{len(m.config.enabled_rules())} rules; {queued} alerts queued; last poll {when}"
        )
        return f"STATUS={note + '; ' if note else ''}{text}"

    async def _serve_metrics(self) -> Any:
        """The ``metrics:`` listener, when configured (a restart applies a change to it)."""
        settings = self.monitor.config.metrics
        if settings is None:
            return None
        try:
            runner = await metrics.start_server(
                settings.host,
                settings.port,
                store=lambda: self.monitor.store,
                healthy=self._health_problem,
                config=lambda: self.monitor.config,
            )
        except OSError as e:
            log.error("metrics_listen_failed", listen=settings.listen, error=str(e))
            return None
        log.info("metrics_listening", listen=settings.listen)
        return runner

    def _health_problem(self) -> str | None:
        """None when healthy; ``/healthz`` runs on the loop, so the loop answers if asked."""
        if not self._progressing():
            return "the scheduler has not ticked recently"
        return self.monitor.store.writable()

    def _progressing(self) -> bool:
        """Is the scheduler ticking? (That this runs at all says the event loop is.)"""
        return time.monotonic() - self._last_tick <= STALL_TICKS * self.tick.total_seconds()

    async def _heartbeat(self) -> None:
        """WATCHDOG=1 at half of WATCHDOG_USEC, only while the loop and the scheduler make
        progress: a frozen loop runs no task, so it sends nothing, and systemd restarts it.
        Also keeps STATUS= current."""
        interval = watchdog_interval()
        next_status = time.monotonic() + STATUS_EVERY
        while True:
            if interval is not None and self._progressing():
                sd_notify("WATCHDOG=1")
            if time.monotonic() >= next_status:
                sd_notify(self._status())
                next_status = time.monotonic() + STATUS_EVERY
            await asyncio.sleep(min(interval or STATUS_EVERY, STATUS_EVERY))

    def _watch(self) -> None:
        """Watch the config and watchlist files; a change (debounced 1 s) reloads like SIGHUP."""
        if self._watcher is not None:
            self._watcher.cancel()
        if self.reload_config is None:
            self._watcher = None
            return
        config = self.monitor.config
        files = {config.path.resolve(), *(p.resolve() for p in config.watchlist_files)}
        self._watcher = asyncio.get_running_loop().create_task(self._watch_files(files))

    async def _watch_files(self, files: set[Any]) -> None:
        import watchfiles

        folders = sorted({str(f.parent) for f in files})

        def relevant(_: object, path: str) -> bool:
            # The files loaded, and new YAML files beside them (a watchlist glob may match).
            return path.endswith((".yaml", ".yml"))

        try:
            async for changes in watchfiles.awatch(
                *folders, watch_filter=relevant, debounce=1000, recursive=False
            ):
                log.info("config_files_changed", files=sorted({p for _, p in changes})[:10])
                self._request_reload()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # no inotify (a read-only or odd file system): SIGHUP still works
            log.warning("config_watch_failed", error=repr(e), hint="reload with SIGHUP")

    def _request_stop(self) -> None:
        """SIGTERM/SIGINT: the first stops taking work; a second one cuts the grace short."""
        if self.stop.is_set():
            log.warning("daemon_stop_forced", reason="a second stop signal")
            self._force.set()
        self.stop.set()

    async def _drain(self, delivery: asyncio.Task[Any]) -> None:
        """Stop polls at once, let the delivery in progress finish within the grace.

        A poll cancelled before its record began has recorded nothing, so it loses nothing: the
        feed is polled again on the next start (one whose record was under way finishes it in
        the store's thread, its alerts queued like any other). A delivery cut off by the grace
        (``delivery.shutdown_grace``, always shorter than the unit's stop timeout) or by a
        second signal leaves its alert queued: it was not marked sent, so it goes out after the
        next start (at most a duplicate).
        """
        polls = list(self._in_flight.values())
        for task in polls:
            task.cancel()
        self._wake_delivery.set()
        grace = self.monitor.config.delivery.shutdown_grace.total_seconds()
        forced = asyncio.create_task(self._force.wait())
        await asyncio.wait([delivery, forced], timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        pending = [] if delivery.done() else [delivery]
        for task in pending:
            task.cancel()
        if polls or pending:
            await asyncio.wait([*polls, *pending], timeout=2)
        if self._releases:  # claims of polls cancelled before they began
            await asyncio.wait(list(self._releases), timeout=2)

    def _request_reload(self) -> None:
        """SIGHUP (or an edited file): reload now, on the loop; one reload at a time.

        A request during a reload runs one more reload after it, so a storm of signals ends on
        the latest files, never on a half-applied config.
        """
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._reloads())
        else:
            self._reload_again = True

    async def _reloads(self) -> None:
        while True:
            self._reload_again = False
            await self._reload()
            if not self._reload_again or self.stop.is_set():
                return

    async def _tick(self) -> None:
        # One tick at a time (the scheduler's and a reload's): a tick waits on the store, and
        # two overlapping ones would start two polls of one feed.
        async with self._ticking, self._job():
            await self._tick_once()

    @contextlib.asynccontextmanager
    async def _job(self) -> AsyncIterator[None]:
        """A scheduled job cut short by the shutdown (waiting on the store) ends quietly: it
        did not fail, and it is not an error in the log."""
        try:
            yield
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise

    async def _tick_once(self) -> None:
        if self.stop.is_set():
            return
        self._last_tick = time.monotonic()
        monitor = self.monitor
        now = monitor.clock()
        feeds = {f.name: f for f in monitor.config.enabled_feeds()}
        idle = [n for n in feeds if n not in self._in_flight]
        store = monitor.store
        if store.shared:
            # Several daemons: take the due feeds no other daemon holds, each under a lease,
            # and only as many as can start fetching now (a claim waiting for a connection
            # slot would hold a feed another daemon could poll at once).
            room = monitor.config.fetch.concurrency - len(self._in_flight)
            if room <= 0:
                return
            due = await off_loop(
                store.claim_feeds,
                idle,
                now,
                lease=feed_lease(monitor.config),
                owner=owner(),
                limit=room,
            )
            self._more_due = len(due) >= room
        else:
            due = await off_loop(store.due_feeds, idle, now)
        if self.stop.is_set():  # stopping while the store answered: start nothing more
            if store.shared:
                for state in due:
                    await off_loop(store.release_feed, state.name, state.lease)
            return
        for state in due:
            self._start_poll(feeds[state.name], state.lease if store.shared else None)

    def _start_poll(self, feed: Feed, lease: int | None) -> None:
        task = asyncio.create_task(self._poll(feed, lease), name=f"poll:{feed.name}")
        self._in_flight[feed.name] = task
        task.add_done_callback(functools.partial(self._poll_ended, feed.name, lease))

    async def _poll(self, feed: Feed, lease: int | None = None) -> None:
        task = asyncio.current_task()
        assert task is not None and self._fetcher is not None
        self._begun.add(task)
        outcome, _ = await self.monitor.poller.guarded_poll(
            self._fetcher, feed, dry_run=False, lease=lease
        )
        if outcome.alerts:
            self._wake_delivery.set()
        self._note_first_round(outcome)

    def _poll_ended(self, name: str, lease: int | None, task: asyncio.Task[Any]) -> None:
        """Every poll task ends here, also one cancelled before its first step.

        A reload whose config finished loading in the same loop pass as a tick's store call
        cancels the polls that tick just created before any of them ran: such a task never runs
        its body (not even a ``finally``). Its feed must still leave ``_in_flight`` (or no tick
        would poll it again) and give back its claim (or no daemon could, until the lease ran
        out). This task is the one in ``_in_flight`` unless a newer poll of the feed replaced it.
        """
        begun = task in self._begun
        self._begun.discard(task)
        if self._in_flight.get(name) is task:
            del self._in_flight[name]
        if task.cancelled() and not begun and lease is not None:
            release = asyncio.create_task(self._give_back(name, lease))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)
        self._refill()

    async def _give_back(self, name: str, lease: int) -> None:
        try:
            await off_loop(self.monitor.store.release_feed, name, lease)
        except Exception as e:  # the lease still runs out: the feed is only late
            log.warning("feed_release_failed", feed=name, error=str(e))

    def _refill(self) -> None:
        """Claim more feeds at once when half the slots are free and the last claim left due
        feeds behind (a shared state claims only what can start): a backlog drains at fetch
        speed, not one claim per tick."""
        room = self.monitor.config.fetch.concurrency - len(self._in_flight)
        if not self._more_due or self.stop.is_set() or room < len(self._in_flight):
            return
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.get_running_loop().create_task(self._tick())

    def _note_first_round(self, outcome: FeedOutcome) -> None:
        if self._first_round is None:
            return
        self._first_round.setdefault(outcome.feed, outcome)
        enabled = {f.name for f in self.monitor.config.enabled_feeds()}
        if not enabled <= set(self._first_round):
            return
        outcomes = [self._first_round[n] for n in enabled]
        self._first_round = None
        if outcomes and all(o.status == "failed" for o in outcomes):
            log.warning(
                "feeds_unreachable",
                feeds=len(outcomes),
                reasons=sorted({o.error or "?" for o in outcomes})[:5],
                hint="no feed could be fetched: is this machine offline? "
                "news-monitor keeps running and retries with backoff",
            )

    async def _delivery_worker(self) -> None:
        """Delivery passes: when a poll queued alerts, when the next one is due, or each minute.

        The pass says when its next alert is due (a retry, a digest, the end of quiet hours, a
        rate limit's window), so a digest goes out on its minute without polling the outbox.
        """
        next_due: datetime | None = None
        while True:
            wait = IDLE_RECHECK.total_seconds()
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - self.monitor.clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_delivery.wait(), timeout=wait)
            self._wake_delivery.clear()
            try:
                next_due = (await self.monitor.delivery.run_pass()).next_due
            except MonitorError as e:
                log.error("delivery_failed", error=str(e))
            except Exception as e:
                log.critical("delivery_crashed", error=repr(e), exc_info=True)
            if self.stop.is_set():
                return

    async def _prune(self) -> None:
        async with self._job():
            await self._prune_once()

    async def _prune_once(self) -> None:
        """Prune the state: on a shared state, one daemon of the group per period does it."""
        m = self.monitor
        m.poller.expire_stories()  # the index in memory is each daemon's own
        now = m.clock()
        if m.store.shared and not await off_loop(
            m.store.run_job, "prune", now, every=PRUNE_EVERY - timedelta(minutes=5), owner=owner()
        ):
            return
        removed = await off_loop(m.store.prune, now, m.config.defaults.retention)
        web = m.config.web
        removed += await off_loop(m.store.prune_recent, now, web.keep_items, web.max_items)
        log.info("state_pruned", removed=removed)

    async def _reload(self) -> None:
        """Validate the whole new config first; on any error keep running the old one.

        Everything is applied at once, between polls: the polls in flight (of the old config)
        are cancelled, then the monitor (rules, channels, feeds, delivery settings) and, when
        ``fetch:`` changed, the HTTP client are replaced together. What cannot change while
        running (``state:``) is kept and named in ``config_reload_partial``.
        """
        if self.reload_config is None:
            return
        store = self.monitor.store
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec()}\nSTATUS=reloading")
        try:
            # Loading validates everything and compiles the rules, off the event loop.
            config = await asyncio.to_thread(self.reload_config)
        except ConfigError as e:
            log.error("config_reload_failed", error=str(e), kept="the running config")
            metrics.RELOAD_FAILURES.inc()
            store.daemon_reloaded(os.getpid(), datetime.now(UTC), f"failed: {e}", applied=False)
            sd_notify("READY=1\n" + self._status("reload failed, old config kept"))
            return
        old = self.monitor
        needs_restart = []
        if (config.state_url, config.state_path) != (old.config.state_url, old.config.state_path):
            needs_restart.append("state")
        # No tick between here and the new monitor: a tick waiting on the store would start
        # polls of the old config after the ones in flight were stopped.
        async with self._ticking:
            # Polls in flight belong to the old config: stop them (a poll cancelled before its
            # record began records nothing) so they cannot record under the old rules after
            # the new ones made them due.
            polls = list(self._in_flight.values())
            for task in polls:
                task.cancel()
            if polls:
                await asyncio.wait(polls, timeout=5)
            if self._releases:  # the claims of polls cancelled before they began: free again
                await asyncio.wait(list(self._releases), timeout=5)
            # A cancelled poll's record may be under way in the store's thread: let it finish,
            # so the new monitor's sync sees (and makes due) what the old rules recorded.
            await off_loop(old.poller.quiesce)
            self.monitor = Monitor(config, old.store, clock=old.clock)
        # A poll cancelled after its record began has queued its alerts without waking the
        # delivery worker (the wake-up is after the record): without this they would wait for
        # the worker's idle recheck, a minute.
        self._wake_delivery.set()
        fetch_changed = config.fetch != old.config.fetch
        if fetch_changed and self._fetcher is not None:
            previous = self._fetcher
            self._fetcher = await self.monitor.fetcher().__aenter__()
            await previous.__aexit__(None, None, None)
        if self.configure_logs is not None:
            self.configure_logs(config)
        log.info(
            "config_reloaded",
            feeds=len(config.enabled_feeds()),
            rules=len(config.enabled_rules()),
            fetch_reapplied=fetch_changed or None,
        )
        result = "ok"
        if needs_restart:
            log.warning(
                "config_reload_partial",
                needs_restart=needs_restart,
                hint="restart news-monitor to apply these; everything else is applied",
            )
            result = f"partial: restart needed for {', '.join(needs_restart)}"
        store.daemon_reloaded(os.getpid(), datetime.now(UTC), result, applied=True)
        self._watch()  # the watchlists may be other files now
        sd_notify("READY=1\n" + self._status("reloaded"))
        await self._tick()  # new feeds, and feeds that new rules must see again, are due now


def poll_tick(config: Config) -> timedelta:
    """How often the scheduler looks for due feeds: every 15 s, or a third of the shortest
    interval (at least 1 s), so a 10 s feed is polled every 10 s, not every 15."""
    shortest = min((f.interval for f in config.enabled_feeds()), default=TICK)
    return max(timedelta(seconds=1), min(TICK, shortest / 3))


def load_for_reload(path: str) -> Callable[[], Config]:
    return lambda: load_config(path)
