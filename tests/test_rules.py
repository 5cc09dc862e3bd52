"""The watch-rule language: what matches, what does not, errors with columns, hit offsets."""

from __future__ import annotations

import pytest

from monitor.errors import MonitorError
from monitor.normalize import fold, tokenize
from monitor.rules import Hit, Query, QueryError, RuleMatch, RuleSet, parse_query
from monitor.rules.reference import evaluate
from monitor.rules.syntax import Near

ALIASES = {
    "kim": ['"Kim Jong Un"', '"Kim Jong-un"', "김정은", "金正恩"],
    "rusia": ["Rusia", "Russia", "Rusland", "러시아", "俄罗斯"],
    "nested": ["@kim OR Pyongyang"],
}

KIM_TRAIN = "Ingin Temui Putin, Kim Jong Un Berangkat ke Rusia Pakai Kereta Khusus"

# (query, title, expected). The summary is empty unless the case says "title || summary".
CASES: list[tuple[str, str, bool]] = [
    # --- Indonesian: terms, phrases, boolean operators
    ('"Kim Jong Un" AND Putin', KIM_TRAIN, True),
    ('"Kim Jong Un" AND Putin', "Kim Jong Un inspects missile launch", False),
    ("Putin", "Putin's visit", True),
    ("Putin", "Putina bertemu warga", False),
    ("putin", "PUTIN DAN PRABOWO", True),
    ("Prabowo Putin", "Prabowo bertemu Putin di Moskow", True),  # juxtaposition is AND
    ("Prabowo Putin", "Prabowo bertemu Xi", False),
    ("Prabowo OR Putin", "Prabowo bertemu Xi", True),
    ("Putin -Prabowo", "Prabowo bertemu Putin", False),
    ("Putin NOT Prabowo", "Putin bertemu Xi", True),
    ("Putin AND NOT (Prabowo OR Xi)", "Putin bertemu Xi", False),
    ('Putin -"Kim Jong Un"', KIM_TRAIN, False),
    ("Ramos-Horta", "Jose Ramos Horta tiba di Dili", True),
    ("Ramos-Horta", "Ramos-Horta tiba", True),
    ("Ramos-Horta", "Horta Ramos tiba", False),
    ("COVID-19", "Kasus Covid 19 naik", True),
    ("ke-43", "HUT ke-43 Kota", True),
    ("and", "Tom and Jerry", True),  # lowercase and/or/not are words
    ("Tom or Jerry", "Tom Jerry", False),  # ... so this needs the word "or"
    ("Tom not Jerry", "Tom not Jerry", True),
    ("Rusia*", "Rusianya tegas", True),
    ("Rusia*", "Presiden Rusi", False),
    ("Kereta NEAR/3 Rusia", KIM_TRAIN, True),  # "Rusia Pakai Kereta": 1 word between
    ("Putin NEAR/2 Rusia", KIM_TRAIN, False),  # 6 words between
    ("Putin NEAR/6 Rusia", KIM_TRAIN, True),
    ('"Kim Jong Un" NEAR/0 Berangkat', KIM_TRAIN, True),
    ("Shoigu~", "Menhan Shoygu tiba", True),
    ("Shoigu~", "Menhan Syoigu tiba", True),
    ("Shoigu~", "Menhan Sergei tiba", False),
    ("Shoigu~0", "Menhan Shoygu tiba", False),
    ("Zelenskyy~", "Presiden Zelenskiy", True),  # 9 letters: 2 edits
    ("Diyarbakir", "Ledakan di Diyarbakır", True),
    ("Turkiye", "TÜRKİYE dan Indonesia", True),
    ("@kim", KIM_TRAIN, True),
    ("@kim AND @rusia", KIM_TRAIN, True),
    ("@nested", "Pyongyang menembakkan rudal", True),
    # --- English
    ("Jose", "José Mourinho sacked", True),
    ("Oresund", "Øresund bridge closed", True),
    ("Strasse", "Berliner Straße closed", True),
    ("straße", "Berliner Strasse closed", True),
    ('"Kim Jong Un"', "KIM JONG UN'S SISTER", True),
    ('"Kim Jong Un"', "Kim Jong-un visits Moscow", True),
    ('"Kim Jong Un"', "Kim Jong Il's son", False),
    ("finance", "ﬁnance ministers meet", True),  # NFKC ligature
    ("Putin", "Ｐｕｔｉｎ arrives", True),  # full-width
    ("missile launch OR rocket test", "Rocket test fails", True),
    ("(missile OR rocket) AND launch", "Rocket test fails", False),
    ('title:Putin AND summary:"Kim Jong Un"', "Putin || Kim Jong Un arrives", True),
    ("title:Putin", "Kim || Putin", False),
    ("summary:Putin", "Kim || Putin", True),
    ("Putin AND Russia", "Putin speaks || in Russia", True),  # AND combines across fields
    ('"Putin Russia"', "talks with Putin || Russia says", False),  # phrases never span fields
    ("Putin NEAR/5 Russia", "talks with Putin || Russia says", False),
    ("title:(Putin OR Xi) -summary:sport", "Xi meets || trade talks", True),
    ("title:(Putin OR Xi) -summary:sport", "Xi meets || sport diplomacy", False),
    ("title:(Kim NEAR/3 Putin)", "Kim to meet Putin", True),
    # --- Korean (no-space script: substring)
    ("푸틴", "푸틴과 김정은 회담", True),
    ("푸틴", "푸른 하늘", False),
    ("김정은 AND 푸틴", "김정은, 푸틴과 회담", True),
    ("김정은 -푸틴", "김정은 위원장 담화", True),
    ("@kim", "김정은 위원장", True),
    ("러시아", "러시아는", True),
    # --- Chinese
    ("普京", "普京会见金正恩", True),
    ("普京 金正恩", "普京会见金正恩", True),
    ('"普京 会见"', "普京会见金正恩", True),
    ("普京会见", "普京 会见", False),  # characters of one term must touch
    ("俄罗斯 OR 普京", "习近平访问俄罗斯", True),
    ("@rusia", "习近平访问俄罗斯", True),
    ("北京", "南京", False),
    # --- other scripts keep their marks
    ("ガザ", "カサ", False),
    ("ガザ", "ガザ地区", True),
    ("Й", "И", False),
    ("ปูติน", "ปูตินพบสี", True),
    ("ปูติน", "ปตน", False),
    ("नमस्ते", "नमस्ते दुनिया", True),
    ("नमस्ते", "नमसत दुनिया", False),
]


