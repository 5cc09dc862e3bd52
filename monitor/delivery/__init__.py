"""Delivery: the outbox to apprise, each alert marked sent only once its channel accepted it.

The promise, as Postfix's and Alertmanager's: once a match is recorded its alert is delivered,
or its failure is shown to a person; a crash may cause a duplicate, never a loss. So an alert
leaves the outbox only when apprise reports success for every URL of its channel, and a given-up
alert (a dead letter) queues an operator notice in the same transaction.

A delivery pass looks at every channel at once, each on its own (one down channel never delays
another), and for each alert decides when it may go (:mod:`monitor.delivery.schedule`):

- ``deliver: immediate`` alerts go at once, one message per item: an item that matched several
  rules routed to the channel is one message naming them all;
- ``every:`` / ``daily:`` alerts wait for their digest, one message per channel and period;
- quiet hours hold what falls in them and send it as one digest when they end; an ``urgent``
  rule's alerts bypass quiet hours, digests and the burst rule;
- more than ``burst`` messages due at once become one digest (a burst is one message, not a
  queue of apprise's own throttle waits), and past ``rate_limit`` the overflow folds into the
  next digest, sent as soon as the limit allows: never dropped.

A failed send is retried (the channel's ``retry``: first wait doubling to a maximum, jittered)
only to the URLs that have not taken it; after ``retry.lifetime`` it is a dead letter.

Owns the alert payload codec (:func:`message_to_payload` / :func:`payload_to_message`: the one
place that knows how an alert is stored in the outbox). May not touch: feeds, parsing, matching
or the poll schedule; it reads the outbox and writes delivery state through the store.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from monitor import logs, metrics
from monitor.config import IMMEDIATE, ChannelPolicy, Config, RetrySettings
from monitor.delivery.schedule import Slot, slot
from monitor.notify import AlertMessage, Channel, DeliveryResult, Digest, set_template_dir
from monitor.store import NewAlert, PendingAlert, Store, off_loop, owner

log = logs.get_logger()

Clock = Callable[[], datetime]
T = TypeVar("T")

# How often a waiting delivery worker looks again even when nothing is due (a safety net: the
# pass returns when the next alert is due, and a poll wakes it when it queues one).
IDLE_RECHECK = timedelta(minutes=1)
OPS_RULE = "ops"


def message_to_payload(m: AlertMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "rule": m.rule,
        "title": m.title,
        "link": m.link,
        "source": m.source,
        "feed": m.feed,
        "published": m.published.isoformat() if m.published else None,
        "matched": list(m.matched),
    }
    if m.also:
        payload["also"] = list(m.also)
    if m.followup:
        payload["followup"] = True
    if m.rules:
        payload["rules"] = list(m.rules)
    if m.story:
        payload["story"] = m.story
    return payload


def payload_to_message(p: Mapping[str, Any]) -> AlertMessage:
    published = p.get("published")
    return AlertMessage(
        rule=str(p["rule"]),
        title=str(p["title"]),
        link=p.get("link"),
        source=p.get("source"),
        feed=str(p.get("feed", "")),
        published=datetime.fromisoformat(published) if published else None,
        matched=tuple(p.get("matched", ())),
        also=tuple(p.get("also", ())),
        followup=bool(p.get("followup", False)),
        rules=tuple(p.get("rules", ())),
        story=p.get("story") if isinstance(p.get("story"), str) else None,
    )


def retry_delay(retry: RetrySettings, attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait before try ``attempts + 1``: ``first`` doubling to ``max``, ± ``jitter``."""
    base: timedelta = min(retry.first * 2 ** min(max(attempts - 1, 0), 20), retry.max)
    factor: float = (rng or random).uniform(1 - retry.jitter, 1 + retry.jitter)
    return base * factor


@dataclass
class PassReport:
    """What one delivery pass did, and when the next one has something to do."""

    sent: int = 0
    failed: int = 0
    next_due: datetime | None = None

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.next_due is None or at < self.next_due):
            self.next_due = at


