"""URL identity: which two links are one item (``canonical_url``), row by row; its properties."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from monitor.dedup import item_key
from monitor.normalize import canonical_url
from monitor.parse import FeedItem

ALERT = "https://www.google.com/url?rct=j&sa=t&url={}&ct=ga&cd=CAIyHGU4ZTJk&usg=AFQjCNHUcRGt"
ARTICLE = "https://www.vox.com/2019/7/10/20688476/recode-daily-slack-has-a-snap-problem"

# (rule, a, b): a and b are the same item.
SAME = [
    ("case", "HTTPS://Example.COM/a", "https://example.com/a"),
    ("default port https", "https://example.com:443/a", "https://example.com/a"),
    ("default port http", "http://example.com:80/a", "http://example.com/a"),
    ("empty path", "https://example.com", "https://example.com/"),
    ("surrounding space", "  https://example.com/a\n", "https://example.com/a"),
    ("dot segment", "https://example.com/a/./b", "https://example.com/a/b"),
    ("dot-dot segment", "https://example.com/a/x/../b", "https://example.com/a/b"),
    ("escaped unreserved", "https://example.com/%7euser/a", "https://example.com/~user/a"),
    ("escaped letter", "https://example.com/%61rticle", "https://example.com/article"),
    ("escape case", "https://example.com/a%2fb", "https://example.com/a%2Fb"),
    ("escape case in query", "https://example.com/a?q=%e9", "https://example.com/a?q=%E9"),
    ("IDN host", "https://bücher.de/a", "https://xn--bcher-kva.de/a"),
    ("IDN host case", "https://BÜCHER.de/a", "https://bücher.de/a"),
    ("non-ASCII path", "https://example.com/résumé", "https://example.com/r%C3%A9sum%C3%A9"),
    ("query order", "https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("space in query", "https://example.com/a?q=a%20b", "https://example.com/a?q=a+b"),
    ("empty query", "https://example.com/a?", "https://example.com/a"),
    ("utm tracking", "https://example.com/a?utm_source=rss&id=5", "https://example.com/a?id=5"),
    ("click id", "https://example.com/a?fbclid=IwAR0&gclid=x", "https://example.com/a"),
    ("tracking key case", "https://example.com/a?UTM_Medium=rss", "https://example.com/a"),
    ("www. host", "https://www.example.com/a", "https://example.com/a"),
    ("m. host", "https://m.example.com/a", "https://example.com/a"),
    ("mobile. host", "https://mobile.example.com/a", "https://example.com/a"),
    ("amp. host", "https://amp.example.com/a", "https://example.com/a"),
    ("stacked prefixes", "https://www.m.example.co.id/a", "https://example.co.id/a"),
    ("prefix on IDN host", "https://www.bücher.de/a", "https://xn--bcher-kva.de/a"),
    ("trailing dot host", "https://example.com./a", "https://example.com/a"),
    ("amp segment", "https://example.com/news/amp/123-slug", "https://example.com/news/123-slug"),
    ("leading amp segment", "https://example.com/amp/news/123", "https://example.com/news/123"),
    ("trailing /amp", "https://example.com/news/123-slug/amp", "https://example.com/news/123-slug"),
    ("trailing /amp/", "https://example.com/news/123/amp/", "https://example.com/news/123"),
    ("?amp=1", "https://example.com/news/123?amp=1", "https://example.com/news/123"),
    ("bare ?amp", "https://example.com/news/123?amp&id=2", "https://example.com/news/123?id=2"),
    (".amp.html", "https://example.com/news/123.amp.html", "https://example.com/news/123.html"),
    ("outputType=amp", "https://example.com/a.html?outputType=amp", "https://example.com/a.html"),
    ("trailing slash", "https://example.com/news/123/", "https://example.com/news/123"),
    ("plain fragment", "https://example.com/a#comments", "https://example.com/a"),
    ("fragment after query", "https://example.com/a?id=1#top", "https://example.com/a?id=1"),
    ("Google Alerts", ALERT.format(ARTICLE), ARTICLE),
    (
        "Google Alerts, escaped target with tracking",
        ALERT.format(quote("https://example.com/a?id=1&utm_source=ga", safe="")),
        "https://example.com/a?id=1",
    ),
    (
        "Google search redirect",
        "https://www.google.co.uk/url?sa=t&q=https%3A%2F%2Fexample.com%2Fa&usg=x",
        "https://example.com/a",
    ),
    (
        "Facebook link shim",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fa%3Fid%3D1&h=AT0",
        "https://example.com/a?id=1",
    ),
    (
        "Facebook mobile link shim",
        "https://lm.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fa",
        "https://example.com/a",
    ),
    (
        "Facebook www link shim",
        "https://www.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fa",
        "https://example.com/a",
    ),
    (
        "Instagram link shim",
        "https://l.instagram.com/?u=https%3A%2F%2Fexample.com%2Fa&e=AT1",
        "https://example.com/a",
    ),
    (
        "YouTube redirect",
        "https://www.youtube.com/redirect?event=video_description&q=https%3A%2F%2Fexample.com%2Fa",
        "https://example.com/a",
    ),
    (
        "LinkedIn redirect",
        "https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fexample.com%2Fa&urlhash=x",
        "https://example.com/a",
    ),
    (
        "Slack redirect",
        "https://slack-redir.net/link?url=https%3A%2F%2Fexample.com%2Fa",
        "https://example.com/a",
    ),
    (
        "Bing News click",
        "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&url=https%3a%2f%2fexample.com%2fa",
        "https://example.com/a",
    ),
    (
        "Google AMP viewer",
        "https://www.google.com/amp/s/www.example.com/news/123/amp",
        "https://example.com/news/123",
    ),
    (
        "AMP cache",
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/news/123",
        "https://example.com/news/123",
    ),
    (
        "wrapped wrapper",
        ALERT.format(quote("https://l.facebook.com/l.php?u=https://example.com/a", safe="")),
        "https://example.com/a",
    ),
]

# (rule, a, b): a and b are different items and must stay apart.
DIFFERENT = [
    ("hashbang routes", "https://example.com/#!/news/1", "https://example.com/#!/news/2"),
    ("#/ routes", "https://example.com/#/news/1", "https://example.com/#/news/2"),
    ("hashbang vs none", "https://example.com/#!/news/1", "https://example.com/"),
    ("http vs https", "http://example.com/a", "https://example.com/a"),
    ("other port", "https://example.com:8443/a", "https://example.com/a"),
    ("path case", "https://example.com/A", "https://example.com/a"),
    ("escaped slash", "https://example.com/a%2Fb", "https://example.com/a/b"),
    ("escaped ampersand", "https://example.com/a?q=a%26b=c", "https://example.com/a?q=a&b=c"),
    ("escaped semicolon", "https://example.com/a;b", "https://example.com/a%3Bb"),
    ("empty segment", "https://example.com/a//b", "https://example.com/a/b"),
    ("query value", "https://example.com/a?id=1", "https://example.com/a?id=2"),
    ("non-tracking parameter", "https://example.com/a?page=2", "https://example.com/a"),
    ("amp=0 is not AMP", "https://example.com/a?amp=0", "https://example.com/a"),
    ("amp-like segment", "https://example.com/news/amplifier", "https://example.com/news"),
    ("IDNA 2008 sharp s", "https://faß.de/a", "https://fass.de/a"),
    ("other subdomain", "https://news.example.com/a", "https://example.com/a"),
    ("prefix-like label", "https://www2.example.com/a", "https://example.com/a"),
    ("prefix leaving a bare label", "https://www.com/a", "https://com/a"),
    ("other host", "https://example.com/a", "https://example.org/a"),
    ("two Alerts", ALERT.format(ARTICLE), ALERT.format(ARTICLE + "-2")),
    (
        "not a wrapper host",
        "https://example.com/url?url=https://other.org/a",
        "https://other.org/a",
    ),
    (
        "wrapper to non-http",
        "https://www.google.com/url?q=ftp://example.com/a",
        "ftp://example.com/a",
    ),
    ("t.co tokens", "https://t.co/AbC123", "https://t.co/AbC124"),
    (
        "feedproxy tokens",
        "http://feedproxy.google.com/~r/Techcrunch/~3/kTeeGj4FnwU/",
        "http://feedproxy.google.com/~r/Techcrunch/~3/kTeeGj4FnwV/",
    ),
    (
        "feedsportal links",
        "http://detik.feedsportal.com/c/33613/f/656083/s/39db72c9/l/0Lnews0Bdetik0N0Cread/story01.htm",
        "http://detik.feedsportal.com/c/33613/f/656083/s/39db72ca/l/0Lnews0Bdetik0N0Cread/story01.htm",
    ),
]


@pytest.mark.parametrize(("rule", "a", "b"), SAME, ids=[r[0] for r in SAME])
def test_same_item(rule: str, a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b), rule


@pytest.mark.parametrize(("rule", "a", "b"), DIFFERENT, ids=[r[0] for r in DIFFERENT])
def test_different_items(rule: str, a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b), rule


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            ALERT.format(ARTICLE),
            "https://vox.com/2019/7/10/20688476/recode-daily-slack-has-a-snap-problem",
        ),
        ("https://bücher.de/a/./b/", "https://xn--bcher-kva.de/a/b"),
        ("https://x.id/#!/Berita/%7e1?x", "https://x.id/#!/Berita/%7e1?x"),
        ("https://m.x.id/news/amp/1.amp.html?amp=1&utm_source=t#top", "https://x.id/news/1.html"),
    ],
)
def test_canonical_spelling(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "/relative/path?utm_source=x",
        "//example.com/a",
        "ftp://example.com/a?utm_source=x",
        "mailto:news@example.com",
        "javascript:alert(1)",
        "http://[::1/x",
        "http://h:99999/",
        "https:///no-host",
    ],
)
def test_anything_but_an_absolute_http_url_is_returned_unchanged(url: str) -> None:
    assert canonical_url(url) == url


def _item(link: str) -> FeedItem:
    return FeedItem(
        id=link,
        link=link,
        title="Slack has a Snap problem",
        summary="",
        published=None,
        source="Google Alert - Slack",
        source_url=None,
        feed="alerts",
        lang=None,
    )


def test_item_key_is_one_for_a_google_alerts_link_and_the_bare_article() -> None:
    assert item_key(_item(ALERT.format(ARTICLE))) == item_key(_item(ARTICLE))
    assert item_key(_item(ALERT.format(ARTICLE))) != item_key(_item(ALERT.format(ARTICLE + "-2")))


# Hand-built URLs: the corners of the rules above, mixed.
_HEX = "0123456789abcdefABCDEF"
_escape = st.builds(lambda a, b: f"%{a}{b}", st.sampled_from(_HEX), st.sampled_from(_HEX))
_ODD = [
    *("%", "%2f", "%2F", "%7e", "%25", "%E9", "%c3%a9", "%00", "é", "ß", "~", "+", " ", ";", ":"),
    *("@", "=", "&", "?", "#", "!", "'", "[", "]", "\\", "\t", "\u3002", "\ufeff", "\U0001f600"),
]
_odd = st.sampled_from(_ODD)
_piece = st.one_of(_escape, _odd, st.sampled_from(["a", "Z", "9", "-", "_", ".", "amp", "www."]))
_segment = st.one_of(
    st.sampled_from(["", ".", "..", "amp", "a.amp.html", "x.amp.amp.html", "AMP"]),
    st.lists(_piece, max_size=6).map("".join),
)
_path = st.lists(_segment, max_size=5).map(lambda s: "/" + "/".join(s))
_HOSTS = [
    *("example.com", "EXAMPLE.com", "www.m.example.com", "amp.www.example.com", "bücher.de"),
    *(
        "BÜCHER.DE",
        "xn--bcher-kva.de",
        "faß.de",
        "例え.テスト",
        "ｅｘａｍｐｌｅ.com",
        "www.例え.jp",
    ),
    *("127.0.0.1", "[::1]", "[::0:1]", "example.com.", "www.com", "m.co", "a..b", "xn--zz.de"),
    *("www.google.com", "google.co.uk", "l.facebook.com", "x.cdn.ampproject.org", "user:p@h.de"),
]
_host = st.sampled_from(_HOSTS)
_port = st.sampled_from(["", ":80", ":443", ":8080", ":", ":0"])
_param = st.tuples(
    st.sampled_from(["id", "utm_source", "amp", "outputType", "q", "url", "u", "A", "%61", ""]),
    st.one_of(st.lists(_piece, max_size=4).map("".join), st.sampled_from(["1", "amp", "AMP"])),
).map(lambda kv: "=".join(kv))
_query = st.one_of(st.just(""), st.lists(_param, max_size=4).map(lambda ps: "?" + "&".join(ps)))
_fragment = st.one_of(
    st.sampled_from(["", "#", "#!", "#!/news/1", "#/news/%7e1", "#top", "#%21/x", "#!/a#b"]),
    st.lists(_piece, max_size=4).map(lambda p: "#" + "".join(p)),
)
_built = st.builds(
    lambda scheme, host, port, path, query, frag: f"{scheme}://{host}{port}{path}{query}{frag}",
    st.sampled_from(["http", "https", "HTTPS", "hTtP"]),
    _host,
    _port,
    _path,
    _query,
    _fragment,
)
_wrapped = st.one_of(urls(), _built).flatmap(
    lambda u: st.sampled_from(
        [
            u,
            ALERT.format(quote(u, safe="")),
            ALERT.format(u),
            "https://l.facebook.com/l.php?u=" + quote(u, safe=""),
            "https://www.google.com/amp/s/" + u.partition("://")[2],
        ]
    )
)


@given(st.one_of(urls(), _built, _wrapped))
@example("https://www.google.com/amp/s/www.google.com/amp/s/example.com/a/amp/")
@example("https://x.id/a.amp.amp.html/")
@example("https://l.facebook.com/l.php?u=notaurl&u=http://e.com/a")  # sorted: it unwrapped
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
