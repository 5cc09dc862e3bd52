"""The poll path: one feed, from fetch to the one transaction that records what it found.

fetch (bytes, not-modified or a failure) -> parse (``FeedItem`` records) -> identity (``dedup``
keys) -> eligibility (``max_age``, first poll) -> ``rules`` -> story (``dedup.stories``: new, or
a repeat of a story already alerted) -> ``store.record_poll`` (seen + hits + stories + outbox, in
one transaction). What it decides to send goes into the outbox once, as the delivery codec's
payload; sending it is delivery's business (``monitor.delivery``).

Owns: :func:`plan_poll` (the pure decision), the :class:`Poller` (one feed, with its failure,
backoff and health bookkeeping) and the schedule arithmetic (next poll, backoff). May not touch:
the scheduler, signals or systemd (``monitor.daemon``), apprise or the outbox's delivery state
(``monitor.delivery``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor import logs, metrics
from monitor.config import Config, DedupSettings, Feed
from monitor.dedup import Keyed, is_google_news, key_items
from monitor.dedup.similarity import Evidence
from monitor.dedup.stories import Candidate, Member, StoryBook, evidence_of
from monitor.delivery import message_to_payload
from monitor.fetch import Fetched, Fetcher, FetchFailed, FetchLimits, NotModified, Validators
from monitor.health import assess, notice
from monitor.normalize import fold, folded_words
from monitor.notify import AlertMessage
from monitor.parse import FeedItem, ParsedFeed, ParseError, discover_feeds, parse_feed
from monitor.rules import RuleMatch, RuleSet
from monitor.store import (
    MAX_RECENT_SUMMARY,
    MAX_RECENT_TITLE,
    FeedState,
    NewAlert,
    PollRecord,
    RecentItem,
    SeenRecord,
    SeenUpdate,
    StaleLeaseError,
    Store,
    StoryInfo,
    StoryMember,
    off_loop,
)

log = logs.get_logger()

Clock = Callable[[], datetime]

MAX_BACKOFF = timedelta(hours=6)

MAX_RETRY_AFTER = timedelta(hours=24)

MAX_SERVER_INTERVAL = timedelta(hours=6)  # cap on Cache-Control max-age / <ttl> lower bounds


class _Abandoned(Exception):
    """The poll was cancelled before its worker thread began to record."""


@dataclass(frozen=True)
class Plan:
    seen: list[SeenUpdate]
    seen_again: list[str]
    hits: list[tuple[str, str]]
    alerts: list[NewAlert]
    messages: list[AlertMessage]
    story_members: list[StoryMember] = field(default_factory=list)
    followups: list[tuple[str, str]] = field(default_factory=list)
    joined: list[tuple[StoryMember, str]] = field(default_factory=list)  # (member, story title)


def item_fields(item: FeedItem) -> dict[str, str]:
    """The text fields a query can address (see the rule language in the README)."""
    domain = urlsplit(item.source_url or item.link or "").hostname or ""
    domain = domain.removeprefix("www.")
    source = " ".join(p for p in (item.source or "", domain) if p)
    return {
        "title": item.title,
        "summary": item.summary,
        "source": source,
        "feed": item.feed,
        "lang": item.lang or "",
    }


def matched_terms(match: RuleMatch, fields: Mapping[str, str]) -> tuple[str, ...]:
    """The matched words as they appear in the item, in order, without repeats."""
    out: list[str] = []
    for hit in sorted(match.hits, key=lambda h: (h.field != "title", h.start)):
        text = fields.get(hit.field, "")[hit.start : hit.end]
        if text and text.casefold() not in {t.casefold() for t in out}:
            out.append(text)
    return tuple(out)


def recent_item(key: str, item: FeedItem, seen_at: datetime) -> RecentItem:
    """An item as kept for the web view's preview and ``backtest`` (texts capped as stored)."""
    item = dataclasses.replace(
        item, title=item.title[:MAX_RECENT_TITLE], summary=item.summary[:MAX_RECENT_SUMMARY]
    )
    words = dict.fromkeys(
        w for text in item_fields(item).values() for w in folded_words(fold(text))
    )
    return RecentItem(
        key=key,
        feed=item.feed,
        title=item.title,
        summary=item.summary,
        source=item.source,
        source_url=item.source_url,
        link=item.link,
        published_at=item.published,
        lang=item.lang,
        related=item.related,
        seen_at=seen_at,
        words=f" {' '.join(words)} ",
    )


