"""YAML configuration and watchlists -> validated, typed, immutable config.

pydantic validates at this boundary only; the rest of the program sees frozen models. Every error
carries ``file:line:col``: the YAML is composed into nodes first so each value keeps its position,
and pydantic's error locations are mapped back to those positions.

YAML traps handled here (see the project style guide): safe loading only; duplicate keys are errors
instead of silently overwriting; only ``true``/``false`` are booleans (YAML 1.1 turns ``NO`` — the
country code of Norway — into False); ``${VAR}`` expands from the environment and an unset variable
is an error, never an empty string.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from time import sleep
from typing import Annotated, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.dedup.similarity import DEFAULT_THRESHOLD
from monitor.errors import ConfigError, ConfigErrors

DEFAULT_CONFIG_LOCATIONS = ("config/monitor.yaml", "/etc/news-monitor/monitor.yaml")
STATE_FILE_NAME = "news-monitor.db"

# --------------------------------------------------------------------------------------------
# Durations and sizes: "90s", "10m", "2h", "1d", "1w", "1h30m", or a bare number of seconds.

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}


def parse_duration(value: object) -> timedelta:
    """Parse ``90s``, ``10m``, ``2h``, ``1d``, ``1h30m`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 10m, 2h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 90s, 10m, 2h or 1d")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    last_unit = float("inf")
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        unit = _DURATION_UNITS[m.group(2)]
        if unit >= last_unit:
            # "1h1h" or "30m1h" is a typo, not a duration: units once each, largest first.
            raise ValueError(
                f"invalid duration {value!r}: each unit at most once, largest first (1h30m)"
            )
        last_unit = unit
        total += float(m.group(1)) * unit
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 90s, 10m, 2h, 1d or 1h30m")
    return _bounded(total)


MAX_DURATION = timedelta(days=3650)


def _fmt(d: timedelta) -> str:
    """A duration as a user writes it: 48h, 30d, 90s."""
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


format_duration = _fmt


def _bounded(seconds: float) -> timedelta:
    # Beyond ten years nothing is meaningful, and date arithmetic would overflow at run time.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError("a duration may be at most 3650d")
    return timedelta(seconds=seconds)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(value: object) -> int:
    """Parse ``10MiB``, ``500KB`` or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    raise ValueError(f"invalid size {value!r}: expected e.g. 10MiB, 500KB or a number of bytes")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


# --------------------------------------------------------------------------------------------
# The config model. Key names are a contract with users: document every key in the README.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _at_least(minimum: timedelta, why: str = "") -> Any:
    """A field validator: the duration is at least ``minimum`` (the message says the range)."""

    def check(v: timedelta | None) -> timedelta | None:
        if v is not None and v < minimum:
            raise ValueError(f"must be at least {_fmt(minimum)}{why} (got {_fmt(v)})")
        return v

    return check


_MIN_INTERVAL = timedelta(seconds=10)
_MIN_MAX_AGE = timedelta(minutes=1)
_MIN_STALE = timedelta(minutes=1)
# Google News throttles, then blocks, clients that poll searches more often than this.
MIN_GOOGLE_NEWS_INTERVAL = timedelta(minutes=1)


class Defaults(_Model):
    interval: Duration = timedelta(minutes=10)
    max_age: Duration = timedelta(days=2)
    retention: Duration = timedelta(days=30)
    notify: tuple[Name, ...] = ()
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    stale_after: Duration = timedelta(days=2)

    _interval = field_validator("interval")(_at_least(_MIN_INTERVAL))
    _max_age = field_validator("max_age")(_at_least(_MIN_MAX_AGE, ", or nothing could ever alert"))
    _stale = field_validator("stale_after")(_at_least(_MIN_STALE))

    @model_validator(mode="after")
    def _retention_outlives_max_age(self) -> Defaults:
        if self.retention <= self.max_age:
            raise ValueError(
                "retention must be longer than max_age, or old items would alert again"
            )
        return self


class FetchSettings(_Model):
    timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 10 * 1024 * 1024

    @field_validator("max_bytes")
    @classmethod
    def _within_parser_cap(cls, v: int) -> int:
        from monitor.parse import MAX_BODY_BYTES

        if not 1024 <= v <= MAX_BODY_BYTES:
            raise ValueError(
                f"must be between 1KiB and {MAX_BODY_BYTES // 2**20}MiB, the most the parser "
                f"reads (got {v} bytes)"
            )
        return v

    max_redirects: int = Field(default=5, ge=0, le=20, strict=True)
    concurrency: int = Field(default=20, ge=1, le=1000)
    per_host: int = Field(default=4, ge=1, le=100)
    allow_private: StrictBool | tuple[str, ...] = False
    user_agent: str | None = None
    trust_env: StrictBool = False  # proxies from the environment, ~/.netrc


class FeedConfig(_Model):
    name: Name
    url: str | None = None
    google_news: str | None = None
    lang: str = "en-US"
    country: str = "US"
    when: str | None = Field(default=None, pattern=r"^\d+[hdmy]$")
    interval: Duration | None = None
    max_age: Duration | None = None
    stale_after: Duration | None = None
    enabled: StrictBool = True
    allow_private: StrictBool | tuple[str, ...] | None = None

    _interval = field_validator("interval")(_at_least(_MIN_INTERVAL))
    _max_age = field_validator("max_age")(_at_least(_MIN_MAX_AGE, ", or nothing could ever alert"))
    _stale = field_validator("stale_after")(_at_least(_MIN_STALE))

    @model_validator(mode="after")
    def _one_source(self) -> FeedConfig:
        if (self.url is None) == (self.google_news is None):
            raise ValueError("a feed needs exactly one of 'url' or 'google_news'")
        if self.google_news is not None and not self.google_news.strip():
            raise ValueError("google_news needs a search query")
        if self.url is not None and not self.url.strip():
            raise ValueError("url is empty")
        return self


OnRepeat = Literal["suppress", "update", "alert"]
# How alike two headlines must be to tell one story (see monitor/dedup/similarity.py).
Similarity = Annotated[float, Field(ge=0.5, le=1.0)]


class DedupSettings(_Model):
    """Story dedup: how a hit that repeats a story already alerted for its rule is handled."""

    window: Duration = timedelta(hours=48)
    on_repeat: OnRepeat = "suppress"
    update_every: Duration = timedelta(hours=6)
    similarity: Similarity = DEFAULT_THRESHOLD

    @model_validator(mode="after")
    def _sane(self) -> DedupSettings:
        _check_dedup(self.window, self.update_every)
        return self


class DedupOverride(_Model):
    """A rule's own ``dedup:``; what it leaves out comes from the top-level ``dedup:``."""

    window: Duration | None = None
    on_repeat: OnRepeat | None = None
    update_every: Duration | None = None
    similarity: Similarity | None = None

    @model_validator(mode="after")
    def _sane(self) -> DedupOverride:
        _check_dedup(self.window, self.update_every)
        return self

    def over(self, base: DedupSettings) -> DedupSettings:
        return base.model_copy(update=self.model_dump(exclude_none=True))


def _check_dedup(window: timedelta | None, update_every: timedelta | None) -> None:
    if window is not None and window < timedelta(minutes=1):
        raise ValueError("window must be at least 1m (to turn story dedup off: on_repeat: alert)")
    if update_every is not None and update_every < timedelta(minutes=1):
        raise ValueError("update_every must be at least 1m")


# --------------------------------------------------------------------------------------------
# Delivery: when a channel's (or a rule's) alerts go out, quiet hours, rate limits, retries.

_CLOCK_TIME = r"([01]\d|2[0-3]):[0-5]\d"


class DeliverSpec(_Model):
    """``deliver:``: ``immediate``, ``{every: 1h}`` or ``{daily: "08:00"}``."""

    every: Duration | None = None
    daily: str | None = None

    @field_validator("daily")
    @classmethod
    def _clock(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(_CLOCK_TIME, v):
            raise ValueError(f"expected a time of day HH:MM, e.g. 08:00 (got {v!r})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _words(cls, v: object) -> object:
        if v == "immediate":
            return {}
        if isinstance(v, str):
            raise ValueError('expected immediate, {every: 1h} or {daily: "08:00"}')
        return v

    @field_validator("every")
    @classmethod
    def _at_least_a_minute(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and not timedelta(minutes=1) <= v <= timedelta(days=7):
            raise ValueError(f"must be between 1m and 7d (got {_fmt(v)})")
        return v

    @model_validator(mode="after")
    def _one(self) -> DeliverSpec:
        if self.every is not None and self.daily is not None:
            raise ValueError("deliver takes one of every: or daily:, not both")
        return self


class RetrySettings(_Model):
    """A failing channel's retries: ``first`` doubling to ``max``, jittered, for ``lifetime``."""

    first: Duration = timedelta(seconds=30)
    max: Duration = timedelta(minutes=15)
    jitter: float = Field(default=0.2, ge=0.0, le=0.5)
    lifetime: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _ordered(self) -> RetrySettings:
        if self.first < timedelta(seconds=1):
            raise ValueError("retry.first must be at least 1s")
        if self.max < self.first:
            raise ValueError("retry.max must be at least retry.first")
        if self.lifetime < self.first:
            raise ValueError("retry.lifetime must be at least retry.first")
        return self


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_PERIODS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


class ChannelConfig(_Model):
    """A channel written as a mapping: its URLs and how its alerts are delivered."""

    urls: tuple[str, ...]
    timezone: str | None = None
    deliver: DeliverSpec = DeliverSpec()
    quiet_hours: str | None = None
    rate_limit: str | None = None
    burst: int = Field(default=5, ge=1, le=1000)
    retry: RetrySettings = RetrySettings()
    timeout: Duration = timedelta(seconds=30)

    _norm_urls = field_validator("urls", mode="before")(_one_or_many)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else _known_zone(v)

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(f"{_CLOCK_TIME}-{_CLOCK_TIME}", v):
            raise ValueError(f"expected HH:MM-HH:MM, e.g. 22:00-06:00 (got {v!r})")
        return v

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            m = _RATE.match(v)
            if m is None or int(m.group(1)) < 1:
                raise ValueError(f"invalid rate_limit {v!r}: expected e.g. 20/min, 100/h or 1/s")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(minutes=5):
            raise ValueError("timeout must be between 1s and 5m")
        return v


class MetricsSettings(_Model):
    """``metrics:``: the local listener for Prometheus ``/metrics`` and ``/healthz``."""

    listen: str = "127.0.0.1:9464"

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, v: object) -> object:
        return {} if v is True else v

    @field_validator("listen")
    @classmethod
    def _loopback(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, e.g. 127.0.0.1:9464 (got {v!r})")
        # Beyond loopback only with a token: checked with ``web.token_file`` (_check_listener).
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
MIN_TOKEN_CHARS = 16


class WebSettings(_Model):
    """``web:``: the web view on the ``metrics:`` listener, and the recent items it searches."""

    token_file: str | None = None  # a bearer token every request must carry
    keep_items: Duration = timedelta(days=7)  # how long items are kept for /preview, backtest
    max_items: int = Field(default=200_000, ge=1000, le=5_000_000)

    @field_validator("keep_items")
    @classmethod
    def _keep(cls, v: timedelta) -> timedelta:
        if not timedelta(hours=1) <= v <= timedelta(days=90):
            raise ValueError(f"must be between 1h and 90d (got {_fmt(v)})")
        return v


class DeliverySettings(_Model):
    shutdown_grace: Duration = timedelta(seconds=10)

    @field_validator("shutdown_grace")
    @classmethod
    def _grace(cls, v: timedelta) -> timedelta:
        # The unit's TimeoutStopSec is 30 s: the grace must end well before systemd kills.
        if v > timedelta(seconds=25):
            raise ValueError("shutdown_grace must be at most 25s (the unit stops after 30s)")
        return v


def _known_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(
            f"unknown time zone {v!r} (expected an IANA name such as Asia/Makassar)"
        ) from e
    return v


class Examples(_Model):
    match: tuple[str, ...] = ()
    no_match: tuple[str, ...] = ()


class RuleConfig(_Model):
    name: Name
    query: str
    notify: tuple[Name, ...] = ()
    enabled: StrictBool = True
    examples: Examples = Examples()
    dedup: DedupOverride = DedupOverride()
    deliver: DeliverSpec | None = None
    urgent: StrictBool = False

    _norm_notify = field_validator("notify", mode="before")(_one_or_many)


class WatchlistFile(_Model):
    aliases: dict[str, tuple[str, ...]] = {}
    rules: tuple[RuleConfig, ...] = ()

    _norm_aliases = field_validator("aliases", mode="before")(
        lambda v: {k: _one_or_many(x) for k, x in v.items()} if isinstance(v, dict) else v
    )


class StateSettings(_Model):
    """``state: {url: postgresql://…, password_file: …}``: a shared state, its password kept
    out of the config (a file only the service can read, e.g. a systemd credential)."""

    url: str
    password_file: str | None = None


class MonitorFile(_Model):
    state: str | StateSettings | None = None
    timezone: str = "UTC"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    defaults: Defaults = Defaults()
    fetch: FetchSettings = FetchSettings()
    dedup: DedupSettings = DedupSettings()
    delivery: DeliverySettings = DeliverySettings()
    templates: str | None = None  # a directory of email templates over the packaged ones
    metrics: MetricsSettings | None = None
    web: WebSettings = WebSettings()
    channels: dict[Name, ChannelConfig] = {}
    ops: Name | None = None
    feeds: tuple[FeedConfig, ...] = ()
    watchlists: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = {}
    rules: tuple[RuleConfig, ...] = ()

    # A channel is one URL, a list of them, or a mapping with ``urls:``: all become mappings.
    _norm_channels = field_validator("channels", mode="before")(
        lambda v: (
            {k: x if isinstance(x, dict) else {"urls": _one_or_many(x)} for k, x in v.items()}
            if isinstance(v, dict)
            else v
        )
    )
    _norm_aliases = WatchlistFile._norm_aliases
    _norm_watchlists = field_validator("watchlists", mode="before")(_one_or_many)

    _known_zone = field_validator("timezone")(lambda v: _known_zone(v))


# --------------------------------------------------------------------------------------------
# The resolved config the program runs on.


@dataclass(frozen=True)
class Position:
    file: str
    line: int
    col: int

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line, col=self.col)


@dataclass(frozen=True)
class Feed:
    name: str
    url: str  # http(s) URL, or an absolute local path
    interval: timedelta
    max_age: timedelta
    enabled: bool
    allow_private: bool | frozenset[str]
    stale_after: timedelta = timedelta(days=2)  # no new item for this long: the feed is stale


@dataclass(frozen=True)
class Schedule:
    """When alerts go out: at once, as a digest every ``every``, or daily at ``at``."""

    kind: Literal["immediate", "every", "daily"] = "immediate"
    every: timedelta | None = None
    at: time | None = None

    @property
    def immediate(self) -> bool:
        return self.kind == "immediate"

    def describe(self) -> str:
        if self.kind == "every" and self.every is not None:
            return f"every {_fmt(self.every)}"
        if self.kind == "daily" and self.at is not None:
            return f"daily at {self.at:%H:%M}"
        return "immediate"


IMMEDIATE = Schedule()


@dataclass(frozen=True)
class ChannelPolicy:
    """A channel's delivery settings, resolved (time zone, schedule, limits, retries)."""

    timezone: ZoneInfo
    schedule: Schedule = IMMEDIATE
    quiet: tuple[time, time] | None = None  # start, end (the window may cross midnight)
    rate: tuple[int, timedelta] | None = None  # at most N messages per period
    burst: int = 5  # more alerts than this due at once go out as one digest
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeout: timedelta = timedelta(seconds=30)


def _schedule(spec: DeliverSpec) -> Schedule:
    if spec.every is not None:
        return Schedule("every", every=spec.every)
    if spec.daily is not None:
        return Schedule("daily", at=time.fromisoformat(spec.daily))
    return IMMEDIATE


def _policy(value: ChannelConfig, tz: ZoneInfo) -> ChannelPolicy:
    quiet = None
    if value.quiet_hours:
        start, end = value.quiet_hours.split("-")
        quiet = (time.fromisoformat(start), time.fromisoformat(end))
    rate = None
    if value.rate_limit and (m := _RATE.match(value.rate_limit)):
        rate = (int(m.group(1)), timedelta(seconds=_RATE_PERIODS[m.group(2)]))
    return ChannelPolicy(
        timezone=ZoneInfo(value.timezone) if value.timezone else tz,
        schedule=_schedule(value.deliver),
        quiet=quiet,
        rate=rate,
        burst=value.burst,
        retry=value.retry,
        timeout=value.timeout,
    )


@dataclass(frozen=True)
class Rule:
    name: str
    query: str
    notify: tuple[str, ...]
    enabled: bool
    examples: Examples
    position: Position  # where the query stands, for errors found after loading
    # The top-level dedup: with the rule's own over it.
    dedup: DedupSettings = field(default_factory=DedupSettings)
    schedule: Schedule | None = None  # its own deliver:, over its channels'
    urgent: bool = False  # bypasses quiet hours, digests and rate limits


@dataclass(frozen=True)
class Web:
    """``web:`` resolved: the token read from ``token_file`` (None: no token asked)."""

    token: str | None = field(default=None, repr=False)
    keep_items: timedelta = timedelta(days=7)
    max_items: int = 200_000


@dataclass(frozen=True)
class Config:
    path: Path
    state_path: Path  # the SQLite file (also when unused: ``state_url`` wins)
    timezone: ZoneInfo
    log_level: str
    defaults: Defaults
    fetch: FetchSettings
    channels: Mapping[str, tuple[str, ...]]
    ops: str | None  # channel for operator notices (a feed failing, silent, recovered)
    feeds: tuple[Feed, ...]
    rules: tuple[Rule, ...]
    aliases: Mapping[str, tuple[str, ...]]
    watchlist_files: tuple[Path, ...]
    dedup: DedupSettings = field(default_factory=DedupSettings)  # the top-level dedup:
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    policies: Mapping[str, ChannelPolicy] = field(default_factory=dict)  # per channel
    templates: Path | None = None  # email template overrides, checked while loading
    metrics: MetricsSettings | None = None  # the /metrics and /healthz listener, if on
    web: Web = field(default_factory=Web)  # the web view on that listener
    # Values that came from ${VAR}: the logger scrubs them from every event.
    secrets: frozenset[str] = field(default=frozenset())
    state_url: str | None = None  # a postgresql:// state shared by several daemons
    state_password: str | None = field(default=None, repr=False)
    # The enabled rules, compiled once while loading (a RuleSet; compiling is the slow part).
    ruleset: Any = field(default=None, compare=False, repr=False)

    def enabled_feeds(self) -> tuple[Feed, ...]:
        return tuple(f for f in self.feeds if f.enabled)

    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


# --------------------------------------------------------------------------------------------
# YAML with positions.


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false (any case) are booleans."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

Path_ = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Doc:
    """A YAML document turned into plain data, remembering where each value and key stood."""

    def __init__(self, file: str, text: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.values: dict[Path_, Position] = {}
        self.keys: dict[Path_, Position] = {}
        self.secrets: set[str] = set()
        self.errors: list[ConfigError] = []
        self._loader = _Loader(text)
        try:
            node = self._loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
            problem = e.problem or e.context or "invalid YAML"
            raise ConfigError(f"invalid YAML: {problem}", file=file, line=line, col=col) from e
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid YAML: {e}", file=file) from e
        try:
            self.data = {} if node is None else self._build(node, ())
        except yaml.MarkedYAMLError as e:  # e.g. a timestamp or number that does not construct
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
            raise ConfigError(f"invalid YAML: {e.problem}", file=file, line=line, col=col) from e
        finally:
            self._loader.dispose()

    def _pos(self, node: yaml.Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _build(self, node: yaml.Node, path: Path_) -> Any:
        self.values[path] = self._pos(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    self.errors.append(
                        self._pos(knode).error("YAML merge keys (<<) are not supported")
                    )
                    continue
                key = self._build(knode, (*path, "<key>"))
                if not isinstance(key, str | int):
                    self.errors.append(self._pos(knode).error("keys must be plain strings"))
                    continue
                key = str(key)
                if key in out:
                    self.errors.append(self._pos(knode).error(f"duplicate key {key!r}"))
                    continue
                self.keys[(*path, key)] = self._pos(knode)
                out[key] = self._build(vnode, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(v, (*path, i)) for i, v in enumerate(node.value)]
        value = self._loader.construct_object(node, deep=True)
        if isinstance(value, str):
            return self._expand(value, node)
        return value

    def _expand(self, value: str, node: yaml.Node) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.env:
                self.errors.append(
                    self._pos(node).error(
                        f"environment variable {name} is not set (used as ${{{name}}})"
                    )
                )
                return ""
            secret = self.env[name]
            if len(secret) >= 4:
                self.secrets.add(secret)
            return secret

        return _ENV.sub(sub, value)

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> Position:
        """The position of a value (or of its key) at ``loc``, else of its nearest ancestor."""
        path: Path_ = tuple(loc)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Position(self.file, 1, 1))

    def validate(self, model: type[_M]) -> _M:
        """Validate the data with ``model``; map pydantic's error locations to file:line:col."""
        try:
            return model.model_validate(self.data)
        except ValidationError as e:
            errors = []
            for err in e.errors():
                loc = [
                    p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
                ]
                # Union members appear as extra loc entries ("bool", "tuple[...]"): drop them.
                loc = _strip_type_tags(loc, self)
                if err["type"] == "extra_forbidden":
                    msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
                    errors.append(self.position(loc, key=True).error(msg))
                    continue
                msg = err["msg"]
                msg = msg.removeprefix("Value error, ")
                where = ".".join(str(p) for p in loc)
                if err["type"] == "missing":
                    msg = f"missing required key {loc[-1]!r}"
                    loc = loc[:-1]
                elif where:
                    msg = f"{where}: {msg}"
                errors.append(self.position(loc).error(msg))
            raise ConfigErrors(_dedupe(errors)) from e


def _strip_type_tags(loc: list[str | int], doc: _Doc) -> list[str | int]:
    """Drop the union-member names pydantic adds to error locations ("bool", "tuple[str, ...]")."""
    out: list[str | int] = []
    for p in loc:
        known = (*out, p) in doc.values or (*out, p) in doc.keys
        union_tag = isinstance(p, str) and (p in {"bool", "str", "int", "float"} or "[" in p)
        if union_tag and not known:
            continue
        out.append(p)
    return out


def _dedupe(errors: list[ConfigError]) -> list[ConfigError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out


# --------------------------------------------------------------------------------------------
# Loading.


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """``-c`` wins, then ``$NEWS_MONITOR_CONFIG``, then ./config/monitor.yaml, then /etc."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("NEWS_MONITOR_CONFIG"):
        return Path(env["NEWS_MONITOR_CONFIG"])
    for candidate in DEFAULT_CONFIG_LOCATIONS:
        if Path(candidate).is_file():
            return Path(candidate)
    return Path(DEFAULT_CONFIG_LOCATIONS[0])


# A config or watchlist is hand-written: past this it is a mistake (a log pasted in, a wrong
# file), and PyYAML would take minutes to compose it.
MAX_CONFIG_BYTES = 1024 * 1024


def _read(path: Path) -> str:
    """The file's text, read whole while it stays the same.

    A file being saved in place (truncated, then written) can be read empty or half written; a
    reload triggered by the first change event would then apply no rules, or the first lines of
    a watchlist. So the size and modification time must be the same before and after the read,
    and match what was read, and an empty file must stay empty for 0.4 s; a file still changing
    after a few tries is an error (the old config stays, and the end of the save triggers
    another reload).
    """
    try:
        for attempt in range(5):
            before = path.stat()
            if before.st_size > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"file too large ({before.st_size // 1024} KiB; a config or watchlist may be "
                    f"at most {MAX_CONFIG_BYTES // 1024} KiB)",
                    file=str(path),
                )
            with path.open("rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
            after = path.stat()
            same = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
            # An empty file is most often one truncated by a save whose write has not landed:
            # it is taken as empty only when it stays so.
            if same and len(data) == after.st_size and (data or attempt == 4):
                return data.decode("utf-8")
            if attempt < 4:
                sleep(0.1)
        raise ConfigError(
            "the file kept changing while it was read (a save in progress?)",
            file=str(path),
            line=1,
            col=1,
        )
    except FileNotFoundError as e:
        raise ConfigError("file not found", file=str(path)) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text: {e.reason}", file=str(path)) from e
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(path)) from e


def _allow(value: bool | tuple[str, ...] | None) -> bool | frozenset[str] | None:
    if value is None or isinstance(value, bool):
        return value
    return frozenset(value)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load and fully validate the config and every watchlist it names.

    Raises ConfigErrors listing every problem found (each with file:line:col), so one `check`
    run shows them all. Rule queries are parsed and rule examples checked here too, so a config
    that loads is a config that runs. The steps below each check one part and add to
    ``load.errors``; nothing is built from a part that failed.
    """
    env = dict(os.environ if env is None else env)
    path = Path(path)
    doc = _Doc(str(path), _read(path), env)
    if doc.errors:
        raise ConfigErrors(doc.errors)
    if not isinstance(doc.data, dict):
        raise ConfigError("the config must be a mapping of keys", file=str(path), line=1, col=1)
    load = _Load(doc, doc.validate(MonitorFile), path.parent, env)
    _check_channels(load)
    web = _web(load)
    templates = _templates(load)
    feeds = _feeds(load)
    _add_aliases(load, doc, load.main.aliases)
    sources: list[_RuleSource] = [(doc, ["rules", i], r) for i, r in enumerate(load.main.rules)]
    sources += _watchlists(load)
    rules = _rules(load, sources)
    _check_references(load)
    state_url, state_password = _shared_state(load)
    if load.errors:
        raise ConfigErrors(_dedupe(load.errors))
    main = load.main
    config = Config(
        path=path,
        state_path=_state_path(None if state_url else main.state, load.base, env),
        state_url=state_url,
        state_password=state_password,
        timezone=ZoneInfo(main.timezone),
        log_level=main.log_level,
        defaults=main.defaults,
        fetch=main.fetch,
        dedup=main.dedup,
        delivery=main.delivery,
        channels={n: _urls(v) for n, v in main.channels.items()},
        policies={n: _policy(v, ZoneInfo(main.timezone)) for n, v in main.channels.items()},
        templates=templates,
        metrics=main.metrics,
        web=web,
        ops=main.ops,
        feeds=tuple(feeds),
        rules=tuple(rules),
        aliases=load.aliases,
        watchlist_files=tuple(load.watchlist_files),
        secrets=frozenset(load.secrets),
    )
    ruleset = compile_rules(config, check_examples=True)
    return dataclasses.replace(config, ruleset=ruleset)


@dataclass
class _Load:
    """One load in progress: the main file, what the steps found, and every error so far."""

    doc: _Doc
    main: MonitorFile
    base: Path
    env: Mapping[str, str]
    errors: list[ConfigError] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    alias_pos: dict[str, Position] = field(default_factory=dict)
    watchlist_files: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secrets |= self.doc.secrets


_RuleSource = tuple[_Doc, list[str | int], RuleConfig]


def _urls(value: ChannelConfig) -> tuple[str, ...]:
    return value.urls


def _check_channels(load: _Load) -> None:
    """Every channel has a URL, and every URL is one apprise understands."""
    from monitor import notify

    doc = load.doc
    for cname, value in load.main.channels.items():
        urls = _urls(value)
        where: list[str | int] = ["channels", cname]
        if ("channels", cname, "urls") in doc.values:  # written as a mapping
            where.append("urls")
        if not urls:
            load.errors.append(doc.position(where).error(f"channel {cname!r} has no URL"))
        for i, apprise_url in enumerate(urls):
            with _quiet_apprise():
                problem = notify.validate_url(apprise_url)
            if problem:
                load.errors.append(doc.position([*where, i]).error(f"channel {cname!r}: {problem}"))


def _web(load: _Load) -> Web:
    """``web:`` with its token read; a listener beyond loopback only with a token.

    The web view shows what the watchlists caught and the feeds' errors, and ``/metrics`` the
    feed names: published on a network, all of it needs a token (compared in constant time).
    """
    settings = load.main.web
    token = None
    if settings.token_file is not None:
        path = Path(settings.token_file).expanduser()
        path = path if path.is_absolute() else load.base / path
        where = load.doc.position(["web", "token_file"])
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            load.errors.append(where.error(f"web.token_file: cannot read {str(path)!r}: {reason}"))
        else:
            if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
                load.errors.append(
                    where.error(
                        f"web.token_file: the token must be at least {MIN_TOKEN_CHARS} "
                        "characters without spaces (e.g. `openssl rand -hex 32`)"
                    )
                )
                token = None
            else:
                load.secrets.add(token)
    metrics = load.main.metrics
    if metrics is not None and not metrics.loopback and settings.token_file is None:
        load.errors.append(
            load.doc.position(["metrics", "listen"]).error(
                f"must listen on loopback (127.0.0.1, ::1 or localhost), not {metrics.host!r}, "
                "unless web.token_file is set"
            )
        )
    return Web(token=token, keep_items=settings.keep_items, max_items=settings.max_items)


def _templates(load: _Load) -> Path | None:
    """The email template directory, each override parsed and tried on a sample alert."""
    if load.main.templates is None:
        return None
    from monitor.notify import load_template_dir

    path = Path(load.main.templates).expanduser()
    path = path if path.is_absolute() else (load.base / path).resolve()
    try:
        load_template_dir(path)
    except ConfigError as e:
        if e.file == str(path):  # the directory itself: point at the key
            load.errors.append(load.doc.position(["templates"]).error(f"templates: {e}"))
        else:
            load.errors.append(e)
        return None
    return path


def _feeds(load: _Load) -> list[Feed]:
    """The feeds, with defaults applied: unique names, usable URLs, max_age within retention."""
    from monitor.parse import google_news_url

    doc, main = load.doc, load.main
    feeds: list[Feed] = []
    names: set[str] = set()
    for i, fc in enumerate(main.feeds):
        if fc.name in names:
            load.errors.append(
                doc.position(["feeds", i, "name"]).error(f"duplicate feed name {fc.name!r}")
            )
        names.add(fc.name)
        url: str | None
        if fc.google_news is not None:
            url = google_news_url(fc.google_news, lang=fc.lang, country=fc.country, when=fc.when)
        else:
            url = _feed_url(cast(str, fc.url), load.base)
            if url is None:
                load.errors.append(
                    doc.position(["feeds", i, "url"]).error(
                        "url must be http(s)://… or a local file path"
                    )
                )
                continue
        allow = _allow(fc.allow_private)
        feeds.append(
            Feed(
                name=fc.name,
                url=url,
                interval=fc.interval or main.defaults.interval,
                max_age=fc.max_age or main.defaults.max_age,
                enabled=fc.enabled,
                allow_private=_allow(main.fetch.allow_private) if allow is None else allow,  # type: ignore[arg-type]
                stale_after=fc.stale_after or main.defaults.stale_after,
            )
        )
        if fc.google_news is not None and feeds[-1].interval < MIN_GOOGLE_NEWS_INTERVAL:
            own = fc.interval is not None
            where: list[str | int] = ["feeds", i, "interval"] if own else ["defaults", "interval"]
            load.errors.append(
                doc.position(where).error(
                    f"feed {fc.name!r}: a Google News feed's interval must be at least "
                    f"{_fmt(MIN_GOOGLE_NEWS_INTERVAL)} (got {_fmt(feeds[-1].interval)})"
                )
            )
        if feeds[-1].max_age >= main.defaults.retention:
            load.errors.append(
                doc.position(["feeds", i, "max_age"]).error(
                    "max_age must be shorter than defaults.retention"
                )
            )
    return feeds


def _add_aliases(load: _Load, d: _Doc, table: Mapping[str, tuple[str, ...]]) -> None:
    """Aliases are shared by every query of every file: a name may be defined once."""
    for aname, values in table.items():
        pos = d.position(["aliases", aname], key=True)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", aname):
            load.errors.append(
                pos.error(f"alias name {aname!r} may only use letters, digits, _ and -")
            )
        elif aname in load.aliases and load.aliases[aname] != values:
            first = load.alias_pos[aname]
            load.errors.append(
                pos.error(f"alias {aname!r} is already defined at {first.file}:{first.line}")
            )
        else:
            load.aliases[aname] = values
            load.alias_pos[aname] = pos


def _watchlists(load: _Load) -> list[_RuleSource]:
    """Read every watchlist the config names; return their rules, with where each stands."""
    sources: list[_RuleSource] = []
    for i, pattern in enumerate(load.main.watchlists):
        full = pattern if os.path.isabs(pattern) else str(load.base / pattern)
        matches = sorted(glob.glob(full))
        if not matches and not glob.has_magic(pattern):
            load.errors.append(
                load.doc.position(["watchlists", i]).error(f"watchlist {pattern!r} not found")
            )
        for wpath in matches:
            wp = Path(wpath)
            if wp in load.watchlist_files:
                continue
            load.watchlist_files.append(wp)
            try:
                wdoc = _Doc(str(wp), _read(wp), load.env)
                if wdoc.errors:
                    raise ConfigErrors(wdoc.errors)
                if wdoc.data in ({}, None):
                    continue
                if not isinstance(wdoc.data, dict):
                    raise ConfigError(
                        "a watchlist must be a mapping with 'rules:'", file=str(wp), line=1, col=1
                    )
                wl = wdoc.validate(WatchlistFile)
            except ConfigErrors as e:
                load.errors.extend(e.errors)
                continue
            except ConfigError as e:
                load.errors.append(e)
                continue
            load.secrets |= wdoc.secrets
            _add_aliases(load, wdoc, wl.aliases)
            sources.extend((wdoc, ["rules", j], r) for j, r in enumerate(wl.rules))
    return sources


def _rules(load: _Load, sources: list[_RuleSource]) -> list[Rule]:
    """The rules of every file: unique names, known channels, dedup within retention."""
    main = load.main
    rules: list[Rule] = []
    rule_pos: dict[str, Position] = {}
    for d, loc, rc in sources:
        name_pos = d.position([*loc, "name"])
        if rc.name in rule_pos:
            first = rule_pos[rc.name]
            load.errors.append(
                name_pos.error(
                    f"duplicate rule name {rc.name!r} (first at {first.file}:{first.line})"
                )
            )
            continue
        rule_pos[rc.name] = name_pos
        notify_to = rc.notify or main.defaults.notify
        if not notify_to:
            load.errors.append(
                d.position(loc).error(
                    f"rule {rc.name!r} has no 'notify:' channels (and defaults.notify is empty)"
                )
            )
        for k, cname in enumerate(rc.notify):
            if cname not in main.channels:
                load.errors.append(
                    d.position([*loc, "notify", k]).error(
                        f"rule {rc.name!r}: unknown channel {cname!r}"
                        + (f" (known: {', '.join(sorted(main.channels))})" if main.channels else "")
                    )
                )
        dedup = _rule_dedup(load, d, loc, rc)
        rules.append(
            Rule(
                name=rc.name,
                query=rc.query,
                notify=notify_to,
                enabled=rc.enabled,
                examples=rc.examples,
                position=d.position([*loc, "query"]),
                dedup=dedup,
                schedule=None if rc.deliver is None else _schedule(rc.deliver),
                urgent=rc.urgent,
            )
        )
    return rules


def _rule_dedup(load: _Load, d: _Doc, loc: list[str | int], rc: RuleConfig) -> DedupSettings:
    """A rule's dedup settings: its own over the top-level ones; the window within retention."""
    main = load.main
    dedup = rc.dedup.over(main.dedup)
    if dedup.window > main.defaults.retention:
        own = rc.dedup.window is not None
        where = (
            d.position([*loc, "dedup", "window"]) if own else load.doc.position(["dedup", "window"])
        )
        load.errors.append(
            where.error(
                f"rule {rc.name!r}: dedup window {_fmt(dedup.window)} is longer than "
                f"defaults.retention ({_fmt(main.defaults.retention)}): stories would be "
                "forgotten while still in their window"
            )
        )
    return dedup


def _check_references(load: _Load) -> None:
    """Channels named outside rules (``ops``, ``defaults.notify``) exist."""
    doc, main = load.doc, load.main
    if main.ops is not None and main.ops not in main.channels:
        load.errors.append(doc.position(["ops"]).error(f"unknown channel {main.ops!r}"))
    for k, cname in enumerate(main.defaults.notify):
        if cname not in main.channels:
            load.errors.append(
                doc.position(["defaults", "notify", k]).error(f"unknown channel {cname!r}")
            )


@contextlib.contextmanager
def _quiet_apprise() -> Iterator[None]:
    """Silence apprise while it parses a URL: it logs a rejected URL whole, secrets included,
    and the logger cannot scrub ``${VAR}`` values before the config that names them is loaded.
    ``validate_url`` says what is wrong without the URL."""
    logger = logging.getLogger("apprise")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


def _feed_url(url: str, base: Path) -> str | None:
    if url.startswith(("http://", "https://")):
        return url
    if url.startswith("file://"):
        return url
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        return None
    p = Path(url).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _shared_state(load: _Load) -> tuple[str | None, str | None]:
    """A ``postgresql://`` state: its URL and the password read from ``password_file``."""
    from monitor.store import is_shared_url

    state = load.main.state
    if state is None or (isinstance(state, str) and not is_shared_url(state)):
        return None, None
    url = state if isinstance(state, str) else state.url
    where = ["state"] if isinstance(state, str) else ["state", "url"]
    if not is_shared_url(url):
        load.errors.append(
            load.doc.position(where).error("state: url must be postgresql://user@host/db")
        )
        return None, None
    password = urlsplit(url).password
    if password:
        load.secrets.add(password)
    if isinstance(state, StateSettings) and state.password_file is not None:
        pf = Path(state.password_file).expanduser()
        pf = pf if pf.is_absolute() else (load.base / pf).resolve()
        try:
            password = pf.read_text(encoding="utf-8").strip()
        except OSError as e:
            load.errors.append(
                load.doc.position(["state", "password_file"]).error(
                    f"state: cannot read password_file {str(pf)!r}: {e.strerror}"
                )
            )
            return None, None
        load.secrets.add(password)
    return url, password


def _state_path(state: str | StateSettings | None, base: Path, env: Mapping[str, str]) -> Path:
    if isinstance(state, StateSettings):
        state = None
    if state:
        p = Path(state).expanduser()
        return p if p.is_absolute() else (base / p).resolve()
    # Under systemd, StateDirectory= sets $STATE_DIRECTORY (possibly several, colon-separated).
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / STATE_FILE_NAME
    return Path("var").resolve() / STATE_FILE_NAME


def compile_rules(config: Config, *, check_examples: bool = False) -> Any:
    """Compile the enabled rules into one RuleSet; a bad query or failing example is a ConfigError.

    The query's error is reported after the position of the query in its file:
    ``watchlists/x.yaml:4:12: query:1:9: expected a term after AND``.
    """
    from monitor.rules import QueryError, RuleSet, parse_query

    errors: list[ConfigError] = []
    compiled = []
    for rule in config.rules:
        try:
            query = parse_query(rule.query, config.aliases)
        except QueryError as e:
            errors.append(rule.position.error(str(e)))
            continue
        if not rule.enabled:
            continue
        compiled.append((rule.name, query))
        if check_examples and (rule.examples.match or rule.examples.no_match):
            single = RuleSet([(rule.name, query)])
            for want, texts in ((True, rule.examples.match), (False, rule.examples.no_match)):
                for text in texts:
                    if bool(single.match({"title": text})) != want:
                        verb = "should match but does not" if want else "should not match but does"
                        errors.append(
                            rule.position.error(f"rule {rule.name!r}: example {verb}: {text!r}")
                        )
    if errors:
        raise ConfigErrors(errors)
    return RuleSet(compiled)
