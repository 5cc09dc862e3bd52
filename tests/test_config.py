"""Config loading: every key, and every error located at file:line:col."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import find_config, load_config, parse_duration, parse_size
from monitor.errors import ConfigError, ConfigErrors


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    e = info.value
    return [str(x) for x in (e.errors if isinstance(e, ConfigErrors) else [e])]


GOOD = """
timezone: Asia/Makassar
defaults: {interval: 5m, max_age: 2d, retention: 30d}
fetch: {timeout: 20s, max_bytes: 5MiB}
channels:
  chat: "json://127.0.0.1:9/notify"
  mail: ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]
feeds:
  - {name: local, url: data/feed.xml}
  - {name: web, url: "https://example.org/rss", interval: 1h, max_age: 1d}
  - {name: gn, google_news: '"Kim Jong Un" Putin', lang: id, country: ID}
  - {name: off, url: "https://example.org/off", enabled: false}
watchlists: ["watchlists/*.yaml"]
"""

WATCHLIST = """
aliases:
  kim: ['"Kim Jong Un"', '"Kim Jong-un"']
rules:
  - name: kim-putin
    query: '@kim AND Putin'
    notify: [chat, mail]
    examples:
      match: ["Ingin Temui Putin, Kim Jong Un Berangkat ke Rusia"]
      no_match: ["Kim Jong Un inspects missile launch"]
  - name: disabled
    query: Bali
    notify: chat
    enabled: false
"""


def test_full_config_loads(tmp_path: Path) -> None:
    cfg = write(tmp_path / "monitor.yaml", GOOD)
    write(tmp_path / "watchlists" / "k.yaml", WATCHLIST)
    config = load_config(cfg, env={"STATE_DIRECTORY": str(tmp_path / "state")})
    assert str(config.timezone) == "Asia/Makassar"
    assert config.defaults.interval == timedelta(minutes=5)
    assert config.fetch.max_bytes == 5 * 1024 * 1024
    assert config.channels["chat"] == ("json://127.0.0.1:9/notify",)
    assert len(config.channels["mail"]) == 2
    feeds = {f.name: f for f in config.feeds}
    assert feeds["local"].url == str((tmp_path / "data" / "feed.xml").resolve())
    assert feeds["local"].interval == timedelta(minutes=5)
    assert feeds["web"].interval == timedelta(hours=1)
    assert feeds["web"].max_age == timedelta(days=1)
    assert feeds["gn"].url.startswith("https://news.google.com/rss/search?")
    assert (
        "hl=id" in feeds["gn"].url and "gl=ID" in feeds["gn"].url and "ceid=ID" in feeds["gn"].url
    )
    assert [f.name for f in config.enabled_feeds()] == ["local", "web", "gn"]
    assert [r.name for r in config.enabled_rules()] == ["kim-putin"]
    assert config.rules[1].notify == ("chat",)
    assert config.aliases["kim"] == ('"Kim Jong Un"', '"Kim Jong-un"')
    assert config.state_path == tmp_path / "state" / "news-monitor.db"


def test_state_path_relative_to_config_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "etc" / "monitor.yaml", "state: ../var/x.db\n")
    assert load_config(cfg, env={}).state_path == (tmp_path / "var" / "x.db").resolve()
    cfg = write(tmp_path / "etc" / "monitor.yaml", "timezone: UTC\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(cfg, env={}).state_path == tmp_path / "var" / "news-monitor.db"


def test_a_postgresql_state_with_its_password_from_a_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "monitor.yaml", "state: postgresql://monitor@db.example/news\n")
    config = load_config(cfg, env={})
    assert (config.state_url, config.state_password) == (
        "postgresql://monitor@db.example/news",
        None,
    )
    (tmp_path / "pw").write_text("s3cret\n")
    cfg = write(
        tmp_path / "monitor.yaml",
        """
        state:
          url: postgresql://monitor@db.example/news
          password_file: pw
        """,
    )
    config = load_config(cfg, env={})
    assert config.state_password == "s3cret" and "s3cret" in config.secrets
    cfg = write(tmp_path / "monitor.yaml", "state: postgresql://monitor:inline@db/news\n")
    assert "inline" in load_config(cfg, env={}).secrets  # redacted from logs like any secret


def test_a_bad_shared_state_points_at_the_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "monitor.yaml",
        """
        state:
          url: postgresql://monitor@db.example/news
          password_file: missing-pw
        """,
    )
    (err,) = errors_of(cfg)
    assert err.startswith(f"{cfg}:3:18: state: cannot read password_file")
    cfg = write(tmp_path / "monitor.yaml", "state: {url: mysql://db/news}\n")
    (err,) = errors_of(cfg)
    assert err == f"{cfg}:1:14: state: url must be postgresql://user@host/db"


def test_env_expansion_and_secrets(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        channels:
          chat: "json://bot:${CHAT_TOKEN}@127.0.0.1:9/x"
        """,
    )
    config = load_config(cfg, env={"CHAT_TOKEN": "s3cr3t-value"})
    assert config.channels["chat"] == ("json://bot:s3cr3t-value@127.0.0.1:9/x",)
    assert "s3cr3t-value" in config.secrets


