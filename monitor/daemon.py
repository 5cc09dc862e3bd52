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
import os
import signal
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import logs
from monitor.config import Config, Feed, load_config
from monitor.delivery import IDLE_RECHECK
from monitor.errors import ConfigError, MonitorError
from monitor.fetch import Fetcher
from monitor.poll import FeedOutcome
from monitor.service import Monitor

log = logs.get_logger()

TICK = timedelta(seconds=15)


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
        tick: timedelta = TICK,
    ) -> None:
        self.monitor = monitor
        self.reload_config = reload_config
        self.configure_logs = configure_logs
        self.tick = tick
        self.stop = asyncio.Event()
        self._force = asyncio.Event()  # a second SIGTERM: stop now, without the grace
        self._wake_delivery = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
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
            IntervalTrigger(hours=6, timezone=UTC),
            id="prune-state",
            next_run_time=datetime.now(UTC),
        )
        async with self.monitor.fetcher() as fetcher:
            self._fetcher = fetcher
            delivery = asyncio.create_task(self._delivery_worker(), name="delivery")
            scheduler.start()
            sd_notify("READY=1\nSTATUS=polling feeds")
            log.info(
                "daemon_started",
                feeds=len(self.monitor.config.enabled_feeds()),
                rules=len(self.monitor.config.enabled_rules()),
                state=str(self.monitor.store.path),
            )
            await self.stop.wait()
            sd_notify("STOPPING=1")
            log.info("daemon_stopping", in_flight=len(self._in_flight))
            scheduler.shutdown(wait=False)
            await self._drain(delivery)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("daemon_stopped", pending_alerts=self.monitor.store.pending_count())

    def _request_stop(self) -> None:
        """SIGTERM/SIGINT: the first stops taking work; a second one cuts the grace short."""
        if self.stop.is_set():
            log.warning("daemon_stop_forced", reason="a second stop signal")
            self._force.set()
        self.stop.set()

    async def _drain(self, delivery: asyncio.Task[Any]) -> None:
        """Stop polls at once, let the delivery in progress finish within the grace.

        A cancelled poll has recorded nothing, so it loses nothing: the feed is polled again on
        the next start. A delivery cut off by the grace (``delivery.shutdown_grace``, always
        shorter than the unit's stop timeout) or by a second signal leaves its alert queued:
        it was not marked sent, so it goes out after the next start (at most a duplicate).
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

    def _request_reload(self) -> None:
        """SIGHUP: reload now (on the loop, not in the handler); one reload at a time."""
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _tick(self) -> None:
        if self.stop.is_set():
            return
        monitor = self.monitor
        now = monitor.clock()
        feeds = {f.name: f for f in monitor.config.enabled_feeds()}
        idle = [n for n in feeds if n not in self._in_flight]
        for state in monitor.store.due_feeds(idle, now):
            feed = feeds[state.name]
            task = asyncio.create_task(self._poll(feed), name=f"poll:{feed.name}")
            self._in_flight[feed.name] = task
        if "WATCHDOG_USEC" in os.environ:
            sd_notify("WATCHDOG=1")

    async def _poll(self, feed: Feed) -> None:
        try:
            assert self._fetcher is not None
            outcome, _ = await self.monitor.poller.guarded_poll(self._fetcher, feed, dry_run=False)
            if outcome.alerts:
                self._wake_delivery.set()
            self._note_first_round(outcome)
        finally:
            self._in_flight.pop(feed.name, None)

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
        m = self.monitor
        removed = m.store.prune(m.clock(), m.config.defaults.retention)
        m.poller.expire_stories()
        log.info("state_pruned", removed=removed)

    async def _reload(self) -> None:
        """SIGHUP: validate the whole new config first; on any error keep running the old one."""
        if self.reload_config is None:
            return
        try:
            # Loading validates everything and compiles the rules, off the event loop.
            config = await asyncio.to_thread(self.reload_config)
        except ConfigError as e:
            log.error("config_reload_failed", error=str(e), kept="the running config")
            return
        if config.state_path != self.monitor.config.state_path:
            log.error("config_reload_failed", error="'state:' cannot change while running")
            return
        old = self.monitor
        # Polls in flight belong to the old config: stop them (a cancelled poll has recorded
        # nothing) so they cannot record under the old rules after the new ones made them due.
        polls = list(self._in_flight.values())
        for task in polls:
            task.cancel()
        if polls:
            await asyncio.wait(polls, timeout=5)
        self.monitor = Monitor(config, old.store, clock=old.clock)
        if self.configure_logs is not None:
            self.configure_logs(config)
        log.info(
            "config_reloaded",
            feeds=len(config.enabled_feeds()),
            rules=len(config.enabled_rules()),
        )
        await self._tick()  # new feeds, and feeds that new rules must see again, are due now


def load_for_reload(path: str) -> Callable[[], Config]:
    return lambda: load_config(path)