def recent_feed_item(r: RecentItem) -> FeedItem:
    """A recent item as the parse stage handed it on, for matching and story evidence."""
    return FeedItem(
        id=r.key,
        link=r.link,
        title=r.title,
        summary=r.summary,
        published=r.published_at,
        source=r.source,
        source_url=r.source_url,
        feed=r.feed,
        lang=r.lang,
        related=r.related,
    )


def item_evidence(item: FeedItem) -> Evidence:
    """What story dedup weighs: the title, the item's own summary, Google News' related list.

    A Google News item's description *is* the related list, so it is not a summary of its own.
    """
    own_summary = None if (item.related or is_google_news(item)) else item.summary
    return evidence_of(item.title, own_summary, item.related)


def outlet(item: FeedItem) -> str:
    """How a follow-up names where an item came from: its publisher, else its feed."""
    return item.source or item.feed


@dataclass
class _StoryDraft:
    """A story being decided in one poll: its first alert (if created now) and its joiners."""

    title: str
    link: str | None
    source: str | None
    first: AlertMessage | None  # the alert of a story created in this poll
    joiners: list[StoryMember] = field(default_factory=list)


def plan_poll(
    *,
    feed: Feed,
    items: Sequence[Keyed],
    now: datetime,
    first_poll: bool,
    seen: Mapping[str, SeenRecord],
    hits: set[tuple[str, str]],
    ruleset: RuleSet,
    rule_channels: Mapping[str, tuple[str, ...]],
    match_seen: bool = True,
    stories: StoryBook | None = None,
    policies: Mapping[str, DedupSettings] | None = None,
    story_info: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], StoryInfo]]
    | None = None,
) -> Plan:
    """Decide what one poll's items change.

    - A new item is recorded as seen. It is eligible to alert from its publication time; an item
      without a date is eligible from now, except on the feed's first poll, where it is recorded
      silently (it may be years old: adding a feed must not flood).
    - An item alerts only while its eligibility is within ``max_age``, once per rule: a rule added
      or changed later still alerts the recent items it matches, old ones never.
    - An item this feed recorded before is matched again only with ``match_seen`` (the rules
      changed since the feed was last parsed): nothing else about it can have changed, and
      re-matching every listed item on every poll was most of the matching work. An item first
      recorded by another feed is always matched: its fields here (``feed:``, summary, max_age)
      are this feed's own.
    - A hit that tells a story already alerted for its rule within ``dedup.window`` joins that
      story (``stories``) instead of alerting: recorded, and with ``on_repeat: update`` named in
      at most one "also reported by" follow-up per ``update_every``. Hits that join a story
      created in the same poll are named in that story's first alert instead.
    """
    plan = Plan([], [], [], [], [])
    horizon = now - feed.max_age
    drafts: dict[tuple[str, str], _StoryDraft] = {}
    pending: dict[str, list[Member]] = {}
    firsts: list[tuple[str, str, AlertMessage]] = []  # (key, rule, message) of new alerts
    for keyed in items:
        key, item = keyed.key, keyed.item
        record = seen.get(key)
        if record is None:
            if item.published is not None:
                eligible_at: datetime | None = min(item.published, now)
            else:
                eligible_at = None if first_poll else now
            plan.seen.append(SeenUpdate(key, feed.name, item.title, item.published, eligible_at))
        else:
            eligible_at = record.eligible_at
            plan.seen_again.append(key)
            if not match_seen and record.feed == feed.name:
                continue
        if eligible_at is None or eligible_at < horizon:
            continue
        fields = item_fields(item)
        evidence: Evidence | None = None
        for match in ruleset.match(fields):
            if (key, match.rule) in hits or match.rule not in rule_channels:
                continue
            message = AlertMessage(
                rule=match.rule,
                title=item.title,
                link=item.link,
                source=item.source,
                feed=feed.name,
                published=item.published,
                matched=matched_terms(match, fields),
            )
            plan.hits.append((key, match.rule))
            policy = (policies or {}).get(match.rule)
            if stories is None or policy is None or policy.on_repeat == "alert":
                firsts.append((key, match.rule, message))
                continue
            evidence = evidence or item_evidence(item)
            candidate = Candidate(key, evidence, item.title, outlet(item))
            placement = stories.place(
                match.rule,
                candidate,
                since=(now - policy.window).timestamp(),
                threshold=policy.similarity,
                pending=pending.get(match.rule, ()),
            )
            story = placement.story or key
            member = StoryMember(
                rule=match.rule,
                key=key,
                story=story,
                title=item.title,
                summary=item.summary if evidence.summary is not None else None,
                related=item.related,
                source=item.source,
                link=item.link,
                feed=feed.name,
                published_at=item.published,
                joined_at=now,
                similarity=placement.verdict.score if placement.joins else None,
                reason=placement.verdict.reason if placement.joins else "first",
                announced=not placement.joins,
            )
            plan.story_members.append(member)
            pending.setdefault(match.rule, []).append(
                Member(story, key, now.timestamp(), evidence, item.title, outlet(item))
            )
            if not placement.joins:
                if evidence.title.skip and not evidence.related:
                    log.debug(
                        "story_not_compared",
                        rule=match.rule,
                        title=item.title[:120],
                        reason=evidence.title.skip,
                    )
                drafts[(match.rule, key)] = _StoryDraft(item.title, item.link, item.source, message)
                firsts.append((key, match.rule, message))
                continue
            draft = drafts.get((match.rule, story))
            if draft is None:
                draft = drafts[(match.rule, story)] = _StoryDraft("", None, None, None)
            draft.joiners.append(member)
            matched = placement.matched.title if placement.matched else ""
            plan.joined.append((member, matched))
    followed = _settle_stories(plan, drafts, firsts, feed, now, policies or {}, story_info)
    for key, rule, message in firsts:
        payload = message_to_payload(message)
        # The story each alert tells, so a digest can name every outlet that carried it.
        told = key if (rule, key) in drafts else followed.get((rule, key))
        if told is not None:
            payload["story"] = told
        plan.alerts.append(NewAlert(key, rule, rule_channels[rule], payload))
        plan.messages.append(message)
    return plan