def _fields(title: str) -> dict[str, str]:
    head, _, summary = title.partition(" || ")
    return {"title": head, "summary": summary}


@pytest.mark.parametrize(("query", "title", "expected"), CASES)
def test_case_table(query: str, title: str, expected: bool) -> None:
    q = parse_query(query, ALIASES)
    fields = _fields(title)
    got = RuleSet([("r", q)]).match(fields)
    assert bool(got) is expected
    ok, hits = evaluate(q, fields)
    assert ok is expected
    if got:
        assert set(got[0].hits) == hits


def test_hits_locate_terms_in_the_original_text() -> None:
    q = parse_query('"Kim Jong Un" AND Putin')
    (m,) = RuleSet([("kim", q)]).match({"title": KIM_TRAIN})
    assert m == RuleMatch(
        "kim",
        (Hit("Putin", "title", 12, 17), Hit('"Kim Jong Un"', "title", 19, 30)),
    )
    assert KIM_TRAIN[12:17] == "Putin"
    assert KIM_TRAIN[19:30] == "Kim Jong Un"


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("strasse", "Die Straße ist zu"),
        ("Diyarbakir", "İstanbul ve Diyarbakır'da"),
        ("finance", "ﬁnance ﬁnance"),
        ("Putin", "Ｐｕｔｉｎ ｍｅｅｔｓ Putin"),
        ("cafe", "Cafe\u0301 de Flore"),  # decomposed accent
        ('"Kim Jong Un"', "Oh, KIM JONG-UN'S train"),
        ("푸틴", "김정은과 푸틴과"),
        ("turkiye", "Ⓣürkiye"),
        ("Rusia*", "RUSIA, Rusianya"),
    ],
)
def test_hit_offsets_fold_back_to_the_term(query: str, text: str) -> None:
    q = parse_query(query)
    (m,) = RuleSet([("r", q)]).match({"title": text})
    assert m.hits
    words = parse_query(query.rstrip("*")).root
    assert hasattr(words, "words")
    for h in m.hits:
        found = [w for w, _, _ in tokenize(text[h.start : h.end])]
        want = list(words.words)
        if query.endswith("*"):
            assert found[-1].startswith(want[-1])
        else:
            assert "".join(found) == "".join(want)
        assert fold(text[h.start : h.end]).strip() != ""


