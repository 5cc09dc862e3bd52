"""Delivery: the outbox to apprise, each alert marked sent only once its channel accepted it.

Owns the alert payload codec (:func:`message_to_payload` / :func:`payload_to_message`: the one
place that knows how an alert is stored in the outbox), retries with backoff to only the URLs
that have not taken an alert, and dead letters. May not touch: feeds, parsing, matching or the
schedule; it reads the outbox and writes delivery state through the store, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from monitor import logs
from monitor.config import Config
from monitor.notify import AlertMessage, Channel, DeliveryResult, render
from monitor.store import (
    Store,
)

log = logs.get_logger()

Clock = Callable[[], datetime]

DELIVERY_RETRY = timedelta(minutes=1)  # first retry of a failed alert; doubles each time

DELIVERY_RETRY_MAX = timedelta(hours=1)

DELIVERY_LIFETIME = timedelta(days=3)  # then a failing alert is given up (a dead letter)


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
    )


class Delivery:
    """Sends what the outbox holds through the config's channels."""

    def __init__(self, config: Config, store: Store, *, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.channels = {n: Channel(n, urls) for n, urls in config.channels.items()}

    async def deliver_pending(self, *, honour_backoff: bool = True) -> tuple[int, int]:
        """Send the alerts waiting in the outbox; each is marked sent only once accepted.

        A failed alert is retried with backoff (1 minute doubling to an hour) and only to the
        URLs that have not taken it yet; after one failure, a channel's other alerts wait for the
        next pass; after ``DELIVERY_LIFETIME`` it is given up with its
        reason (a dead letter, kept in the state and logged as an error). ``once`` retries
        everything still pending whatever the backoff, since cron already spaces its runs.
        """
        sent = failed = 0
        now = self.clock()
        failing: set[str] = set()  # channels that failed in this pass: their other alerts wait
        for alert in self.store.pending_alerts(now if honour_backoff else None):
            if alert.channel in failing:
                continue
            bound = log.bind(rule=alert.rule, channel=alert.channel)
            channel = self.channels.get(alert.channel)
            if channel is None:
                reason = f"channel {alert.channel!r} is no longer in the config"
                self.store.mark_failed(alert.id, now, reason, done=alert.done, dead=True)
                bound.error("alert_expired", reason=reason)
                failed += 1
                continue
            message = payload_to_message(alert.payload)
            title, body = render(message, self.config.timezone)
            result: DeliveryResult = await asyncio.to_thread(
                channel.deliver, title, body, skip=alert.done
            )
            now = self.clock()
            if result.ok:
                self.store.mark_sent(alert.id, now)
                sent += 1
                bound.info("alert_sent", title=message.title, attempts=alert.attempts + 1)
                continue
            failed += 1
            # A channel that just timed out would cost its timeout again for each of its queued
            # alerts, holding up every other channel's: try it again on the next pass.
            failing.add(alert.channel)
            detail = "; ".join(f"{t.url}: {t.detail}" for t in result.targets if not t.ok)
            done = alert.done | {t.key for t in result.targets if t.ok}
            attempts = alert.attempts + 1
            dead = now - alert.created_at >= DELIVERY_LIFETIME
            retry_at = now + min(DELIVERY_RETRY * 2 ** min(attempts - 1, 10), DELIVERY_RETRY_MAX)
            self.store.mark_failed(
                alert.id, now, detail or "delivery failed", done=done, retry_at=retry_at, dead=dead
            )
            if dead:
                bound.error("alert_expired", attempts=attempts, reason=detail)
            elif result.nomatch:
                bound.critical(
                    "alert_failed",
                    reason="apprise matched no service: a config error",
                    detail=detail,
                )
            else:
                bound.warning(
                    "alert_failed", attempts=attempts, detail=detail, retry_at=retry_at.isoformat()
                )
        return sent, failed
