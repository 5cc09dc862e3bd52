"""The seed case of story dedup, as four feeds: one Bali earthquake story, four ways.

beritabali.com republishes CNN Indonesia's report under its own headline and link; CNN Indonesia
carries it itself; two Google News searches ("gempa bali", "karangasem") list it again, each
under a publisher's headline, with an opaque news.google.com link and the other outlets'
headlines as related articles. The same feeds also carry a *different* earthquake (M4,2, a day
earlier) that must alert on its own, and an unrelated item. Dates are relative to ``now`` (see
tests/feeds.py for why).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape

from tests.feeds import Entry, rss

RULE_QUERY = "gempa AND karangasem"

M51_CNN = "Gempa M5,1 Guncang Karangasem Bali, Warga Berhamburan"
M51_BERITABALI = "Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"
M42 = "Gempa M4,2 Guncang Karangasem Pagi Ini"


def _gn_listing(items: list[tuple[str, str]]) -> str:
    """A Google News description: an ``<ol>`` of (headline, publisher), then "full coverage"."""
    lis = "".join(
        f'<li><a href="https://news.google.com/rss/articles/CBMi{n}?oc=5" target="_blank">'
        f'{escape(h)}</a>&nbsp;&nbsp;<font color="#6f6f6f">{escape(p)}</font></li>'
        for n, (h, p) in enumerate(items)
    )
    more = (
        '<li><strong><a href="https://news.google.com/stories/CAAq?oc=5" target="_blank">'
        "View full coverage on Google News</a></strong></li>"
    )
    return f"<ol>{lis}{more}</ol>"


def beritabali(now: datetime | None = None) -> bytes:
    return rss(
        [
            Entry(
                M51_BERITABALI,
                "https://www.beritabali.com/berita/202612030001/gempa-m51-guncang-karangasem",
                age=timedelta(minutes=40),
                description="Gempa bermagnitudo 5,1 mengguncang Karangasem, Bali. (CNN Indonesia)",
            ),
            Entry(
                M42,
                "https://www.beritabali.com/berita/202612020007/gempa-m42-guncang-karangasem",
                age=timedelta(hours=20),
                description="Gempa bermagnitudo 4,2 mengguncang Karangasem pagi ini.",
            ),
            Entry("Harga cabai naik jelang Galungan", "https://www.beritabali.com/berita/cabai"),
        ],
        title="beritabali.com",
        now=now,
    )


def cnn_indonesia(now: datetime | None = None) -> bytes:
    return rss(
        [
            Entry(
                M51_CNN,
                "https://www.cnnindonesia.com/nasional/20261203061500-20-1/gempa-m51-karangasem",
                age=timedelta(hours=1),
                description="Gempa bermagnitudo 5,1 mengguncang Kabupaten Karangasem, Bali.",
            ),
        ],
        title="CNN Indonesia",
        now=now,
    )


def google_news_gempa_bali(now: datetime | None = None) -> bytes:
    return rss(
        [
            Entry(
                f"{M51_CNN} - CNN Indonesia",
                "https://news.google.com/rss/articles/CBMiQWh0dHBzOi8vY25uaW5kb25lc2lh?oc=5",
                age=timedelta(minutes=55),
                guid="CBMiQWh0dHBzOi8vY25uaW5kb25lc2lh",
                source="CNN Indonesia",
                description=_gn_listing(
                    [(M51_CNN, "CNN Indonesia"), (M51_BERITABALI, "beritabali.com")]
                ),
            ),
            Entry(
                f"{M42} - detikNews",
                "https://news.google.com/rss/articles/CBMiZGV0aWs?oc=5",
                age=timedelta(hours=19),
                guid="CBMiZGV0aWs",
                source="detikNews",
                description=_gn_listing([(M42, "detikNews")]),
            ),
        ],
        title='"gempa bali" - Google News',
        now=now,
    )


def google_news_karangasem(now: datetime | None = None) -> bytes:
    return rss(
        [
            Entry(
                f"{M51_BERITABALI} - beritabali.com",
                "https://news.google.com/rss/articles/CBMiYmVyaXRhYmFsaQ?oc=5",
                age=timedelta(minutes=35),
                guid="CBMiYmVyaXRhYmFsaQ",
                source="beritabali.com",
                description=_gn_listing(
                    [(M51_BERITABALI, "beritabali.com"), (M51_CNN, "CNN Indonesia")]
                ),
            ),
        ],
        title="karangasem - Google News",
        now=now,
    )


FEEDS = {
    "beritabali": beritabali,
    "cnn-indonesia": cnn_indonesia,
    "gn-gempa-bali": google_news_gempa_bali,
    "gn-karangasem": google_news_karangasem,
}


def serve_all(server: object, now: datetime | None = None) -> dict[str, str]:
    """Route every seed feed on a FeedServer; returns feed name -> URL."""
    now = now or datetime.now(UTC)
    urls = {}
    for name, build in FEEDS.items():
        server.route(f"/{name}.xml", body=build(now))  # type: ignore[attr-defined]
        urls[name] = server.url(f"/{name}.xml")  # type: ignore[attr-defined]
    return urls