def test_filter_only_query_matches_every_item_of_the_feed() -> None:
    rs = RuleSet([("bali", parse_query("feed:beritabali")), ("antara", parse_query("feed:antara"))])
    assert [m.rule for m in rs.match({"title": "x", "feed": "beritabali"})] == ["bali"]
    assert [m.rule for m in rs.match({"title": "x", "feed": "Berita Bali"})] == []
    assert [m.rule for m in rs.match({"title": "", "feed": "antara"})] == ["antara"]


def test_source_and_lang_fields() -> None:
    rs = RuleSet(
        [
            ("dom", parse_query("source:antaranews.com Prabowo")),
            ("lang", parse_query("lang:id Prabowo")),
        ]
    )
    item = {"title": "Prabowo tiba", "source": "ANTARA News (antaranews.com)", "lang": "id-ID"}
    assert [m.rule for m in rs.match(item)] == ["dom", "lang"]
    assert rs.match({"title": "Prabowo tiba", "source": "tempo.co", "lang": "en"}) == []


def test_missing_and_unknown_fields_are_empty() -> None:
    rs = RuleSet([("r", parse_query("Putin"))])
    assert rs.match({}) == []
    assert rs.match({"body": "Putin"}) == []


def test_rules_are_reported_in_rule_order() -> None:
    rules = [(f"r{i}", parse_query(q)) for i, q in enumerate(["b", "a", "a b", "c~", "a -z"])]
    got = RuleSet(rules).match({"title": "a b c"})
    assert [m.rule for m in got] == ["r0", "r1", "r2", "r3", "r4"]


def test_many_rules_share_terms() -> None:
    rules = [(f"r{i}", parse_query(f"Putin AND word{i}")) for i in range(500)]
    rs = RuleSet(rules)
    assert [m.rule for m in rs.match({"title": "Putin says word7 and word300"})] == ["r7", "r300"]
    assert rs.candidates({"title": "Putin says word7"}) <= 2


def test_fuzzy_rules_are_indexed_too() -> None:
    rs = RuleSet(
        [
            ("f", parse_query("Shoigu~")),
            ("z", parse_query("Zelenskyy~2")),
            ("k", parse_query("Kim -Putin")),
        ]
    )
    assert rs.always_evaluated == 0
    assert rs.candidates({"title": "Sergei says"}) == 0
    assert rs.candidates({"title": "Syoigu says"}) == 1
    assert [m.rule for m in rs.match({"title": "Shoygu and Kim, Zelenski"})] == ["f", "z", "k"]


