"""Wires the stages together: one cycle (``once``), and the monitor the daemon runs.

One item's path from feed to phone, in order: ``monitor.poll`` (fetch -> parse -> identity ->
match -> story -> record: seen + hits + stories + outbox in one transaction) -> ``monitor.delivery``
(outbox -> apprise; marked sent only on success). ``monitor.daemon`` decides when each runs.

Owns: the :class:`Monitor`, which builds the poll path and delivery from one config, syncs the
configured feeds into the state, and runs a whole cycle. May not touch: SQL (``monitor.store``),
apprise (``monitor.delivery``/``monitor.notify``), the scheduler and signals (``monitor.daemon``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor import logs
from monitor.config import Config, compile_rules
from monitor.delivery import Delivery, payload_to_message
from monitor.fetch import Fetcher
from monitor.notify import AlertMessage, register_console_scheme
from monitor.poll import FeedOutcome, Poller, fetch_limits
from monitor.rules import RuleSet
from monitor.store import (
    FeedState,
    Store,
)

log = logs.get_logger()

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CycleReport:
    feeds: list[FeedOutcome] = field(default_factory=list)
    delivered: int = 0
    delivery_failed: int = 0
    dry_run_messages: list[AlertMessage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No delivery failed, no feed polled failed, and some feed works.

        A feed skipped because its server asked to wait is not a failure of this run; but when
        every feed was skipped and one of them is backing off after errors (the only feed is
        broken), nothing worked, and the exit status says so.
        """
        if self.delivery_failed or any(f.status == "failed" for f in self.feeds):
            return False
        worked = any(f.status in ("ok", "not_modified") for f in self.feeds)
        broken = any(f.status == "skipped" and f.error for f in self.feeds)
        return worked or not broken


class Monitor:
    """The poll path and delivery for one config and one state."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = utc_now,
        ruleset: RuleSet | None = None,
        sync: bool = True,
    ) -> None:
        """``sync=False`` leaves the store untouched (``once --dry-run`` records nothing)."""
        register_console_scheme()
        self.clock = clock
        self.store = store
        self.config = config
        if ruleset is None:
            ruleset = config.ruleset if config.ruleset is not None else compile_rules(config)
        self.ruleset: RuleSet = ruleset
        self.poller = Poller(config, store, clock=clock, ruleset=ruleset)
        if sync:
            self._sync_store()
        self.delivery = Delivery(config, store, clock=clock)

    def _sync_store(self) -> None:
        self.store.sync_feeds(((f.name, f.url) for f in self.config.feeds), self.clock())
        self.store.due_for_rules(self.poller.fingerprint, self.clock())

    def fetcher(self) -> Fetcher:
        return Fetcher(
            fetch_limits(self.config),
            max_connections=self.config.fetch.concurrency,
            per_host=self.config.fetch.per_host,
        )

    async def run_once(self, *, dry_run: bool = False, force: bool = False) -> CycleReport:
        """Poll every enabled feed once (except those asked to wait, unless forced); deliver."""
        report = CycleReport()
        now = self.clock()
        feeds = []
        for feed in self.config.enabled_feeds():
            state = self.store.feed_state(feed.name) or FeedState.new(feed.name, feed.url)
            if state.gone and not force:
                log.warning(
                    "feed_skipped",
                    feed=feed.name,
                    reason="the server said the feed is gone (HTTP 410); change its url to retry",
                )
                report.feeds.append(FeedOutcome(feed.name, "failed", error="gone (HTTP 410)"))
                continue
            if state.not_before and state.not_before > now and not force:
                log.info(
                    "feed_skipped",
                    feed=feed.name,
                    reason="waiting as the server asked or after errors",
                    until=state.not_before.isoformat(),
                )
                # Skipped while failing (backing off after errors) is still a broken feed.
                error = state.last_error if state.failures else None
                report.feeds.append(FeedOutcome(feed.name, "skipped", error=error))
                continue
            feeds.append(feed)
        async with self.fetcher() as fetcher:
            results = await asyncio.gather(
                *(self.poller.guarded_poll(fetcher, f, dry_run=dry_run) for f in feeds)
            )
        shown: set[tuple[str, str]] = set()
        for outcome, messages in results:
            report.feeds.append(outcome)
            for key, message in messages:  # an item in several feeds alerts once per rule
                if (key, message.rule) not in shown:
                    shown.add((key, message.rule))
                    report.dry_run_messages.append(message)
        if not dry_run:
            # `once` is run by cron for months too: it prunes like the daemon does.
            self.store.prune(self.clock(), self.config.defaults.retention)
            web = self.config.web
            self.store.prune_recent(self.clock(), web.keep_items, web.max_items)
        if dry_run:
            report.dry_run_messages[:0] = [
                payload_to_message(p.payload) for p in self.store.pending_alerts(None)
            ]
        else:
            sent, failed = await self.delivery.deliver_pending(honour_backoff=False)
            report.delivered, report.delivery_failed = sent, failed
        return report
