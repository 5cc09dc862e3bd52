"""Story similarity on hand-written cases: what must join, and what must never (precision first).

The figures on labelled data are measured by ``python -m benchmarks dedup_quality``, not
asserted here; these cases pin the behaviour each guard exists for.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.dedup.similarity import Evidence, compare, headline, judge
from tests.proptest import examples

SAME = [
    # Indonesian: one outlet republishing another, with a word added or dropped.
    (
        "Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah",
        "Gempa M5,1 Guncang Karangasem Bali, Warga Berhamburan",
    ),
    ("Gempa M4,2 guncang Karangasem pagi ini", "Gempa M4.2 Guncang Karangasem Pagi Ini"),
    ("Banjir rendam lima desa di Jembrana", "Banjir Rendam Lima Desa di Jembrana, Warga Mengungsi"),
    # English, reordered.
    (
        "Putin meets Kim Jong Un in Pyongyang for summit",
        "Kim Jong Un hosts Putin in Pyongyang summit",
    ),
    (
        "Sbarro files for bankruptcy protection for the second time",
        "Sbarro files for second bankruptcy protection",
    ),
    ("Mt. Gox files for US bankruptcy protection", "Mt. Gox files for bankruptcy protection in US"),
    # Chinese and Japanese: compared by characters.
    ("普京抵达平壤与金正恩举行会谈", "普京抵达平壤 与金正恩会谈"),
    ("東京で震度5強の地震 けが人の情報なし", "東京で震度5強の地震、けが人の情報はなし"),
    # An ALL-CAPS headline names nothing by its capitals.
    (
        "GEMPA M5,1 GUNCANG KARANGASEM, WARGA PANIK BERHAMBURAN KELUAR RUMAH",
        "Gempa M5,1 guncang Karangasem di Bali, warga panik berhamburan",
    ),
]

DIFFERENT = [
    # A number differs: two earthquakes, two tolls.
    ("Gempa M4,2 guncang Karangasem", "Gempa M5,1 guncang Karangasem"),
    ("Death toll rises to 39 in Italy coach crash", "Death toll rises to 40 in Italy coach crash"),
    ("東京で震度5強の地震", "東京で震度3の地震"),
    # A person or a place differs.
    ("Putin meets Kim in Pyongyang", "Putin meets Xi in Beijing"),
    ("Presiden Jokowi resmikan bendungan di Bali", "Presiden Prabowo resmikan bendungan di Bali"),
    ("Two U.S. soldiers shot, killed by Afghan soldier", "Two British soldiers killed by Afghan"),
    (  # "U.S." is one name, not two letters
        "Two U.S. soldiers shot dead by Afghan police officer in Kandahar",
        "Two British soldiers shot dead by Afghan police officer in Kandahar",
    ),
    ("World Cup live: France 0-0 Germany", "World Cup live: Germany 0-0 Ghana"),
    ("Mt. Gox Files For US Chapter 15 Bankruptcy", "Sbarro Files For Chapter 11 Bankruptcy"),
    ("普京抵达平壤与金正恩举行会谈", "习近平抵达北京与普京举行会谈"),
    # Same topic, different events.
    ("Stocks fall on weak China data", "Oil falls on weak China data, heating season ends"),
]

GENERIC = ["Live updates", "Breaking news", "Berita terkini", "Berita Terkini Hari Ini", "News"]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_story(a: str, b: str) -> None:
    verdict = compare(headline(a), headline(b))
    assert verdict.same, verdict
    assert compare(headline(b), headline(a)).same  # symmetric


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_events_never_join(a: str, b: str) -> None:
    assert not compare(headline(a), headline(b)).same
    assert not compare(headline(b), headline(a)).same


def test_each_guard_says_why() -> None:
    assert compare(headline(DIFFERENT[0][0]), headline(DIFFERENT[0][1])).reason == (
        "different numbers"
    )
    putin = compare(headline("Putin meets Kim in Pyongyang"), headline("Putin meets Xi in Beijing"))
    assert putin.reason == "different names"


@pytest.mark.parametrize("title", GENERIC)
def test_generic_headlines_never_cluster_on_the_title(title: str) -> None:
    h = headline(title)
    assert h.skip is not None
    assert not compare(h, headline(title)).same


def test_a_number_on_one_side_only_is_not_a_conflict() -> None:
    a = headline("Banjir rendam 5 desa di Jembrana, ratusan warga mengungsi")
    b = headline("Banjir rendam desa di Jembrana, ratusan warga mengungsi")
    assert compare(a, b).same


def test_short_headlines_need_a_closer_match() -> None:
    # Three content words each, two shared: enough for long headlines, not for these.
    assert not compare(headline("Bali floods kill"), headline("Bali floods recede")).same
    # Three words against four, all three shared (0.88): three or fewer words need 0.90.
    verdict = compare(headline("Bali floods kill"), headline("Bali floods kill dozens"))
    assert not verdict.same and verdict.reason == "headline score 0.88 < 0.90"
    # Four or five words need 0.10 more (0.73 here).
    verdict = compare(
        headline("Bali floods kill dozens villagers"),
        headline("Bali floods kill dozens, thousands flee"),
    )
    assert not verdict.same and verdict.reason == "headline score 0.73 < 0.80"
    # Six words or more need the threshold itself.
    long = compare(
        headline("Bali floods kill dozens across Jembrana district villages"),
        headline("Bali floods kill dozens across Jembrana, thousands flee"),
    )
    assert long.same, long


@pytest.mark.parametrize(
    "title",
    ["", "   ", "!!!???", "😀😀😀 🎉", "—", "x" * 100_000, "Gempa " * 20_000, "\u202e\u0000"],
)
def test_bad_titles_do_not_crash_or_cluster_on_nothing(title: str) -> None:
    h = headline(title)
    assert len(h.text) <= 1000  # a 100 KB title is cut before any work
    same = compare(h, headline(title)).same
    assert not same or len(h.words) >= 3  # a long repeated title may match itself, nothing less


def test_mixed_scripts_are_compared_by_their_main_script() -> None:
    ja = headline("トヨタ、新型EVを発表 2026年発売へ")
    en = headline("Toyota unveils new EV, on sale in 2026")
    assert ja.chars and not en.chars
    assert not compare(ja, en).same  # different languages: never the same headline


def test_google_news_related_headlines_are_strong_evidence() -> None:
    # Titles alone are too far apart; the Google News item lists the other one as related.
    gn = Evidence(
        headline("BMKG: gempa magnitudo 5,1 di Karangasem tak berpotensi tsunami"),
        related=(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"),),
    )
    outlet = Evidence(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"))
    assert not compare(gn.title, outlet.title).same
    verdict = judge(outlet, gn)
    assert verdict.same and verdict.reason == "listed as related by Google News"
    assert judge(gn, outlet).same  # either side may carry the list
    # The list never overrides a number guard.
    other = Evidence(headline("Gempa M4,2 Guncang Karangasem, Warga Berhamburan Keluar Rumah"))
    assert not judge(other, gn).same


def test_summaries_decide_a_borderline_title() -> None:
    a = headline("Gempa guncang Karangasem, warga panik berhamburan")
    b = headline("Gempa guncang Karangasem, warga diminta tetap tenang")
    assert not compare(a, b).same
    text = "Gempa bermagnitudo 5,1 mengguncang Kabupaten Karangasem, Bali, Senin pagi pukul 06.12"
    summary = headline(text, summary=True)
    other = headline("Sebuah gempa mengguncang Kabupaten Tabanan, Bali, kemarin", summary=True)
    assert judge(Evidence(a, summary), Evidence(b, summary)).reason.startswith("summaries agree")
    assert not judge(Evidence(a, summary), Evidence(b, other)).same


@settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_text_gives_a_verdict(a: str, b: str) -> None:
    v = compare(headline(a), headline(b))
    assert 0.0 <= v.score <= 1.0
    assert v.same == compare(headline(b), headline(a)).same