# --- parsing, printing, warnings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "printed"),
    [
        ("a b", "a AND b"),
        ("a b OR c", "(a AND b) OR c"),
        ("a OR b c", "a OR (b AND c)"),
        ("NOT a b", "NOT a AND b"),
        ("a -b", "a AND NOT b"),
        ('a -"b c"', 'a AND NOT "b c"'),
        ("title:(a OR b)", "title:a OR title:b"),
        ("title:(a NEAR/3 b)", "title:(a NEAR/3 b)"),
        ("(a OR b) NEAR/2 c", "(a OR b) NEAR/2 c"),
        ("Shoigu~", "Shoigu~1"),
        ("Zelenskyy~", "Zelenskyy~2"),
        ("Rusia*", "Rusia*"),
        ("((a))", "a"),
        ("a AND (b AND c)", "a AND b AND c"),
        ("Title:x", "title:x"),
        ("title: x", "title:x"),
        ("@kim", '"Kim Jong Un" OR "Kim Jong-un" OR 김정은 OR 金正恩'),
    ],
)
def test_canonical_print(query: str, printed: str) -> None:
    q = parse_query(query, ALIASES)
    assert str(q) == printed
    assert parse_query(printed) == q


def test_precedence_not_and_or() -> None:
    # NOT binds tighter than AND, AND tighter than OR.
    q = parse_query("NOT a b OR c")
    assert str(q) == "(NOT a AND b) OR c"


def test_mixing_and_or_without_parens_is_flagged() -> None:
    assert parse_query("a b OR c").mixes_and_or_without_parens
    assert parse_query("a AND b OR c").warnings()
    assert parse_query("a -b OR c").mixes_and_or_without_parens
    assert not parse_query("(a b) OR c").mixes_and_or_without_parens
    assert not parse_query("a (b OR c)").mixes_and_or_without_parens
    assert not parse_query("a OR b OR c").warnings()
    assert not parse_query("@kim Putin", ALIASES).mixes_and_or_without_parens


def test_query_is_immutable_and_hashable() -> None:
    q = parse_query("a (b OR c)")
    assert isinstance(q, Query)
    assert hash(q) == hash(parse_query("a AND (b OR c)"))
    with pytest.raises(AttributeError):
        q.root = q.root  # type: ignore[misc]


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("Putin AND", 10, "expected a term after AND"),
        ("Kim Jong OR AND x", 13, "expected a term after OR"),
        ("Putin AND   ", 13, "expected a term after AND"),
        ("a OR", 5, "expected a term after OR"),
        ("NOT", 4, "expected a term after NOT"),
        ("NOT sport", 1, "query only excludes (NOT/-); add a term it must contain"),
        ("-sport -bola", 1, "query only excludes (NOT/-); add a term it must contain"),
        ("a OR NOT b", 6, "query only excludes (NOT/-); add a term it must contain"),
        ('"Kim Jong', 1, "unterminated quote: expected a closing '\"'"),
        ('a "b c', 3, "unterminated quote: expected a closing '\"'"),
        ("()", 2, "empty parentheses: expected a term inside"),
        ("a ( )", 5, "empty parentheses: expected a term inside"),
        ("(a OR b", 8, "expected ')' to close the '(' at column 1"),
        ("a OR b)", 7, "unbalanced ')': no '(' to close"),
        ("a NEAR/x b", 8, "expected a number after NEAR/"),
        ("a NEAR/ b", 8, "expected a number after NEAR/"),
        ("a NEAR/3", 9, "expected a term after NEAR/3"),
        ("a NEAR/3 b NEAR/2 c", 12, "NEAR cannot be chained; combine two NEARs with AND"),
        ("(a b) NEAR/3 c", 1, "NEAR operands must be terms or phrases (or an OR of them)"),
        (
            "title:a NEAR/3 b",
            1,
            "NEAR operands take no field; put it before the group: title:(a NEAR/3 b)",
        ),
        ("ab*", 3, "a wildcard needs at least 3 letters before '*'"),
        ("a-b*", 4, "a wildcard needs at least 3 letters before '*'"),
        ("a*b", 2, "'*' is allowed only at the end of a term"),
        ("x~5", 3, "edit distance after '~' must be 0 to 2"),
        ("x~y", 3, "expected a number after '~'"),
        ('"Kim Jong"~', 11, "expected a term with letters or digits"),
        ("Kim-Jong~", 1, "'~' (fuzzy) applies to a single word in a script written with spaces"),
        ("@nope", 1, "unknown alias '@nope'"),
        ("Putin @", 8, "expected an alias name ([A-Za-z0-9_-]) after '@'"),
        ("Putin @bad!", 8, "expected an alias name ([A-Za-z0-9_-]) after '@'"),
        ("foo:bar", 1, "unknown field 'foo'; expected one of title, summary, source, feed, lang"),
        ("title:", 7, "expected a term after 'title:'"),
        ("title:-x", 7, "expected a term after 'title:'"),
        ("a - b", 4, "expected a term right after '-'"),
        ("--a", 2, "expected a term after '-'"),
        ("", 1, "expected a term"),
        ("   ", 4, "expected a term"),
        ('""', 2, "expected a term with letters or digits"),
        ("...", 1, "expected a term with letters or digits"),
        ("a AND OR b", 7, "expected a term after AND"),
        ("(" * 60 + "a" + ")" * 60, 51, "query nests deeper than 50 levels"),
        ("a NEAR/9999999 b", 8, "NEAR distance is too large"),  # 7 digits; 6 parse
        ("a~999999", 3, "edit distance after '~' must be 0 to 2"),
        ("a~9999999", 3, "expected a number after '~'"),  # 7 digits: not read as a number
        ("a NEAR/1 NEAR/2 b", 10, "expected a term after NEAR/1"),
        ("@", 2, "expected an alias name ([A-Za-z0-9_-]) after '@'"),
    ],
)
def test_error_columns(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query, ALIASES)
    assert info.value.column == column
    assert info.value.message == message  # the whole text: README "Errors" quotes them
    assert str(info.value) == f"query:1:{column}: {message}"
    assert isinstance(info.value, MonitorError)