def _settle_stories(
    plan: Plan,
    drafts: Mapping[tuple[str, str], _StoryDraft],
    firsts: list[tuple[str, str, AlertMessage]],
    feed: Feed,
    now: datetime,
    policies: Mapping[str, DedupSettings],
    story_info: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], StoryInfo]] | None,
) -> dict[tuple[str, str], str]:
    """What the poll's story joins send: nothing, a line in a new alert, or one follow-up.

    Returns the story of each follow-up, by its alert's ``(rule, key)``.
    """
    followed: dict[tuple[str, str], str] = {}
    joined = [(rs, d) for rs, d in drafts.items() if d.joiners]
    if not joined:
        return followed
    older = [rs for rs, d in joined if d.first is None]
    infos = story_info(older) if story_info is not None and older else {}
    announced: set[tuple[str, str]] = set()
    extra: list[tuple[str, str, AlertMessage]] = []
    for (rule, story), draft in joined:
        outlets = tuple(dict.fromkeys(m.source or m.feed for m in draft.joiners))
        if draft.first is not None:
            # The story starts in this poll: its one alert names the other outlets.
            i = next(n for n, (k, r, _) in enumerate(firsts) if (k, r) == (story, rule))
            mine = draft.first.source or draft.first.feed
            also = tuple(o for o in outlets if o != mine)
            firsts[i] = (story, rule, dataclasses.replace(draft.first, also=also))
            announced.add((rule, story))
            continue
        policy = policies.get(rule)
        info = infos.get((rule, story))
        if policy is None or policy.on_repeat != "update" or info is None:
            continue
        if info.updated_at is not None and now - info.updated_at < policy.update_every:
            continue  # named in the next follow-up, if another outlet joins after the pause
        known = {info.source, *info.announced}
        names = tuple(o for o in dict.fromkeys((*info.unannounced, *outlets)) if o not in known)
        if not names:
            continue  # only outlets already named: nothing new to tell
        last = draft.joiners[-1]
        followed[(rule, last.key)] = story
        extra.append(
            (
                last.key,
                rule,
                AlertMessage(
                    rule=rule,
                    title=info.title,
                    link=info.link,
                    source=info.source,
                    feed=feed.name,
                    published=None,
                    matched=(),
                    also=names,
                    followup=True,
                ),
            )
        )
        announced.add((rule, story))
    firsts.extend(extra)
    plan.followups.extend(sorted(announced))
    plan.story_members[:] = [
        dataclasses.replace(m, announced=True) if (m.rule, m.story) in announced else m
        for m in plan.story_members
    ]
    return followed


