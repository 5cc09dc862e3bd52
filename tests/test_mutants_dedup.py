"""Story dedup cases that ``make mutants`` found unpinned: what a headline is reduced to, which
pairs join, with what score and reason, and what the story index hands back.

Hand-written headlines, real ``Evidence`` and ``StoryBook`` objects; the cases of
``test_similarity.py`` and ``test_stories.py`` say what each guard is for, these pin the edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from hashlib import blake2b

from monitor.dedup import Keyed, is_google_news, item_key, key_items
from monitor.dedup.similarity import (
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    Evidence,
    Headline,
    Verdict,
    compare,
    headline,
    judge,
    score,
    stem,
)
from monitor.dedup.stories import Candidate, Member, Placement, StoryBook, StoryIndex, evidence_of
from monitor.parse import FeedItem


def test_a_sentence_case_headline_keeps_its_words_numbers_and_names() -> None:
    h = headline("Harga BBM naik 10% mulai 1.000 rupiah di Bali")
    assert h == Headline(
        text="harga bbm naik 10 mulai 1 000 rupiah bali",
        words=("harga", "bbm", "naik", "10", "mulai", "1", "000", "rupiah", "bali"),
        numbers=frozenset({"10", "1.000"}),
        entities=frozenset({"harga", "bbm", "bali"}),
        chars=False,
        skip=None,
        stems=frozenset({"harga", "bbm", "naik", "10", "mulai", "1", "000", "rupia", "bali"}),
    )


def test_decimal_commas_and_points_are_one_number() -> None:
    assert headline("Gempa M5,1 guncang Karangasem").numbers == frozenset({"5.1"})
    assert headline("Gempa M5.1 guncang Karangasem").numbers == frozenset({"5.1"})
    assert headline("Rupiah 15.250,50 per dolar hari ini").numbers == frozenset({"15.250.50"})


def test_dotted_initials_are_one_name() -> None:
    h = headline("Two U.S. soldiers shot, killed by Afghan soldier")
    assert h.words == ("two", "us", "soldiers", "shot", "killed", "afghan", "soldier")
    assert h.entities == frozenset({"two", "us", "afghan"})
    # One initial with a point is not an acronym: "J." stays a letter, and letters are dropped.
    assert headline("Michael J. Fox returns to screen").words == (
        "michael",
        "fox",
        "returns",
        "screen",
    )


def test_acronyms_are_names_in_title_case_and_capitals_are_not() -> None:
    h = headline("NASA Launches Artemis Rocket From Florida")
    assert h.entities == frozenset({"nasa"})
    assert h.skip is None
    # Sentence case: every capitalised word names someone or somewhere.
    assert headline("NASA launches Artemis rocket from Florida").entities == frozenset(
        {"nasa", "artemis", "florida"}
    )
    # A stop word in capitals is still a name ("US"), in lower case it is not ("us").
    assert headline("US and UK warn Iran over Hormuz").entities == frozenset(
        {"us", "uk", "iran", "hormuz"}
    )
    assert "us" not in headline("Floods cut off roads near us in Bali").words


def test_an_all_caps_headline_names_nothing() -> None:
    h = headline("NASA LAUNCHES ARTEMIS ROCKET FROM FLORIDA")
    assert h.entities == frozenset()
    # Mostly capitals (six words in ten or more) counts as shouting; fewer does not.
    # Three of five cased words in capitals: their "acronyms" name nothing, "Florida" still does.
    assert headline("NASA LAUNCHES ARTEMIS rocket Florida").entities == frozenset({"florida"})
    assert headline("NASA LAUNCHES artemis rocket Florida").entities == frozenset(
        {"nasa", "launches", "florida"}
    )
    # Six of eleven is under six in ten: the capitals are acronyms still.
    fewer = headline("NASA LAUNCHES ARTEMIS ROCKET FROM FLORIDA today with crew aboard heading")
    assert {"nasa", "florida"} <= fewer.entities
    some = headline("NASA launches ARTEMIS rocket from Florida coast")
    assert some.entities == frozenset({"nasa", "artemis", "florida"})


def test_title_case_needs_three_longer_words() -> None:
    # Two cased words of four letters or more: not enough to call it Title Case.
    assert headline("Rain Hit Bali").entities == frozenset({"rain", "hit", "bali"})
    assert headline("Rain Hits Bali").entities == frozenset()
    assert headline("Rain Hit Bali 2026").entities == frozenset({"rain", "hit", "bali"})
    # No word of four letters or more: nothing says the case is a style, so no capitals count.
    assert headline("Xi, Kim and Abe met").entities == frozenset()
    assert headline("Xi and Kim met Putin").entities == frozenset({"xi", "kim", "putin"})
    assert headline("Heavy Rain Hits Bali").entities == frozenset()
    # One lower-case content word breaks Title Case; a lower-case stop word does not.
    assert headline("Heavy Rain Hits Bali Again").entities == frozenset()
    assert headline("Heavy Rain hits Bali Again").entities == frozenset(
        {"heavy", "rain", "bali", "again"}
    )
    assert headline("Heavy Rain Hits Bali from Lombok").entities == frozenset()


def test_generic_words_and_numbers_are_words_but_not_names() -> None:
    h = headline("Live Updates: Gempa 5 guncang Karangasem Bali")
    assert h.words == ("live", "updates", "gempa", "5", "guncang", "karangasem", "bali")
    assert h.entities == frozenset({"gempa", "karangasem", "bali"})
    assert h.skip is None


def test_why_a_title_alone_cannot_place_a_hit() -> None:
    assert headline("Bali floods").skip == "fewer than 3 content words"
    assert headline("Live news today").skip == "only generic words"
    assert headline("a b c d").skip == "no words"
    assert headline("!!!").skip == "no title"
    assert headline("Bali floods kill").skip is None
    # Generic words do not count towards the three.
    assert headline("Live updates: Bali floods").skip == "fewer than 3 content words"


def test_a_summary_is_never_generic_and_needs_one_content_word() -> None:
    assert headline("Bali", summary=True).skip is None
    assert headline("live news", summary=True).skip == "no words"
    assert headline("!!!", summary=True) == Headline(
        "", (), frozenset(), frozenset(), False, "no words"
    )
    assert headline("!!!").skip == "no title"


def test_titles_and_summaries_are_cut_at_their_caps() -> None:
    title = "gempa " * 100  # 600 characters
    words = ("w" + str(i) for i in range(1000))
    long = " ".join(words)
    assert len(headline(long).text) == len(" ".join(long[:MAX_TITLE_CHARS].split()))
    assert len(headline(long, summary=True).text) == len(" ".join(long[:MAX_SUMMARY_CHARS].split()))
    assert headline(title).words == ("gempa", "gemp")  # cut mid-word at 400


def test_no_space_scripts_are_character_bigrams() -> None:
    h = headline("東京で震度5強の地震")
    assert h.chars
    assert h.text == "東京で震度5強の地震"
    assert h.words == ("東京", "京で", "で震", "震度", "度5", "5強", "強の", "の地", "地震")
    assert h.stems == frozenset(h.words)
    assert h.numbers == frozenset({"5"})
    assert h.entities == frozenset()
    assert h.skip is None
    short = headline("トヨタ発表")
    assert short.skip == "shorter than 6 characters"
    assert headline("トヨタ新発表").skip is None  # six characters is enough
    assert headline("トヨタ").words == ("トヨ", "ヨタ")
    assert headline("ト").words == ("ト",)
    # A title half in a no-space script is compared by characters; less than half is not.
    assert headline("トヨタ EV").chars
    assert not headline("Toyota unveils EV トヨタ").chars
    assert headline("トヨタ Toy").chars  # exactly half
    assert not headline("Toyota トヨタ").chars  # a third
    assert not headline("Toyota EV トヨタ").chars  # a quarter


def test_stems_are_the_first_five_letters_of_longer_words() -> None:
    assert stem("tapering") == "taper"
    assert stem("taper") == "taper"
    assert stem("bali") == "bali"
    assert stem("12345678") == "12345678"  # numbers are not stemmed
    assert stem("covid19x") == "covid19x"


def test_shared_words_score_over_the_shorter_and_the_longer() -> None:
    a = headline("Bali floods kill")
    b = headline("Bali floods kill dozens")
    assert score(a, b) == 0.5 * 3 / 3 + 0.5 * 3 / 4
    assert score(b, a) == score(a, b)
    c = headline("Bali floods kill dozens across Jembrana district villages")
    d = headline("Bali floods kill dozens across Jembrana, thousands flee")
    assert score(c, d) == 0.5 * 6 / 8 + 0.5 * 6 / 8
    # A stem shared by two forms of a word counts once, on both sides: an identical headline
    # scores 1.0 against itself (it scored 0.8 when words were counted, and could alert twice).
    e = headline("Floods flooding Bali villages again")
    assert score(e, e) == 1.0
    assert compare(
        headline("Floods flooding Bali villages"), headline("Floods flooding Bali villages")
    ).same
    assert score(headline("Bali Bali Bali floods kill"), headline("Bali floods kill")) == 1.0
    assert score(headline("!!!"), a) == 0.0
    assert score(a, headline("!!!")) == 0.0


def test_no_space_and_spaced_headlines_score_zero() -> None:
    ja = headline("トヨタ、新型EVを発表 2026年発売へ")
    en = headline("Toyota unveils new EV, on sale in 2026")
    assert score(ja, en) == 0.0
    assert score(en, ja) == 0.0
    assert score(ja, ja) == 1.0
    other = headline("トヨタ、新型EVを発表")
    assert 0.0 < score(ja, other) < 1.0


def test_the_score_needed_rises_for_short_headlines() -> None:
    # Three words: threshold + 0.2; four or five: + 0.1; six or more: the threshold.
    three = compare(headline("Bali floods kill"), headline("Bali floods kill dozens"))
    assert three == Verdict(False, 0.875, "headline score 0.88 < 0.90")
    five = compare(
        headline("Bali floods kill dozens villagers"),
        headline("Bali floods kill dozens, thousands flee"),
    )
    assert five == Verdict(False, 0.7333333333333334, "headline score 0.73 < 0.80")
    four = compare(
        headline("Bali floods kill dozens"), headline("Bali floods kill dozens, thousands flee")
    )
    assert four.same and four.reason == "headlines agree"
    six = compare(
        headline("Bali floods kill dozens across Jembrana district villages"),
        headline("Bali floods kill dozens across Jembrana, thousands flee"),
    )
    assert six == Verdict(True, 0.75, "headlines agree")
    # A lower threshold is honoured, and the extra for short headlines is added to it.
    assert compare(headline("Bali floods kill"), headline("Bali floods kill dozens"), 0.6).same
    assert not compare(
        headline("Bali floods kill dozens across Jembrana district villages"),
        headline("Bali floods kill dozens across Jembrana, thousands flee"),
        0.8,
    ).same
    # The extra never asks for more than 0.99: an identical short headline still joins.
    assert compare(headline("Bali floods kill"), headline("Bali floods kill"), 0.95) == Verdict(
        True, 1.0, "headlines agree"
    )
    four_words = headline("Bali floods kill dozens")
    assert compare(four_words, four_words, 0.95) == Verdict(True, 1.0, "headlines agree")


def test_a_score_equal_to_what_is_needed_joins() -> None:
    # Eight words each, six shared: 0.75, at a threshold of 0.75.
    a = headline("Bali floods kill dozens across Jembrana district villages")
    b = headline("Bali floods kill dozens across Jembrana, thousands flee")
    assert compare(a, b, 0.75).same


def test_no_space_headlines_count_three_bigrams_a_word() -> None:
    a = headline("普京抵达平壤与金正恩举行会谈")
    b = headline("普京抵达平壤 与金正恩会谈")
    v = compare(a, b)
    assert v == Verdict(True, v.score, "headlines agree")
    assert 0.9 < v.score < 0.93
    # 13 and 10 bigrams: three "words" (10 // 3), so 0.90 is needed; 0.88 is not enough.
    near = compare(headline("東京都で大雨警報が発令された"), headline("東京都で大雨警報が発令"))
    assert near == Verdict(False, 0.88, "headline score 0.88 < 0.90")
    # 13 bigrams a side: four "words", 0.80 is needed; 0.86 is enough.
    four = compare(
        headline("東京都で大雨警報が発令された"), headline("東京都に大雪警報が発令された")
    )
    assert four == Verdict(True, 0.8571428571428572, "headlines agree")


def test_guards_say_why_and_score_zero() -> None:
    assert compare(
        headline("Gempa M4,2 guncang Karangasem"), headline("Gempa M5,1 guncang Karangasem")
    ) == Verdict(False, 0.0, "different numbers")
    assert compare(
        headline("Putin meets Kim in Pyongyang"), headline("Putin meets Xi in Beijing")
    ) == Verdict(False, 0.0, "different names")
    assert compare(headline("Live updates"), headline("Bali floods kill dozens")) == Verdict(
        False, 0.0, "not comparable: only generic words"
    )
    assert compare(headline("Bali floods kill dozens"), headline("Bali")) == Verdict(
        False, 0.0, "not comparable: fewer than 3 content words"
    )


def test_a_name_on_one_side_only_is_no_conflict() -> None:
    # "Jembrana" is only on one side, and every name of the other side is mentioned.
    v = compare(
        headline("Banjir rendam lima desa di Jembrana"),
        headline("Banjir rendam lima desa, warga mengungsi"),
    )
    assert v.reason != "different names"
    # Names match on their stem: Syria and Syrian.
    assert compare(
        headline("Syrian army retakes Aleppo from rebels"),
        headline("Syria army retakes Aleppo from rebels"),
    ).same


def test_names_written_apart_or_together_are_one() -> None:
    assert compare(
        headline("MtGox files for bankruptcy protection in Tokyo court"),
        headline("Mt. Gox files for bankruptcy protection in Tokyo court"),
    ).same
    # A name of four letters written apart: "MoMA" and "Mo MA".
    moma = compare(
        headline("Protesters gather outside MoMA in New York tonight"),
        headline("Protesters gather outside Mo MA in New York tonight"),
    )
    assert moma == Verdict(True, moma.score, "headlines agree")
    # Short names (under four letters) do not match inside other words.
    assert (
        compare(
            headline("Pyongyang warns Kim over missile tests near Seoul"),
            headline("Pyongyang warns Ki Mo over missile tests near Seoul"),
        ).reason
        == "different names"
    )


def test_a_number_on_each_side_conflicts_but_one_extra_does_not() -> None:
    a = headline("Death toll rises to 39 in Italy coach crash")
    b = headline("Death toll rises to 39, 12 injured in Italy coach crash")
    assert compare(a, b).reason != "different numbers"
    c = headline("Death toll rises to 40, 12 injured in Italy coach crash")
    assert compare(a, c).reason == "different numbers"


GN = Evidence(
    headline("BMKG: gempa magnitudo 5,1 di Karangasem tak berpotensi tsunami"),
    related=(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"),),
)
OUTLET = Evidence(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"))


def test_a_related_headline_joins_with_score_one() -> None:
    assert judge(OUTLET, GN) == Verdict(True, 1.0, "listed as related by Google News")
    assert judge(GN, OUTLET) == Verdict(True, 1.0, "listed as related by Google News")


def test_a_related_headline_must_be_close() -> None:
    # 0.90 is needed: a related headline sharing most but not all words is not the story.
    near = Evidence(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan"))
    assert not judge(near, GN).same
    loose = Evidence(GN.title, related=(headline("Gempa M5,1 Guncang Karangasem Bali"),))
    assert not judge(OUTLET, loose).same


def test_a_related_headline_at_exactly_the_threshold_joins() -> None:
    # Four words of five shared: 0.5 + 0.4 = 0.90.
    listing = Evidence(
        headline("hujan lebat landa wilayah Jembrana hingga pekan depan"),
        related=(headline("Banjir rendam Jembrana warga"),),
    )
    new = Evidence(headline("Banjir rendam Jembrana, warga mengungsi"))
    assert judge(new, listing) == Verdict(True, 1.0, "listed as related by Google News")


def test_a_related_headline_never_joins_across_scripts_or_numbers() -> None:
    ja = Evidence(headline("東京で震度5強の地震 けが人の情報なし"))
    gn = Evidence(
        headline("Strong quake shakes Tokyo, no injuries reported"),
        related=(headline("東京で震度5強の地震 けが人の情報なし"),),
    )
    assert judge(ja, gn).same  # a no-space related headline matches a no-space title
    en = Evidence(headline("Gempa M5,1 Guncang Karangasem, Warga Berhamburan Keluar Rumah"))
    cross = Evidence(GN.title, related=(headline("東京で震度5強の地震 けが人の情報なし"),))
    assert judge(en, cross) == compare(en.title, cross.title)
    # The related headline has another number than the new title (whose own title has none).
    plain = Evidence(headline("Gempa guncang Karangasem, warga berhamburan keluar rumah"))
    listing = Evidence(
        headline("BMKG: gempa di Karangasem tak berpotensi tsunami"),
        related=(headline("Gempa M4,2 guncang Karangasem, warga berhamburan keluar rumah"),),
    )
    assert judge(plain, listing).reason != "listed as related by Google News"
    ok = Evidence(
        listing.title,
        related=(headline("Gempa guncang Karangasem, warga berhamburan keluar rumah"),),
    )
    assert judge(plain, ok).reason == "listed as related by Google News"


def test_a_title_without_words_joins_only_through_its_related_headlines() -> None:
    bare = Evidence(headline("!!!"), related=(OUTLET.title,))
    assert judge(bare, OUTLET) == Verdict(True, 1.0, "listed as related by Google News")
    assert judge(OUTLET, bare) == Verdict(True, 1.0, "listed as related by Google News")
    alone = Evidence(headline("!!!"))
    assert judge(alone, OUTLET) == Verdict(False, 0.0, "not comparable: no title")
    assert judge(OUTLET, alone) == Verdict(False, 0.0, "not comparable: no title")


def test_guards_apply_before_related_headlines() -> None:
    gn = Evidence(
        headline("Putin meets Xi in Beijing for talks on trade"),
        related=(headline("Putin meets Kim in Pyongyang for talks on trade"),),
    )
    kim = Evidence(headline("Putin meets Kim in Pyongyang for talks on trade"))
    assert judge(kim, gn) == Verdict(False, 0.0, "different names")
    assert judge(gn, kim) == Verdict(False, 0.0, "different names")
    quake = Evidence(
        headline("Gempa M4,2 guncang Karangasem hari ini"),
        related=(headline("Gempa M5,1 guncang Karangasem hari ini"),),
    )
    other = Evidence(headline("Gempa M5,1 guncang Karangasem hari ini"))
    assert judge(other, quake) == Verdict(False, 0.0, "different numbers")


SUMMARY = headline(
    "Gempa bermagnitudo 5,1 mengguncang Kabupaten Karangasem, Bali, Senin pagi pukul 06.12",
    summary=True,
)
A = headline("Gempa guncang Karangasem, warga panik berhamburan")
B = headline("Gempa guncang Karangasem, warga diminta tetap tenang")


def test_summaries_decide_a_borderline_title_with_the_title_score() -> None:
    title = compare(A, B)
    assert not title.same and title.reason.startswith("headline score")
    v = judge(Evidence(A, SUMMARY), Evidence(B, SUMMARY))
    assert v == Verdict(True, title.score, "summaries agree (1.00)")


def test_summaries_need_both_sides_and_a_close_enough_title() -> None:
    assert judge(Evidence(A, SUMMARY), Evidence(B)) == compare(A, B)
    assert judge(Evidence(A), Evidence(B, SUMMARY)) == compare(A, B)
    # A title score more than 0.15 under what is needed: summaries are not asked.
    far = headline("Gempa guncang Karangasem, ribuan rumah rusak parah di Bali")
    assert compare(A, far).score < 0.65
    assert judge(Evidence(A, SUMMARY), Evidence(far, SUMMARY)) == compare(A, far)
    # Summaries never override a guard or an uncomparable title.
    short = headline("Gempa Karangasem")
    assert judge(Evidence(A, SUMMARY), Evidence(short, SUMMARY)) == compare(A, short)


def test_summaries_must_reach_their_own_threshold() -> None:
    half = headline(
        "Gempa bermagnitudo 5,1 mengguncang Kabupaten Karangasem, warga Tabanan Jembrana "
        "Buleleng diminta tenang",
        summary=True,
    )
    s = score(SUMMARY, half)
    v = judge(Evidence(A, SUMMARY), Evidence(B, half))
    assert v.same == (s >= 0.60)
    assert v.reason == (f"summaries agree ({s:.2f})" if s >= 0.60 else compare(A, B).reason)


# The story index: which members a new hit is judged against, and which story it joins.

QUAKE = "Gempa M5,1 guncang Karangasem, warga berhamburan keluar rumah"
QUAKE_TOO = "Gempa M5,1 guncang Karangasem Bali, warga berhamburan keluar"


def member(story: str, key: str, at: float, title: str, related: Sequence[str] = ()) -> Member:
    return Member(story, key, at, evidence_of(title, related=related), title)


def hit(key: str, title: str, summary: str | None = None, related: Sequence[str] = ()) -> Candidate:
    return Candidate(key, evidence_of(title, summary, related), title)


def test_evidence_keeps_the_summary_and_ten_related_headlines() -> None:
    ev = evidence_of(QUAKE, "Gempa mengguncang Karangasem", [f"Gempa {i} Bali" for i in range(12)])
    assert ev.title == headline(QUAKE)
    assert ev.summary == headline("Gempa mengguncang Karangasem", summary=True)
    assert ev.related == tuple(headline(f"Gempa {i} Bali") for i in range(10))
    assert evidence_of(QUAKE).summary is None
    assert evidence_of(QUAKE, "").summary is None


def test_a_summary_is_read_past_the_title_cap() -> None:
    # Summaries that differ in their first 400 characters and agree after them: read to 600
    # characters they agree (10 of 11 stems each side) and decide a borderline title.
    tail = " ".join(["banjir", "bandang", "rendam", "jembrana", "warga", "mengungsi"])
    tail += " " + " ".join(["sekolah", "diliburkan", "jalan", "putus"])
    one, two = "hujan " * 67 + tail, "angin " * 67 + tail
    assert len("hujan " * 67) == 402 and len(one) < 600
    a = evidence_of("Bali floods kill dozens across Jembrana district villages", one)
    b = evidence_of("Bali floods kill dozens across Jembrana, thousands flee", two)
    assert a.summary is not None and "putus" in a.summary.words
    assert judge(a, b, 0.9) == Verdict(True, 0.75, "summaries agree (0.91)")


def test_a_hit_joins_the_story_of_the_member_it_matches() -> None:
    book = StoryBook()
    first = member("s1", "s1", 100.0, QUAKE)
    book.add("gempa", first)
    p = book.place("gempa", hit("k2", QUAKE_TOO), since=0.0)
    assert p.joins and p.story == "s1" and p.matched == first
    assert p.verdict == judge(evidence_of(QUAKE_TOO), first.evidence)
    assert p.verdict.reason == "headlines agree"
    # Single link: a member that joined later is matched by its own words, named by its story.
    third = member("s1", "k3", 200.0, "Warga Karangasem berhamburan keluar rumah saat gempa M5,1")
    book.add("gempa", third)
    p = book.place(
        "gempa", hit("k4", "Warga Karangasem berhamburan keluar rumah saat gempa M5,1"), since=0.0
    )
    assert p.story == "s1" and p.matched == third


def test_a_hit_is_never_judged_against_itself() -> None:
    book = StoryBook()
    book.add("gempa", member("s1", "s1", 100.0, QUAKE))
    p = book.place("gempa", hit("s1", QUAKE), since=0.0)
    assert p == Placement(None, Verdict(False, 0.0, "no similar story"))
    assert not p.joins


def test_a_hit_that_joins_nothing_says_why() -> None:
    book = StoryBook()
    book.add("gempa", member("s1", "s1", 100.0, QUAKE))
    assert book.place("gempa", hit("k2", "Live updates"), since=0.0) == Placement(
        None, Verdict(False, 0.0, "not comparable: only generic words")
    )
    assert book.place(
        "gempa", hit("k2", "Harga BBM naik mulai besok pagi"), since=0.0
    ) == Placement(None, Verdict(False, 0.0, "no similar story"))


def test_the_best_scoring_member_wins() -> None:
    book = StoryBook()
    close = member("s2", "s2", 100.0, QUAKE)
    book.add("gempa", member("s1", "s1", 200.0, QUAKE_TOO))
    book.add("gempa", close)
    p = book.place("gempa", hit("k3", QUAKE + " pagi"), since=0.0)
    assert p.story == "s2" and p.matched == close
    assert p.verdict.score == score(headline(QUAKE + " pagi"), close.evidence.title)
    # On equal scores the first judged (the most recent) member is kept.
    book.add("gempa", member("s3", "s3", 300.0, QUAKE))
    assert book.place("gempa", hit("k4", QUAKE + " pagi"), since=0.0).story == "s3"


def test_pending_members_of_the_same_poll_are_judged_within_the_window() -> None:
    book = StoryBook()
    pending = [member("p1", "p1", 100.0, QUAKE)]
    p = book.place("gempa", hit("k2", QUAKE_TOO), since=50.0, pending=pending)
    assert p.story == "p1" and p.matched == pending[0]
    assert book.place("gempa", hit("k2", QUAKE_TOO), since=100.0, pending=pending).joins
    assert not book.place("gempa", hit("k2", QUAKE_TOO), since=101.0, pending=pending).joins
    # Pending members and indexed ones are judged together.
    book.add("gempa", member("s1", "s1", 100.0, "Harga BBM naik mulai besok pagi di Bali"))
    again = hit("k3", "Harga BBM naik mulai besok pagi di Bali")
    p = book.place("gempa", again, since=0.0, pending=pending)
    assert p.story == "s1"
    # The rule having an index does not hide the pending members from a hit.
    p = book.place("gempa", hit("k4", QUAKE_TOO), since=0.0, pending=pending)
    assert p.story == "p1" and p.matched == pending[0]


def test_a_member_with_the_hits_own_key_is_passed_over_not_the_end() -> None:
    book = StoryBook()
    pending = [member("k2", "k2", 100.0, QUAKE), member("p1", "p1", 100.0, QUAKE)]
    p = book.place("gempa", hit("k2", QUAKE_TOO), since=0.0, pending=pending)
    assert p.story == "p1" and p.matched == pending[1]


def test_the_threshold_is_passed_to_the_judge() -> None:
    book = StoryBook()
    book.add("gempa", member("s1", "s1", 100.0, QUAKE))
    assert book.place("gempa", hit("k2", QUAKE_TOO), since=0.0).joins
    assert not book.place("gempa", hit("k2", QUAKE_TOO), since=0.0, threshold=0.95).joins


def test_candidates_share_two_indexed_words_unless_the_hit_has_one() -> None:
    index = StoryIndex()
    one = member("s1", "s1", 100.0, "Gempa guncang Karangasem pagi")
    flood = member("s2", "s2", 100.0, "Banjir rendam Jembrana")
    index.add(one)
    index.add(flood)
    # Two of the hit's words are indexed: a member must share both.
    assert index.candidates(evidence_of("Banjir landa Karangasem hari"), 0.0) == []
    assert index.candidates(evidence_of("Gempa landa Karangasem hari"), 0.0) == [one]
    # Only one of the hit's words is indexed anywhere: that one is enough.
    assert index.candidates(evidence_of("Longsor landa Karangasem hari"), 0.0) == [one]
    assert index.candidates(evidence_of("Lombok"), 0.0) == []


def test_candidates_come_by_shared_words_then_most_recent_first() -> None:
    index = StoryIndex()
    old = member("s1", "s1", 100.0, "Gempa guncang Karangasem pagi ini")
    new = member("s2", "s2", 200.0, "Gempa guncang Tabanan siang")
    most = member("s3", "s3", 50.0, "Gempa guncang Karangasem pagi tadi")
    for m in (old, new, most):
        index.add(m)
    ev = evidence_of("Gempa guncang Karangasem pagi")
    assert index.candidates(ev, 0.0) == [most, old, new]
    assert index.candidates(ev, 100.0) == [old, new]  # the window is measured from ``at``
    assert index.candidates(ev, 201.0) == []


def test_related_headlines_are_indexed_and_queried() -> None:
    index = StoryIndex()
    gn = member("s1", "s1", 100.0, "BMKG pastikan tak ada tsunami", related=[QUAKE])
    index.add(gn)
    assert index.candidates(evidence_of("Warga Karangasem berhamburan keluar"), 0.0) == [gn]
    other = member("s2", "s2", 100.0, "Harga BBM naik mulai besok")
    index.add(other)
    ev = evidence_of("Harga cabai", related=["Harga BBM naik mulai besok"])
    assert index.candidates(ev, 0.0) == [other]


def test_at_most_twenty_candidates_are_judged() -> None:
    index = StoryIndex()
    members = [member(f"s{i}", f"s{i}", float(i), QUAKE) for i in range(30)]
    for m in members:
        index.add(m)
    assert index.candidates(evidence_of(QUAKE), 0.0) == members[::-1][:20]
    # The newest members are dropped by the window, the next ones fill the twenty.
    assert index.candidates(evidence_of(QUAKE), 0.0)[0].at == 29.0
    assert len(index.candidates(evidence_of(QUAKE), 25.0)) == 5


def test_only_the_rarest_six_words_pick_candidates() -> None:
    index = StoryIndex()
    common = "Gempa guncang Karangasem warga panik berhamburan keluar rumah"
    for i in range(5):
        index.add(member(f"c{i}", f"c{i}", float(i), common))
    rare = member("r", "r", 0.0, "Tsunami Bali Lombok Sumbawa Flores Timor Sumba")
    index.add(rare)
    # Seven rare words and eight common ones: the six rarest pick, so the common members,
    # which share none of them, are not candidates.
    ev = evidence_of("Tsunami Bali Lombok Sumbawa Flores Timor Sumba " + common)
    assert index.candidates(ev, 0.0) == [rare]


def test_expiry_forgets_old_members_and_keeps_the_rest_findable() -> None:
    book = StoryBook()
    ms = [member(f"s{i}", f"s{i}", float(i), QUAKE) for i in range(10)]
    book.load(("gempa", m) for m in ms)
    book.add("other", member("o", "o", 0.0, QUAKE))
    assert len(book) == 11
    assert book.expire(3.0) == 4  # s0, s1, s2 and "o": joined before 3.0
    assert len(book) == 7
    index = book.indexes["gempa"]
    assert index.live == 7
    assert index.candidates(evidence_of(QUAKE), 0.0) == ms[3:][::-1]
    assert book.expire(3.0) == 0
    # Past half dropped, the postings are rebuilt from the live members only.
    assert book.expire(8.0) == 5
    assert index.members == ms[8:]
    assert index.live == 2
    assert all(pos in (0, 1) for posts in index.postings.values() for pos in posts)
    assert index.candidates(evidence_of(QUAKE), 0.0) == ms[8:][::-1]
    assert book.place("gempa", hit("k", QUAKE_TOO), since=0.0).story == "s9"


def test_expiry_below_half_keeps_the_slots() -> None:
    index = StoryIndex()
    ms = [member(f"s{i}", f"s{i}", float(i), QUAKE) for i in range(4)]
    for m in ms:
        index.add(m)
    assert index.expire(2.0) == 2  # half dropped: no rebuild yet
    assert index.members == [None, None, ms[2], ms[3]]
    assert index.expire(3.0) == 1
    assert index.members == [ms[3]]  # one live of four: rebuilt
    assert index.postings == {w: [0] for w in ms[3].evidence.title.stems}


# Item identity: keys are stored, so they must not change between versions either.


ITEM = FeedItem(
    id="https://e.org/a",
    link="https://e.org/a?utm_source=rss",
    title="Gempa di Bali",
    summary="Gempa mengguncang Bali pagi ini.",
    published=None,
    source="Antara",
    source_url=None,
    feed="antara",
    lang=None,
)


def test_item_keys_are_stable_and_say_which_identity_was_used() -> None:
    gn = replace(ITEM, link="https://news.google.com/rss/articles/CBMiAAA?oc=5")
    assert item_key(ITEM) == "url:" + blake2b(b"https://e.org/a", digest_size=16).hexdigest()
    assert item_key(gn) == "gn:" + blake2b(b"gempa di bali\x1fantara", digest_size=16).hexdigest()
    bare = replace(ITEM, link=None, id="sha256:0123")
    assert item_key(bare) == "hl:" + blake2b(b"gempa di bali\x1fantara", digest_size=16).hexdigest()
    guid = replace(ITEM, link=None, id="guid-1")
    assert item_key(guid) == "id:" + blake2b(b"guid-1", digest_size=16).hexdigest()


def test_google_news_is_recognised_by_its_host_only() -> None:
    assert is_google_news(replace(ITEM, link="https://news.google.com/rss/articles/x"))
    assert not is_google_news(ITEM)
    assert not is_google_news(replace(ITEM, link=None))
    assert not is_google_news(replace(ITEM, link="https://news.google.com.evil.example/x"))


def test_a_google_news_item_without_title_or_publisher() -> None:
    gn = replace(ITEM, link="https://news.google.com/rss/articles/CBMiAAA?oc=5", title="")
    assert item_key(gn).startswith("url:")
    anon = replace(ITEM, link="https://news.google.com/rss/articles/CBMiAAA?oc=5", source=None)
    assert item_key(anon) == "gn:" + blake2b(b"gempa di bali\x1f", digest_size=16).hexdigest()
    bare = replace(ITEM, link=None, id="sha256:0123", source=None)
    assert item_key(bare) == "hl:" + blake2b(b"gempa di bali\x1f", digest_size=16).hexdigest()
    # A fallback id without a title is keyed by that id.
    untitled = replace(ITEM, link=None, id="sha256:0123", title="")
    assert item_key(untitled) == "id:" + blake2b(b"sha256:0123", digest_size=16).hexdigest()


def test_key_items_keeps_the_first_of_each_key_in_order() -> None:
    a = replace(ITEM, title="first")
    again = replace(ITEM, title="second", link="https://e.org/a?utm_medium=x")
    b = replace(ITEM, link="https://e.org/b")
    keyed = key_items((a, b, again))
    assert keyed == [Keyed(item_key(a), a), Keyed(item_key(b), b)]
    assert key_items([]) == []


def test_summaries_at_exactly_their_edges_decide() -> None:
    # At a threshold of 0.90 the title score 0.75 is exactly 0.15 under what is needed, and the
    # summaries share three of five words: 0.60, exactly their threshold.
    a = headline("Bali floods kill dozens across Jembrana district villages")
    b = headline("Bali floods kill dozens across Jembrana, thousands flee")
    one = headline("gempa guncang karangasem pagi tadi", summary=True)
    two = headline("gempa guncang karangasem siang kemarin", summary=True)
    assert judge(Evidence(a, one), Evidence(b, two), 0.9) == Verdict(
        True, 0.75, "summaries agree (0.60)"
    )


def test_names_on_each_side_that_the_other_lacks_conflict() -> None:
    # Five of seven words shared (0.71 would join): the names keep them apart.
    a = headline("resmikan bendungan baru, Jokowi puji warga Bali")
    b = headline("resmikan bendungan baru, Prabowo puji warga Lombok")
    assert compare(a, b) == Verdict(False, 0.0, "different names")
    assert judge(Evidence(a), Evidence(b)) == Verdict(False, 0.0, "different names")


def test_an_old_member_is_found_past_newer_stories_that_share_its_common_words() -> None:
    """A late outlet's copy of an older story joins it, though 300 newer headlines of other
    stories share all its common words: the candidates are ranked by every word they share,
    counted on the member, not within the most recent postings of each word (where the old
    member has only its rare word, and would not even count as a candidate)."""
    book = StoryBook()
    title = "Gempa guncang pesisir {}, warga mengungsi"
    book.add("gempa", member("old", "old", 100.0, title.format("Tambora")))
    for i in range(300):
        name = "".join("kalumirosetawinopegu"[2 * ((i // 10**k) % 10) :][:2] for k in range(3))
        book.add("gempa", member(f"s{i}", f"s{i}", 200.0 + i, title.format(name.title() + "ng")))
    p = book.place("gempa", hit("late", title.format("Tambora")), since=0.0)
    assert p.story == "old", p


def test_adding_a_member_twice_indexes_it_once() -> None:
    # A daemon on a shared state reads its own members back when it catches up on the others'.
    index = StoryIndex()
    m = member("s1", "s1", 100.0, QUAKE)
    index.add(m)
    index.add(m)
    assert index.live == 1 and index.members == [m]
    assert index.candidates(evidence_of(QUAKE), 0.0) == [m]


def test_an_expired_members_key_can_be_indexed_again() -> None:
    index = StoryIndex()
    index.add(member("s1", "k", 1.0, QUAKE))
    index.add(member("s2", "k2", 5.0, QUAKE))
    index.add(member("s3", "k3", 6.0, QUAKE))
    assert index.expire(2.0) == 1
    again = member("s4", "k", 7.0, QUAKE)
    index.add(again)
    assert again in index.candidates(evidence_of(QUAKE), 0.0)


def test_the_members_of_a_rare_word_at_the_recount_limit_are_counted_on_all_words() -> None:
    # Fifty old members hold the rare word; two hundred newer ones push their common words out
    # of the most recent postings. Recounted, the old ones rank first; not, they share one word.
    index = StoryIndex()
    title = "Zlatovar gempa guncang Karangasem"
    old = [member(f"o{i}", f"o{i}", float(i), title) for i in range(50)]
    for m in old:
        index.add(m)
    for i in range(200):
        index.add(member(f"n{i}", f"n{i}", 100.0 + i, f"Gempa guncang Karangasem desa{i}"))
    got = index.candidates(evidence_of("Zlatovar gempa guncang Karangasem lagi"), 0.0)
    assert got[0] in old