def test_error_on_second_line_reports_line_and_column() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("Putin\nAND")
    assert (info.value.line, info.value.column) == (2, 4)
    assert str(info.value).startswith("query:2:4:")


def test_error_inside_alias_points_at_the_alias() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("Putin @bad", {"bad": ["x AND"]})
    assert info.value.column == 7
    assert "@bad" in info.value.message
    assert "expected a term after AND" in info.value.message
    with pytest.raises(QueryError, match="refers to itself"):
        parse_query("@a", {"a": ["@b"], "b": ["@a"]})


# --- pathological input completes (no timing assertion) ------------------------------------


def test_pathological_queries_and_texts_complete() -> None:
    long_a = "a" * 20_000
    rules = [
        ("wild", parse_query(" OR ".join(["aaa*"] * 200))),
        ("phrase", parse_query('"' + " ".join(["a"] * 300) + '" b')),
        ("fuzzy", parse_query("aaaaaaaa~2 OR aaa~")),
        ("longfuzzy", parse_query("a" * 200 + "~2")),
        ("near", parse_query("(a OR aa OR aaa) NEAR/1000 (aaaa OR a)")),
        ("deep", parse_query("(" * 40 + "a" + ")" * 40)),
    ]
    rs = RuleSet(rules)
    texts = [
        long_a,
        " ".join(["a"] * 20_000),
        "a-" * 10_000,
        "普" * 20_000,
        ("a" * 50 + " ") * 400,
        "".join(chr(0x61 + (i * 7919) % 26) for i in range(20_000)),  # one long, varied word
    ]
    for text in texts:
        rs.match({"title": text, "summary": text})
    with pytest.raises(QueryError):
        parse_query("(" * 10_000)
    with pytest.raises(QueryError):
        parse_query("NOT " * 10_000 + "a")
    with pytest.raises(QueryError):
        parse_query('"' * 10_001)
    parse_query("a" * 100_000 + "*")
    parse_query(" ".join(["x"] * 5_000))


def test_numbers_of_up_to_six_digits_are_read() -> None:
    near = parse_query("a NEAR/999999 b").root
    assert isinstance(near, Near) and near.distance == 999999