def story_member(m: StoryMember) -> Member:
    """A stored story member as the index keeps it."""
    return Member(
        m.story,
        m.key,
        m.joined_at.timestamp(),
        evidence_of(m.title, m.summary, m.related),
        m.title,
        m.source or m.feed,
    )


def server_floor(result: Fetched | NotModified, state: FeedState) -> timedelta | None:
    """What the server asks as a minimum interval: Cache-Control max-age now, or the feed's
    last ``<ttl>`` (a 304 carries no body to read it from)."""
    return max((d for d in (result.min_interval, state.ttl) if d is not None), default=None)


def next_poll(
    feed: Feed, now: datetime, *, floor: timedelta | None = None, rng: random.Random | None = None
) -> datetime:
    """Now + the feed's interval (raised to what the server asked, capped), with ±10% jitter.

    Jitter spreads feeds that share a host so they do not all fire in the same tick.
    """
    interval = feed.interval
    if floor is not None:
        interval = max(interval, min(floor, MAX_SERVER_INTERVAL))
    factor = (rng or random).uniform(0.9, 1.1)
    return now + interval * factor


def backoff_after(feed: Feed, failures: int, *, rng: random.Random | None = None) -> timedelta:
    """Backoff after consecutive failures: interval, 2x, 4x … capped at 6 h, jittered."""
    base: timedelta = feed.interval * (2 ** max(0, min(failures - 1, 16)))
    jitter: float = (rng or random).uniform(0.9, 1.1)
    return min(base, MAX_BACKOFF) * jitter


@dataclass
class FeedOutcome:
    feed: str
    status: str  # "ok", "not_modified", "failed", "skipped"
    items: int = 0
    new: int = 0
    alerts: int = 0
    error: str | None = None


async def discover(
    fetcher: Fetcher,
    page: Fetched,
    error: ParseError,
    feed_name: str,
    limits: FetchLimits,
    bound: Any,
) -> tuple[Fetched, ParsedFeed] | None:
    """A feed URL that is a web page: fetch and parse the feed it links to (<link rel=alternate>).

    Tries at most three advertised feeds, in page order; logs ``feed_discovered`` for the one used.
    """
    if "HTML" not in str(error):
        return None
    for candidate in discover_feeds(page.body, page.url)[:3]:
        result = await fetcher.fetch(candidate, None, limits=limits)
        if not isinstance(result, Fetched):
            continue
        try:
            parsed = await asyncio.to_thread(
                parse_feed,
                result.body,
                feed_name=feed_name,
                url=result.url,
                content_type=result.content_type,
            )
        except ParseError:
            continue
        bound.info("feed_discovered", url=page.url, discovered=result.url)
        return result, parsed
    return None