def test_unset_env_is_an_error_at_its_position(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        channels:
          chat: "tgram://${TG_TOKEN}/123"
        """,
    )
    assert errors_of(cfg) == [
        f"{cfg}:2:9: environment variable TG_TOKEN is not set (used as ${{TG_TOKEN}})"
    ]


def test_bad_yaml_has_position(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.yaml", "feeds:\n  - {name: a, url: [x\n")
    (err,) = errors_of(cfg)
    assert err.startswith(f"{cfg}:3:1: invalid YAML")


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        defaults:
          intervall: 10m
        """,
    )
    assert errors_of(cfg) == [f"{cfg}:2:3: unknown key 'intervall'"]


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.yaml", "timezone: UTC\ntimezone: Asia/Jakarta\n")
    assert errors_of(cfg) == [f"{cfg}:2:1: duplicate key 'timezone'"]


def test_yaml_1_1_booleans_stay_strings(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        feeds:
          - {name: gn-no, google_news: fisk, lang: no, country: NO}
        """,
    )
    (feed,) = load_config(cfg, env={}).feeds
    assert "gl=NO" in feed.url


def test_bad_duration_and_timezone(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        timezone: Mars/Olympus
        defaults:
          interval: soon
        """,
    )
    errs = errors_of(cfg)
    assert any(e.startswith(f"{cfg}:1:11: timezone: unknown time zone") for e in errs), errs
    assert any(
        e.startswith(f"{cfg}:3:13: defaults.interval: invalid duration 'soon'") for e in errs
    ), errs