@dataclass
class _Outgoing:
    """One message to send: one alert (or one item's rules grouped), or a digest of many."""

    rows: list[PendingAlert]
    digest: str | None = None  # the digest's period; None for a single message


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in a daemon thread.

    Not the loop's default executor: ``asyncio.run`` waits for that at exit, so an apprise call
    stuck for its whole timeout would hold up a shutdown past its grace. A daemon thread is
    abandoned at exit; its alert was not marked sent, so it stays queued.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:  # handed to the awaiting task, which decides
            loop.call_soon_threadsafe(_settle, future, None, e)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, name="deliver", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Delivery:
    """Sends what the outbox holds through the config's channels."""

    def __init__(
        self, config: Config, store: Store, *, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.policies: dict[str, ChannelPolicy] = {
            n: config.policies.get(n) or ChannelPolicy(timezone=config.timezone)
            for n in config.channels
        }
        self.channels = {
            n: Channel(n, urls, timeout=self.policies[n].timeout)
            for n, urls in config.channels.items()
        }
        self.rules = {r.name: r for r in config.rules}
        # A claim, renewed before each message, outlives one send (bounded by its channel's
        # timeout): a daemon killed mid-send leaves its alerts to another after this long.
        slowest = max((p.timeout for p in self.policies.values()), default=timedelta(seconds=30))
        self.claim_lease = 2 * slowest + timedelta(seconds=10)
        set_template_dir(config.templates)  # validated while loading; a reload swaps it whole

    async def deliver_pending(self, *, honour_backoff: bool = True) -> tuple[int, int]:
        """One pass; ``(sent, failed)`` alerts. See :meth:`run_pass`."""
        report = await self.run_pass(honour_backoff=honour_backoff)
        return report.sent, report.failed

    async def run_pass(self, *, honour_backoff: bool = True) -> PassReport:
        """Send every alert whose time has come, each channel on its own, all at once.

        ``honour_backoff=False`` (``once``: cron spaces its runs) retries failed alerts now.
        Digests and held alerts wait for their time in ``once`` too: the run after it sends
        them.
        """
        now = self.clock()
        by_channel: dict[str, list[PendingAlert]] = {}
        if self.store.shared:
            # Several daemons: send only what this one claims (what no other holds now).
            alerts = await off_loop(
                self.store.claim_alerts,
                now,
                lease=self.claim_lease,
                owner=owner(),
                limit=100_000,
                waiting=not honour_backoff,
            )
        else:
            alerts = await off_loop(self.store.pending_alerts, None, limit=100_000)
        for alert in alerts:
            by_channel.setdefault(alert.channel, []).append(alert)
        report = PassReport()
        results = await asyncio.gather(
            *(
                self._channel_pass(name, alerts, now, honour_backoff, report)
                for name, alerts in by_channel.items()
            )
        )
        for sent, failed in results:
            report.sent += sent
            report.failed += failed
        return report

    # -- one channel ------------------------------------------------------------------------

    async def _channel_pass(
        self,
        name: str,
        alerts: list[PendingAlert],
        now: datetime,
        honour_backoff: bool,
        report: PassReport,
    ) -> tuple[int, int]:
        channel = self.channels.get(name)
        if channel is None:
            for alert in alerts:
                await self._give_up(alert, now, f"channel {name!r} is no longer in the config")
            return 0, len(alerts)
        policy = self.policies[name]
        singles: list[PendingAlert] = []
        digests: dict[str, list[PendingAlert]] = {}
        for alert in alerts:
            if honour_backoff and alert.next_attempt_at and alert.next_attempt_at > now:
                report.wake(alert.next_attempt_at)
                continue
            s = self._slot(alert, policy)
            if s.due > now:
                report.wake(s.due)
                continue
            if s.digest is None:
                singles.append(alert)
            else:
                digests.setdefault(s.digest, []).append(alert)
        sent_before = None
        if policy.rate is not None:
            sent_before = await off_loop(self.store.messages_sent, name, now - policy.rate[1])
        outgoing = self._plan(name, singles, digests, policy, now, report, sent_before)
        sent = failed = 0
        for out in outgoing:
            if self.store.shared and not await self._still_ours(out):
                continue
            ok, n, retry_at = await self._send(channel, policy, out, now)
            if ok:
                sent += n
                continue
            failed += n
            report.wake(retry_at)  # the worker comes back for it on time
            # A channel that just failed (perhaps after its whole timeout) is tried again on
            # its next retry, not once more for each of its other alerts in this pass.
            break
        return sent, failed

    async def _still_ours(self, out: _Outgoing) -> bool:
        """Renew the claim on a message's alerts right before it goes out (a long pass may
        outlast the claim taken at its start); a message whose alerts another daemon took
        meanwhile is left to that daemon."""
        ids = [a.id for a in out.rows]
        held = await off_loop(
            self.store.renew_claims, ids, self.clock(), lease=self.claim_lease, owner=owner()
        )
        if len(held) == len(ids):
            return True
        log.warning("delivery_claim_lost", alerts=len(ids) - len(held))
        return False

    def _slot(self, alert: PendingAlert, policy: ChannelPolicy) -> Slot:
        if alert.rule == OPS_RULE:  # operator notices are never held
            return slot(alert.created_at, policy, IMMEDIATE, urgent=True)
        rule = self.rules.get(alert.rule)  # None: a rule since removed; its channel decides
        urgent = bool(rule and rule.urgent)
        return slot(alert.created_at, policy, rule.schedule if rule else None, urgent=urgent)

    def _plan(
        self,
        name: str,
        singles: list[PendingAlert],
        digests: dict[str, list[PendingAlert]],
        policy: ChannelPolicy,
        now: datetime,
        report: PassReport,
        sent_before: tuple[int, datetime | None] | None = None,
    ) -> list[_Outgoing]:
        """Group what is due into messages, applying the burst rule and the rate limit."""
        groups: dict[str, list[PendingAlert]] = {}
        for alert in singles:  # one item, several rules: one message
            groups.setdefault(alert.key, []).append(alert)
        urgent = [g for g in groups.values() if self._urgent(g[0])]
        normal = [g for g in groups.values() if not self._urgent(g[0])]
        if len(normal) > policy.burst:
            digests.setdefault("burst", []).extend(a for g in normal for a in g)
            normal = []
        out = [_Outgoing(g) for g in urgent]
        if policy.rate is not None:
            limit, period = policy.rate
            used, oldest = sent_before or (0, None)  # messages sent in the last ``period``
            room = limit - used - len(urgent)
            wanted = len(normal) + len(digests)
            if wanted > room:
                if room <= 0:
                    # Nothing more may go now: all of it waits for the window to move on.
                    report.wake((oldest or now) + period)
                    held = [a for g in normal for a in g] + [a for d in digests.values() for a in d]
                    if held:
                        log.info("delivery_rate_limited", channel=name, held=len(held))
                    return out
                keep = max(room - 1, 0)  # one place stays for the digest of the rest
                overflow = normal[keep:]
                normal = normal[:keep]
                rest = [a for g in overflow for a in g] + [a for d in digests.values() for a in d]
                digests = {"rate limit": rest} if rest else {}
        out += [_Outgoing(g) for g in normal]
        out += [_Outgoing(rows, digest=period) for period, rows in digests.items() if rows]
        return out

    def _urgent(self, alert: PendingAlert) -> bool:
        rule = self.rules.get(alert.rule)
        return alert.rule == OPS_RULE or bool(rule and rule.urgent)

    async def _send(
        self, channel: Channel, policy: ChannelPolicy, out: _Outgoing, now: datetime
    ) -> tuple[bool, int, datetime | None]:
        """Send one message; ``(ok, alerts, first retry time if it failed)``."""
        rows = out.rows
        first = rows[0]
        bound = log.bind(channel=channel.name, rule=first.rule)
        messages = [payload_to_message(a.payload) for a in rows]
        tz = policy.timezone
        item: AlertMessage | Digest
        if out.digest is None:
            item = messages[0]
            rules = tuple(dict.fromkeys(a.rule for a in rows))
            if len(rules) > 1:
                item = replace(item, rules=rules)
        else:
            messages = [await self._with_outlets(a, m) for a, m in zip(rows, messages, strict=True)]
            item = Digest(channel.name, out.digest, tuple(messages))
        skip = frozenset.intersection(*(a.done for a in rows)) if rows else frozenset()
        result: DeliveryResult = await in_thread(channel.send, item, tz, skip=skip)
        at = self.clock()
        ids = [a.id for a in rows]
        if result.ok:
            batch = None if len(rows) == 1 else f"{channel.name}:{at.timestamp():.6f}:{ids[0]}"
            await off_loop(self.store.mark_sent_many, ids, at, batch=batch)
            metrics.ALERTS.labels(channel.name, "sent").inc(len(rows))
            if out.digest is None:
                bound.info("alert_sent", title=messages[0].title, attempts=first.attempts + 1)
            else:
                bound.info("digest_sent", period=out.digest, alerts=len(rows))
            return True, len(rows), None
        detail = "; ".join(f"{t.url}: {t.detail}" for t in result.targets if not t.ok)
        retries = [
            await self._failed(a, policy, result, detail or "delivery failed", at) for a in rows
        ]
        return False, len(rows), min((r for r in retries if r is not None), default=None)

    async def _with_outlets(self, alert: PendingAlert, message: AlertMessage) -> AlertMessage:
        """A digest names every outlet that carried the story by now (story dedup)."""
        story = alert.payload.get("story")
        if not isinstance(story, str):
            return message
        mine = message.source or message.feed
        carried = await off_loop(self.store.story_outlets, alert.rule, story)
        outlets = [o for o in carried if o != mine]
        also = tuple(dict.fromkeys((*message.also, *outlets)))
        return replace(message, also=also) if also != message.also else message

    async def _failed(
        self,
        alert: PendingAlert,
        policy: ChannelPolicy,
        result: DeliveryResult,
        detail: str,
        now: datetime,
    ) -> datetime | None:
        """Record a failed try; returns when it is retried (None: given up)."""
        bound = log.bind(rule=alert.rule, channel=alert.channel)
        done = alert.done | {t.key for t in result.targets if t.ok}
        attempts = alert.attempts + 1
        if now - alert.created_at >= policy.retry.lifetime:
            await self._give_up(alert, now, detail, done=done, attempts=attempts)
            return None
        retry_at = now + retry_delay(policy.retry, attempts, self.rng)
        await off_loop(self.store.mark_failed, alert.id, now, detail, done=done, retry_at=retry_at)
        metrics.ALERTS.labels(alert.channel, "failed").inc()
        if result.nomatch:
            bound.critical(
                "alert_failed", reason="apprise matched no service: a config error", detail=detail
            )
        else:
            bound.warning(
                "alert_failed", attempts=attempts, detail=detail, retry_at=retry_at.isoformat()
            )
        return retry_at

    async def _give_up(
        self,
        alert: PendingAlert,
        now: datetime,
        reason: str,
        *,
        done: frozenset[str] | None = None,
        attempts: int | None = None,
    ) -> None:
        """A dead letter: kept with its reason, and never silent (an ``ops`` notice)."""
        notice = None
        ops = self.config.ops
        if ops is not None and alert.rule != OPS_RULE and ops in self.config.channels:
            title = str(alert.payload.get("title", ""))
            notice = NewAlert(
                f"dead:{alert.id}",
                OPS_RULE,
                (ops,),
                {
                    "rule": OPS_RULE,
                    "title": f"alert given up on channel {alert.channel!r}: {title}"[:300],
                    "link": alert.payload.get("link"),
                    "source": "news-monitor",
                    "feed": f"rule {alert.rule}",
                    "published": now.isoformat(),
                    "matched": [],
                    "also": [f"reason: {reason}"[:300]],
                },
            )
        await off_loop(
            self.store.mark_failed,
            alert.id,
            now,
            reason,
            done=done or alert.done,
            dead=True,
            notice=notice,
        )
        metrics.ALERTS.labels(alert.channel, "dead").inc()
        log.error(
            "alert_expired",
            rule=alert.rule,
            channel=alert.channel,
            attempts=attempts or alert.attempts,
            reason=reason,
            notified=ops if notice else None,
        )