def fetch_limits(config: Config, feed: Feed | None = None) -> FetchLimits:
    """The fetch limits from ``fetch:``; a feed's own ``allow_private`` wins over the global one."""
    fs = config.fetch
    allow: bool | frozenset[str]
    if feed is not None:
        allow = feed.allow_private
    else:
        allow = (
            fs.allow_private if isinstance(fs.allow_private, bool) else frozenset(fs.allow_private)
        )
    extra: dict[str, Any] = {"user_agent": fs.user_agent} if fs.user_agent else {}
    return FetchLimits(
        timeout=fs.timeout,
        max_bytes=fs.max_bytes,
        max_redirects=fs.max_redirects,
        allow_private=allow,
        trust_env=fs.trust_env,
        **extra,
    )


def feed_lease(config: Config) -> timedelta:
    """How long a claimed feed is this daemon's: a poll's worst case (a fetch, a discovery
    fetch, the parse and record) with room to spare. A daemon that dies mid-poll leaves its
    feeds to the others after this long. A poll that outlives its lease (a fetch queued behind
    a slow host) is not recorded (the lease generation fences it): safety never rests on it."""
    return 3 * config.fetch.timeout + timedelta(seconds=10)


def rules_fingerprint(config: Config) -> str:
    """Changes whenever the enabled rules or aliases change, so validators can be dropped."""
    h = hashlib.blake2b(digest_size=16)
    for r in config.enabled_rules():
        h.update(f"{r.name}\x1f{r.query}\x1e".encode())
    for k, v in sorted(config.aliases.items()):
        h.update(f"{k}\x1f{v!r}\x1e".encode())
    return h.hexdigest()