def test_retention_must_exceed_max_age(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.yaml", "defaults: {max_age: 40d}\n")
    (err,) = errors_of(cfg)
    assert "retention must be longer than max_age" in err


def test_feed_needs_one_source(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        feeds:
          - name: both
            url: https://example.org/rss
            google_news: bali
        """,
    )
    assert errors_of(cfg) == [
        f"{cfg}:2:5: feeds.0: a feed needs exactly one of 'url' or 'google_news'"
    ]
    cfg = write(
        tmp_path / "m.yaml", "feeds:\n  - name: bad-scheme\n    url: ftp://example.org/rss\n"
    )
    assert errors_of(cfg) == [f"{cfg}:3:10: url must be http(s)://… or a local file path"]


def test_unknown_channel_in_rule(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml", 'channels: {chat: "json://127.0.0.1:9/x"}\nwatchlists: [w.yaml]\n'
    )
    wl = write(
        tmp_path / "w.yaml",
        """
        rules:
          - name: r
            query: Bali
            notify: [chat, pager]
        """,
    )
    assert errors_of(cfg) == [f"{wl}:4:20: rule 'r': unknown channel 'pager' (known: chat)"]


def test_bad_query_reports_file_position_then_query_column(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml", 'channels: {chat: "json://127.0.0.1:9/x"}\nwatchlists: [w.yaml]\n'
    )
    wl = write(
        tmp_path / "w.yaml",
        """
        rules:
          - name: r
            notify: [chat]
            query: 'Kim AND'
        """,
    )
    (err,) = errors_of(cfg)
    assert err.startswith(f"{wl}:4:12: query:1:")
    assert "expected" in err


def test_failing_example_is_a_config_error(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml", 'channels: {chat: "json://127.0.0.1:9/x"}\nwatchlists: [w.yaml]\n'
    )
    wl = write(
        tmp_path / "w.yaml",
        """
        rules:
          - name: r
            notify: [chat]
            query: '"Kim Jong Un" AND Putin'
            examples:
              match: ["Kim Jong Un inspects missile launch"]
        """,
    )
    (err,) = errors_of(cfg)
    assert err == (
        f"{wl}:4:12: rule 'r': example should match but does not: "
        "'Kim Jong Un inspects missile launch'"
    )


def test_duplicate_rule_and_feed_names(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        channels: {chat: "json://127.0.0.1:9/x"}
        feeds:
          - {name: a, url: "https://example.org/1"}
          - {name: a, url: "https://example.org/2"}
        rules:
          - {name: r, query: x, notify: [chat]}
          - {name: r, query: y, notify: [chat]}
        """,
    )
    errs = errors_of(cfg)
    assert f"{cfg}:4:12: duplicate feed name 'a'" in errs
    assert any(e.startswith(f"{cfg}:7:12: duplicate rule name 'r'") for e in errs), errs


def test_bad_channel_url(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.yaml", 'channels: {chat: "notaurl"}\n')
    (err,) = errors_of(cfg)
    assert err.startswith(f"{cfg}:1:18: channel 'chat': ")


def test_missing_file(tmp_path: Path) -> None:
    assert errors_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: file not found"]


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("x.yaml", env={"NEWS_MONITOR_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert find_config(None, env={"NEWS_MONITOR_CONFIG": "y.yaml"}) == Path("y.yaml")
    assert find_config(None, env={}) == Path("config/monitor.yaml")  # the first default


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        (45, 45),
        ("1w", 604800),
    ],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "10", "m", "10x", "1h 2", "-5s", True, 100000000000000, "1000000d"]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is asserted in config tests
        parse_duration(text)


def test_sizes() -> None:
    assert parse_size("10MiB") == 10 * 1024 * 1024
    assert parse_size("500KB") == 500_000
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("lots")


def test_shipped_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config" / "monitor.yaml", env={})
    names = {f.name for f in config.feeds}
    assert {"antara-bali", "gn-kim-putin"} <= names
    assert {r.name for r in config.rules} >= {"kim-putin", "bali"}
    assert config.channels["terminal"] == ("console://",)


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        fetch: {allow_private: y}
        feeds:
          - {name: a, url: "https://example.org/rss", enabled: yes}
        """,
    )
    errs = errors_of(cfg)
    assert any(e.startswith(f"{cfg}:1:24: fetch.allow_private") for e in errs), errs
    assert any(e.startswith(f"{cfg}:3:56: feeds.0.enabled") for e in errs), errs


def test_values_that_could_never_work_are_refused(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "m.yaml",
        """
        feeds:
          - {name: a, url: ""}
        """,
    )
    (err,) = errors_of(cfg)
    assert "url is empty" in err


NONSENSE = [
    # (config text, FILE:LINE:COL of the error, what the message says)
    ("fetch: {max_bytes: 0}", "1:20", "invalid size 0"),
    ("fetch: {max_bytes: 17MiB}", "1:20", "must be between 1KiB and 16MiB"),
    ("defaults: {stale_after: 0s}", "1:25", "must be at least 1m (got 0s)"),
    ("feeds:\n  - {name: a, url: x.xml, stale_after: 0s}", "2:40", "must be at least 1m"),
    ("defaults: {interval: 1h1h}", "1:22", "each unit at most once, largest first"),
    ("defaults: {interval: 30m1h}", "1:22", "each unit at most once, largest first"),
    ("defaults: {interval: 5s}", "1:22", "must be at least 10s (got 5s)"),
    ("defaults: {max_age: 30s}", "1:21", "must be at least 1m, or nothing could ever alert"),
    ("feeds:\n  - {name: g, google_news: bali, interval: 30s}", "2:44", "at least 1m (got 30s)"),
    (
        "defaults: {interval: 30s}\nfeeds:\n  - {name: g, google_news: bali}",
        "1:22",
        "a Google News feed's interval must be at least 1m",
    ),
    ("dedup: {window: 40d}", "1:17", "longer than defaults.retention (30d)"),
    ("timezone: Mars/Olympus", "1:11", "unknown time zone 'Mars/Olympus'"),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", timezone: Bali}}',
        "1:56",
        "unknown time zone 'Bali'",
    ),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", rate_limit: fast}}',
        "1:58",
        "invalid rate_limit 'fast'",
    ),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", quiet_hours: "22-6"}}',
        "1:59",
        "expected HH:MM-HH:MM, e.g. 22:00-06:00",
    ),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", deliver: {daily: "25:00"}}}',
        "1:63",
        "expected a time of day HH:MM",
    ),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", deliver: {every: 30s}}}',
        "1:63",
        "must be between 1m and 7d (got 30s)",
    ),
    (
        'channels: {c: {urls: "json://127.0.0.1:9/x", retry: {first: 1m, max: 30s}}}',
        "1:53",
        "retry.max must be at least retry.first",
    ),
    ("delivery: {shutdown_grace: 40s}", "1:28", "at most 25s"),
]


@pytest.mark.parametrize(("text", "where", "message"), NONSENSE)
def test_config_that_cannot_work_is_refused_with_its_position(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    rules = "\nrules:\n  - {name: r, query: gempa, notify: c}\n"
    if "channels:" not in text:
        rules = '\nchannels: {c: "json://127.0.0.1:9/x"}' + rules
    cfg = tmp_path / "m.yaml"
    cfg.write_text(text + rules)
    errors = errors_of(cfg)
    assert any(f"m.yaml:{where}: " in e and message in e for e in errors), errors


def test_a_rejected_channel_url_never_logs_its_secret(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import logging

    from monitor import logs

    logs.configure(level="debug", json=True)
    cfg = write(tmp_path / "m.yaml", 'channels: {t: "tgram://${TG_TOKEN}/"}\n')
    errors_of(cfg, env={"TG_TOKEN": "SECRETTOKEN123"})
    logging.getLogger("apprise").error("probe: apprise logging still works afterwards")
    captured = capfd.readouterr()
    assert "SECRETTOKEN123" not in captured.err + captured.out
    assert "probe: apprise logging still works" in captured.err


DEDUP_BASE = """
channels: {chat: "json://127.0.0.1:9/notify"}
defaults: {retention: 30d}
rules:
  - name: r
    query: gempa
    notify: chat
"""


@pytest.mark.parametrize(
    ("extra", "rule_extra", "where", "message"),
    [
        (
            "dedup: {window: 40d}\n",
            "",
            "7:17",
            "dedup window 40d is longer than defaults.retention",
        ),
        ("", "    dedup: {window: 31d}\n", "7:21", "dedup window 31d is longer than"),
        ("dedup: {window: 30s}\n", "", "7:8", "window must be at least 1m"),
        ("dedup: {on_repeat: drop}\n", "", "7:20", "dedup.on_repeat: Input should be"),
        ("dedup: {similarity: 0.2}\n", "", "7:21", "greater than or equal to 0.5"),
        ("", "    dedup: {similarity: 1.5}\n", "7:25", "less than or equal to 1"),
        ("", "    dedup: {update_every: 10s}\n", "7:12", "update_every must be at least 1m"),
        ("", "    dedup: {windw: 2h}\n", "7:13", "unknown key 'windw'"),
    ],
)
def test_dedup_settings_are_checked_with_their_position(
    tmp_path: Path, extra: str, rule_extra: str, where: str, message: str
) -> None:
    cfg = write(tmp_path / "m.yaml", DEDUP_BASE + extra)
    cfg.write_text(cfg.read_text().replace("notify: chat\n", "notify: chat\n" + rule_extra))
    errors = errors_of(cfg)
    assert any(f"m.yaml:{where}: " in e and message in e for e in errors), errors


def test_dedup_defaults_and_a_rule_override(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.yaml", DEDUP_BASE + "dedup: {on_repeat: update}\n")
    cfg.write_text(
        cfg.read_text().replace("notify: chat\n", "notify: chat\n    dedup: {window: 6h}\n")
    )
    config = load_config(cfg, env={})
    assert config.dedup.window == timedelta(hours=48)
    rule = config.rules[0].dedup
    assert (rule.window, rule.on_repeat, rule.update_every, rule.similarity) == (
        timedelta(hours=6),
        "update",
        timedelta(hours=6),
        0.70,
    )


def test_email_templates_are_checked_at_load_with_their_line(tmp_path: Path) -> None:
    base = 'channels: {c: "json://127.0.0.1:9/x"}\nrules:\n  - {name: r, query: q, notify: c}\n'
    missing = write(tmp_path / "m.yaml", base + "templates: nowhere\n")
    [err] = errors_of(missing)
    assert "m.yaml:4:12: templates:" in err and "not found" in err
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "alert.txt").write_text("{{ alert.headline }}\n{% if %}\n")
    broken = write(tmp_path / "m.yaml", base + "templates: tpl\n")
    [err] = errors_of(broken)
    assert "alert.txt:2" in err
    (tmp_path / "tpl" / "alert.txt").write_text("NEWS: {{ alert.headline }}\n")
    config = load_config(write(tmp_path / "m.yaml", base + "templates: tpl\n"), env={})
    assert config.templates == (tmp_path / "tpl").resolve()


def test_a_file_changing_while_it_is_read_is_read_again_whole(tmp_path: Path) -> None:
    """A watchlist saved in place can be read half written (a reload fired by the first change
    event): the read notices the file changing and reads it again once it is whole."""
    from monitor.config import _read

    path = tmp_path / "w.yaml"
    whole = "rules:\n" + "".join(f"  - {{name: r{i}, query: q{i}, notify: c}}\n" for i in range(99))
    path.write_text(whole[:100])
    original_stat = Path.stat
    calls = []

    def stat_while_saving(self: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(self)
        if len(calls) == 2:  # the rest of the save lands after the first read of the file
            with self.open("a") as f:
                f.write(whole[100:])
        return original_stat(self, **kwargs)  # type: ignore[arg-type]

    Path.stat = stat_while_saving  # type: ignore[method-assign]
    try:
        assert _read(path) == whole
    finally:
        Path.stat = original_stat  # type: ignore[method-assign]


def test_an_empty_file_is_read_again_before_it_counts_as_empty(tmp_path: Path) -> None:
    """A save truncates the file before it writes: a read between the two sees it empty. The
    read waits for an empty file to stay empty, so a reload never applies "no rules"."""
    from monitor.config import _read

    path = tmp_path / "w.yaml"
    path.write_text("")
    original_stat = Path.stat
    calls = []

    def stat_while_saving(self: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(self)
        if len(calls) == 3:  # the save's write lands after the first (empty) read
            self.write_text("rules: []\n")
        return original_stat(self, **kwargs)  # type: ignore[arg-type]

    Path.stat = stat_while_saving  # type: ignore[method-assign]
    try:
        assert _read(path) == "rules: []\n"
    finally:
        Path.stat = original_stat  # type: ignore[method-assign]
    path.write_text("")
    assert _read(path) == ""  # one that stays empty is empty
