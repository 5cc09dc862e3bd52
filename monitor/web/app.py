"""The web view's routes on the local listener: ``/``, ``/rules/<name>``, ``.atom``, ``/preview``.

Read-only by construction: only GET (and HEAD) routes; each request reads the state through a
read-only connection of its own, in a worker thread, so a slow page never holds the event loop
and never sees the daemon's transaction half-done. When ``web.token_file`` is set, every
request on the listener, ``/metrics`` and ``/healthz`` included, needs
``Authorization: Bearer <token>`` (compared in constant time).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from monitor import __version__, logs
from monitor.config import Config, format_duration, parse_duration
from monitor.errors import StoreError
from monitor.rules import QueryError, parse_query
from monitor.store import Store, open_store
from monitor.web import views
from monitor.web.backtest import Backtest, backtest, segments

__all__ = ["MAX_QUERY_BYTES", "MAX_REQUEST_LINE", "setup"]

MAX_QUERY_BYTES = 4096  # a preview query longer than this is refused with 414
# The listener reads request lines up to this (aiohttp's default is 8190), so a long query
# reaches the handler and gets its 414 rather than the parser's bare 400.
MAX_REQUEST_LINE = 32 * 1024

log = logs.get_logger()

ConfigSource = Callable[[], Config]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CSS = resources.files("monitor.web").joinpath("templates/style.css").read_text("utf-8").strip()
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
# No script at all; the one style block by its hash; forms only to this listener.
CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` value: text loses control characters (invalid in XML) before escaping."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return views.clean_text(value)
    return "" if value is None else value


def _environment(tz: Callable[[], Any]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.web", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "atom"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def when(dt: datetime | None) -> str:
        return "-" if dt is None else f"{dt.astimezone(tz()):%Y-%m-%d %H:%M %Z}"

    def iso(dt: datetime) -> str:
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    env.filters.update(
        when=when,
        iso=iso,
        duration=format_duration,
        href=views.safe_href,
        title_segments=lambda m: segments(m.item.title, m.title_spans),
        summary_segments=lambda m: (
            segments(m.item.summary[: views.SUMMARY_CHARS], m.summary_spans)
            if m.item.summary
            else []
        ),
    )
    return env


def open_state(config: Config) -> Store:
    """The config's state, read-only: a connection of the request's own."""
    if config.state_url is not None:
        return open_store(config.state_url, password=config.state_password, readonly=True)
    return open_store(config.state_path, readonly=True)


class WebView:
    """The handlers, with the config source (it changes on reload) and the templates."""

    def __init__(self, config: ConfigSource, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.clock = clock
        self.env = _environment(lambda: self.config().timezone)
        # One preview at a time: each can take a core for most of a second.
        self._previews = asyncio.Semaphore(1)

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self, fn: Callable[[Config, Store], Any]) -> Awaitable[Any]:
        config = self.config()

        def run() -> Any:
            with open_state(config) as store:
                return fn(config, store)

        return asyncio.to_thread(run)

    def html(self, request: web.Request, name: str, code: int = 200, **ctx: Any) -> web.Response:
        depth = request.path.count("/") - 1
        text = self.env.get_template(name).render(
            css=Markup(_CSS), root="../" * depth or "./", now=self.clock(), **ctx
        )
        return web.Response(text=text, status=code, content_type="text/html", charset="utf-8")

    def error(self, request: web.Request, status: int, message: str) -> web.Response:
        return self.html(
            request,
            "error.html",
            status,
            status=status,
            reason=HTTPStatus(status).phrase,
            message=message,
        )

    # -- pages ------------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        try:
            page = await self._read(lambda c, s: views.status_page(c, s, now))
        except StoreError as e:
            return self.error(request, 503, str(e))
        return self.html(request, "status.html", chart_days=views.CHART_DAYS, **page)

    async def rule(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        config = self.config()
        rule = views.find_rule(config, name)
        atom = False
        if rule is None and name.endswith(".atom"):
            rule = views.find_rule(config, name.removesuffix(".atom"))
            atom = True
        if rule is None:
            return self.error(request, 404, f"no rule {name!r} in the config")
        now = self.clock()
        try:
            stories = await self._read(lambda c, s: views.rule_stories(c, s, rule, now))
        except StoreError as e:
            return self.error(request, 503, str(e))
        if atom:
            return self._atom(request, rule, stories, now)
        return self.html(
            request,
            "rule.html",
            rule=rule,
            stories=stories,
            hits=sum(len(s.hits) for s in stories),
            keep=config.web.keep_items,
        )

    def _atom(
        self, request: web.Request, rule: Any, stories: list[views.RuleStory], now: datetime
    ) -> web.Response:
        self_url = str(request.url.with_query(None))
        page_url = self_url.removesuffix(".atom")
        text = self.env.get_template("rule.atom").render(
            rule=rule,
            stories=stories,
            updated=views.latest(stories, now),
            feed_id=views.feed_id(rule.name),
            self_url=self_url,
            page_url=page_url,
            version=__version__,
        )
        return web.Response(text=text, content_type="application/atom+xml", charset="utf-8")

    async def preview(self, request: web.Request) -> web.StreamResponse:
        config = self.config()
        keep = config.web.keep_items
        if len(request.query_string.encode()) > 4 * MAX_QUERY_BYTES:
            return self.error(request, 414, "the query string is too long")
        q = request.query.get("q", "")
        since_text = request.query.get("since", "").strip()
        ctx: dict[str, Any] = {
            "q": q,
            "since_text": since_text,
            "keep": keep,
            "error": None,
            "column": None,
            "note": None,
            "result": None,
        }
        if len(q.encode()) > MAX_QUERY_BYTES:
            return self.error(
                request,
                414,
                f"the query is too long ({len(q.encode())} bytes; at most {MAX_QUERY_BYTES})",
            )
        try:
            span = parse_duration(since_text) if since_text else keep
        except ValueError as e:
            return await self._preview_page(request, 400, ctx, error=f"since: {e}")
        if span > keep:
            ctx["note"] = (
                f"Items are kept for {format_duration(keep)} (web.keep_items): searching those."
            )
            span = keep
        if not q.strip():
            return await self._preview_page(request, 200, ctx)
        try:
            query = parse_query(q, config.aliases)
        except QueryError as e:
            column = e.column if e.line == 1 else None
            return await self._preview_page(request, 400, ctx, error=str(e), column=column)
        now = self.clock()

        def run(c: Config, store: Store) -> Backtest:
            return backtest(
                store,
                query,
                since=now - span,
                window=c.dedup.window,
                threshold=c.dedup.similarity,
            )

        async with self._previews:
            try:
                result = await self._read(run)
            except StoreError as e:
                return self.error(request, 503, str(e))
        return await self._preview_page(request, 200, ctx, result=result)

    async def _preview_page(
        self, request: web.Request, status: int, ctx: dict[str, Any], **more: Any
    ) -> web.Response:
        ctx = {**ctx, **more}
        keep = ctx["keep"]
        now = self.clock()
        try:
            total, _ = await self._read(lambda c, s: s.recent_span(now - keep))
        except StoreError:
            total = 0
        return self.html(request, "preview.html", status, searched_total=total, **ctx)


def _middlewares(config: ConfigSource) -> list[Any]:
    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = config().web.token
        if token is not None:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode(), token.encode()
            )
            if not ok:
                return web.Response(
                    status=401,
                    text="a bearer token is required (web.token_file)\n",
                    headers={"WWW-Authenticate": 'Bearer realm="news-monitor"'},
                )
        return await handler(request)

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as e:  # a bug: logged with its traceback, a plain 500 for the client
            log.critical("web_request_crashed", path=request.path, error=repr(e), exc_info=True)
            response = web.Response(status=500, text="internal error (see the log)\n")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return [bearer, headers]


def setup(
    app: web.Application, config: ConfigSource, clock: Callable[[], datetime] | None = None
) -> None:
    """Add the web view's routes (and the token check, for every route) to the listener."""
    view = WebView(config, clock or (lambda: datetime.now(UTC)))
    app.middlewares.extend(_middlewares(config))
    app.router.add_get("/", view.status)
    app.router.add_get("/rules/{name}", view.rule)
    app.router.add_get("/preview", view.preview)