class Poller:
    """Polls one feed at a time against the store: the poll path with its side effects.

    It holds what a poll needs from the config (compiled rules, channels per rule, dedup
    policies, the rules' fingerprint) and the story index, rebuilt from the state on creation:
    a reload makes a new Poller.
    """

    def __init__(self, config: Config, store: Store, *, clock: Clock, ruleset: RuleSet) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.ruleset = ruleset
        self.rule_channels = {r.name: r.notify for r in config.enabled_rules()}
        self.policies = {r.name: r.dedup for r in config.enabled_rules()}
        self.fingerprint = rules_fingerprint(config)
        self.stories = StoryBook()
        # One poll decides and records at a time (in a worker thread): the story index is read
        # by a decision and learns its result before the next decision reads it.
        self._deciding = threading.Lock()
        self._cursor: dict[str, int] = {}  # per rule, the last member read from a shared state
        self._load_stories()

    @property
    def story_window(self) -> timedelta:
        """The longest dedup window of any rule: how far back the story index reaches."""
        return max((p.window for p in self.policies.values()), default=timedelta(0))

    def _load_stories(self) -> None:
        """Rebuild the story index from the state: stories survive restarts and reloads."""
        if self.store.shared:  # read first: a member recorded meanwhile is read twice, not lost
            self._cursor = self.store.story_cursor(self._story_rules())
        since = self.clock() - self.story_window
        self.stories.load(
            (m.rule, story_member(m))
            for m in self.store.story_members(since)
            if m.rule in self.policies
        )

    def _story_rules(self) -> list[str]:
        return sorted(r for r, p in self.policies.items() if p.on_repeat != "alert")

    def _decide_and_record(
        self,
        decide: Callable[[], Plan],
        record: Callable[[Plan], PollRecord],
        dry_run: bool,
        abandoned: threading.Event,
    ) -> Plan:
        """Decide what a poll changes and record it (in a worker thread: the store may be slow).

        On a state shared with other daemons, a poll whose hits touch stories decides again
        under those rules' locks, after reading the members the others recorded since: two
        daemons seeing two outlets' copies of one story at once send one alert, not two.
        """
        with self._deciding:
            if abandoned.is_set():
                raise _Abandoned
            plan = decide()
            if dry_run:
                pass
            elif not self.store.shared or not plan.story_members:
                self.store.record_poll(record(plan))
            else:
                plan = self._decide_locked(decide, record, {m.rule for m in plan.story_members})
            for sm in plan.story_members:
                self.stories.add(sm.rule, story_member(sm))
            return plan

    def _decide_locked(
        self, decide: Callable[[], Plan], record: Callable[[Plan], PollRecord], rules: set[str]
    ) -> Plan:
        for _ in range(5):
            with self.store.story_lock(rules):
                for _seq, m in self.store.story_members_after(self._cursor, rules):
                    if m.rule in self.policies:
                        self.stories.add(m.rule, story_member(m))
                plan = decide()
                wanted = {m.rule for m in plan.story_members}
                if wanted <= rules:
                    self.store.record_poll(record(plan))
                    return plan
            # An item another daemon just recorded made a rule hit that is not locked: the
            # locks are taken in sorted order only, so start again with that rule too.
            rules |= wanted
        raise StaleLeaseError("story rules kept changing under this poll; it is not recorded")

    def quiesce(self) -> None:
        """Return once no poll is deciding or recording (after cancelling polls: a reload)."""
        with self._deciding:
            pass

    def expire_stories(self) -> int:
        return self.stories.expire((self.clock() - self.story_window).timestamp())

    def limits(self, feed: Feed | None = None) -> FetchLimits:
        return fetch_limits(self.config, feed)

    async def poll_feed(
        self, fetcher: Fetcher, feed: Feed, *, dry_run: bool = False, lease: int | None = None
    ) -> tuple[FeedOutcome, list[tuple[str, AlertMessage]]]:
        """Poll one feed; ``lease`` is the claim it runs under (a shared state's daemons)."""
        state = await off_loop(self.store.feed_state, feed.name)
        if state is None or state.config_url != feed.url:  # only in a dry run: no sync
            state = FeedState.new(feed.name, feed.url)
        started = self.clock()
        bound = log.bind(feed=feed.name)
        # Rules changed since the last parse: the new rules have not read this feed, so ask for
        # the whole body and parse it even if unchanged. A dry run shows what would alert now.
        reread = dry_run or state.rules_fingerprint != self.fingerprint
        validators = Validators() if reread else Validators(state.etag, state.last_modified)
        result = await fetcher.fetch(state.url, validators, limits=self.limits(feed))
        now = self.clock()
        if isinstance(result, FetchFailed):
            failed = await self._failed(
                feed, state, now, result.reason, result, dry_run, bound, lease=lease
            )
            return failed, []
        if isinstance(result, NotModified):
            if not dry_run:
                await off_loop(
                    self.store.record_not_modified,
                    feed.name,
                    now,
                    next_poll(feed, now, floor=server_floor(result, state)),
                    None,
                    lease=lease,
                )
            bound.info("feed_fetched", status="not_modified", url=state.url)
            return FeedOutcome(feed.name, "not_modified"), []
        assert isinstance(result, Fetched)
        body_hash = hashlib.blake2b(result.body, digest_size=16).hexdigest()
        if body_hash == state.body_hash and result.permanent_redirect is None and not reread:
            # Same bytes as the last parse (a server without validators): nothing can be new,
            # and parsing is the expensive part of a poll.
            if not dry_run:
                await off_loop(
                    self.store.record_not_modified,
                    feed.name,
                    now,
                    next_poll(feed, now, floor=server_floor(result, state)),
                    None,
                    status=result.status,
                    validators=(result.validators.etag, result.validators.last_modified),
                    lease=lease,
                )
            bound.info("feed_fetched", status="unchanged", http_status=result.status)
            return FeedOutcome(feed.name, "not_modified"), []
        try:
            parsed = await asyncio.to_thread(
                parse_feed,
                result.body,
                feed_name=feed.name,
                url=result.url,
                content_type=result.content_type,
            )
        except ParseError as e:
            found = await discover(fetcher, result, e, feed.name, self.limits(feed), bound)
            if found is None:
                failed = await self._failed(
                    feed, state, now, str(e), None, dry_run, bound, lease=lease
                )
                return failed, []
            result, parsed = found
            # Remember the discovered feed as the effective URL (as a permanent redirect is).
            result = dataclasses.replace(result, permanent_redirect=result.url)
            body_hash = hashlib.blake2b(result.body, digest_size=16).hexdigest()
        items = parsed.items
        keyed = key_items(items)
        keys = [k.key for k in keyed]
        state = dataclasses.replace(state, ttl=parsed.ttl)
        if result.permanent_redirect and result.permanent_redirect != state.url:
            bound.warning(
                "feed_moved",
                url=state.url,
                moved_to=result.permanent_redirect,
                status=result.status,
            )

        def record(plan: Plan) -> PollRecord:
            new = {u.key for u in plan.seen}
            return PollRecord(
                feed=feed.name,
                at=now,
                status=result.status,
                etag=result.validators.etag,
                last_modified=result.validators.last_modified,
                url=result.permanent_redirect,
                next_poll_at=next_poll(feed, now, floor=server_floor(result, state)),
                not_before=None,
                seen=plan.seen,
                seen_again=plan.seen_again,
                hits=plan.hits,
                alerts=plan.alerts,
                body_hash=body_hash,
                rules_fingerprint=self.fingerprint,
                ttl=parsed.ttl,
                story_members=plan.story_members,
                followups=plan.followups,
                problem=parsed.problem,
                lease=lease,
                recent=[recent_item(k.key, k.item, now) for k in keyed if k.key in new],
            )

        def decide() -> Plan:
            return plan_poll(
                feed=feed,
                items=keyed,
                now=now,
                first_poll=state.first_polled_at is None,
                seen=self.store.seen_lookup(keys),
                hits=self.store.hits_lookup(keys),
                ruleset=self.ruleset,
                rule_channels=self.rule_channels,
                match_seen=reread,
                stories=self.stories,
                policies=self.policies,
                story_info=self.store.stories_info,
            )

        abandoned = threading.Event()
        try:
            plan = await off_loop(self._decide_and_record, decide, record, dry_run, abandoned)
        except asyncio.CancelledError:
            abandoned.set()  # the thread records nothing unless it already began to
            raise
        except StaleLeaseError as e:
            bound.warning("poll_discarded", reason=str(e))
            return FeedOutcome(feed.name, "skipped", error="lease lost"), []
        if not dry_run:
            for _, rule in plan.hits:
                metrics.HITS.labels(rule).inc()
            for sm, _ in plan.joined:
                metrics.SUPPRESSED.labels(sm.rule).inc()
        for sm, like in plan.joined:
            bound.info(
                "item_joined_story",
                rule=sm.rule,
                title=sm.title,
                story=like,
                similarity=round(sm.similarity or 0.0, 2),
                reason=sm.reason,
            )
        for m in plan.messages:
            if m.followup:
                bound.info("story_update_queued", rule=m.rule, title=m.title, also=list(m.also))
                continue
            bound.info(
                "item_matched", rule=m.rule, title=m.title, link=m.link, matched=list(m.matched)
            )
        elapsed = (self.clock() - started).total_seconds()
        bound.info(
            "feed_fetched",
            status="ok",
            items=len(items),
            new=len(plan.seen),
            alerts=len(plan.alerts),
            degraded=parsed.problem,
            seconds=round(elapsed, 3),
        )
        return (
            FeedOutcome(feed.name, "ok", len(items), len(plan.seen), len(plan.alerts)),
            [(a.key, m) for a, m in zip(plan.alerts, plan.messages, strict=True)],
        )

    async def _failed(
        self,
        feed: Feed,
        state: FeedState,
        now: datetime,
        reason: str,
        result: FetchFailed | None,
        dry_run: bool,
        bound: Any,
        *,
        lease: int | None = None,
    ) -> FeedOutcome:
        failures = state.failures + 1
        backoff = backoff_after(feed, failures)
        not_before = None
        if result is not None and result.retry_after is not None:
            not_before = now + min(result.retry_after, MAX_RETRY_AFTER)
        nxt = max(now + backoff, not_before or now)
        status = result.status if result is not None else None
        gone = bool(result is not None and result.gone)
        if not dry_run:
            try:
                failures = await off_loop(
                    self.store.record_failure,
                    feed.name,
                    now,
                    status=status,
                    error=reason,
                    next_poll_at=nxt,
                    not_before=not_before if not_before else now + backoff,
                    backoff=backoff,
                    gone=gone,
                    lease=lease,
                )
            except StaleLeaseError as e:
                bound.warning("poll_discarded", reason=str(e))
                return FeedOutcome(feed.name, "skipped", error="lease lost")
        bound.warning(
            "feed_failed",
            status="failed",
            reason=reason,
            http_status=status,
            failures=failures,
            retry_at=nxt.isoformat(),
            disabled=gone or None,
        )
        return FeedOutcome(feed.name, "failed", error=reason)

    async def guarded_poll(
        self, fetcher: Fetcher, feed: Feed, *, dry_run: bool, lease: int | None = None
    ) -> tuple[FeedOutcome, list[tuple[str, AlertMessage]]]:
        """One bad feed never stops a cycle; an unexpected error is logged with its traceback."""
        started = time.monotonic()
        try:
            result = await self.poll_feed(fetcher, feed, dry_run=dry_run, lease=lease)
        except asyncio.CancelledError:
            if lease is not None:  # cancelled before its record: the feed is free again now
                await asyncio.shield(off_loop(self.store.release_feed, feed.name, lease))
            raise
        except Exception as e:
            log.critical("feed_crashed", feed=feed.name, error=repr(e), exc_info=True)
            state = await off_loop(self.store.feed_state, feed.name)
            if state is not None and not dry_run:
                now = self.clock()
                bound = log.bind(feed=feed.name)
                await self._failed(
                    feed, state, now, f"internal error: {e!r}", None, dry_run, bound, lease=lease
                )
            result = FeedOutcome(feed.name, "failed", error=repr(e)), []
        if not dry_run:
            await off_loop(self.update_health, feed)
            outcome = result[0]
            metrics.POLLS.labels(outcome.status).inc()
            metrics.ITEMS.inc(outcome.items)
            metrics.POLL_SECONDS.observe(time.monotonic() - started)
        return result

    def update_health(self, feed: Feed) -> None:
        """Tell the operator (``ops:`` channel) when a feed's health changes; log it either way."""
        state = self.store.feed_state(feed.name)
        if state is None:
            return
        now = self.clock()
        health = assess(feed, state, now, self.config.defaults.failure_threshold)
        payload = notice(feed, health, state.notice, now)
        if payload is None:
            return
        new_notice = health.status if health.problem else None
        alert = None
        if self.config.ops is not None:
            key = f"notice:{feed.name}:{health.status}:{now.timestamp():.0f}"
            alert = NewAlert(key, "ops", (self.config.ops,), payload)
        self.store.record_notice(feed.name, new_notice, alert, now)
        log.warning(
            "feed_health_changed",
            feed=feed.name,
            health=health.status,
            reason=health.reason or None,
            notified=self.config.ops,
        )
