"""Whether two headlines tell the same story: pure functions, no state, no I/O.

Precision comes first. Merging two different events hides one of them from the user, which is
worse than a second alert about the same event; so "same story" needs every one of:

- **No conflicting numbers.** "Gempa M4,2 guncang Karangasem" and "Gempa M5,1 guncang
  Karangasem" are two earthquakes. A number on one side only is allowed (one outlet is less
  precise); a number on each side that the other lacks is a conflict. ``4,2`` and ``4.2`` are one
  number (decimal commas in Indonesian, points in English).
- **No conflicting names.** "Putin meets Kim in Pyongyang" and "Putin meets Xi in Beijing": each
  side names someone or somewhere the other does not. Names are the capitalised words of a
  sentence-case headline and the all-capital words of any headline (in a Title Case Headline
  capitals say nothing, and the word score below has to carry the decision).
- **Enough shared words**, against a threshold that rises as headlines get shorter: two
  four-word headlines sharing three words are less certain than two twelve-word ones sharing
  nine. Words are the rule language's folded words (``monitor.normalize``) less function words;
  words of five letters or more also match on their first five letters, a crude stem that
  joins "taper"/"tapering" and "sterilisation"/"sterilization" in English and Indonesian alike.
- **Informative titles only.** A headline of fewer than three content words ("Live updates",
  "Breaking news", "Berita terkini") never clusters on its title; it needs the Google News
  related-headline list to agree.

Scripts written without spaces (Han, Kana, Thai, Hangul…) are compared by characters: the words
are character bigrams and the score is rapidfuzz's ``ratio`` on the text without spaces.

Other evidence is weighed by :func:`judge`: a Google News item lists the headlines of the other
outlets' articles on its story (``FeedItem.related``), the strongest signal there is, and a
borderline title score is decided by the summaries.

Thresholds were chosen on labelled data (``python -m benchmarks dedup_quality``; the README's
"Story dedup" section has the figures), not guessed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from rapidfuzz import fuzz

from monitor.normalize import is_no_space_script, tokenize

__all__ = [
    "Evidence",
    "Headline",
    "Verdict",
    "compare",
    "headline",
    "judge",
]

MAX_TITLE_CHARS = 400  # a 100 KB "title" is cut here before any work, not compared whole
MAX_SUMMARY_CHARS = 600
MIN_WORDS = 3  # content words a spaced-script title needs to cluster on its own
MIN_CHARS = 6  # the same for a no-space-script title, in characters
STEM = 5  # words at least this long also match on their first STEM letters

# The default score a pair must reach, and how much more short headlines need (see _required).
DEFAULT_THRESHOLD = 0.70
SUMMARY_THRESHOLD = 0.60  # summaries decide a title score within SUMMARY_BAND below threshold
SUMMARY_BAND = 0.15
RELATED_THRESHOLD = 0.90  # a headline this close to one of the related headlines is the story

# Function words of the languages the project's users read most (English, Indonesian): they
# carry no story. A word missing here only makes two headlines look a little more alike.
_STOPWORDS = frozenset(
    """
    a an the and or but of to in on at for from by with as is are was were be been being it its
    this that these those into over after before about than then up down out off new says said
    say will would can could may might has have had not no yes his her their our your he she they
    we you i me us them who what when where why how all more most some any amid vs via per s
    yang dan di ke dari untuk dengan pada dalam ini itu atau juga akan tak tidak ada jadi oleh
    karena bagi para sebagai soal usai saat kata sudah telah masih bisa hingga agar lagi pun
    antara tentang terhadap setelah sebelum jelang kepada begini begitu sejak namun tapi ia
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
# Words that make a headline about *news* rather than about an event.
_GENERIC = frozenset(
    """
    live update updates breaking news latest today headlines highlights video videos photo
    photos watch berita terkini terbaru hari foto rpt wrapup focus report reports analysis
    corrected exclusive global markets terpopuler populer trending viral top
    """.split()  # noqa: SIM905
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DOTTED = re.compile(r"\b(?:[A-Z]\.){2,}")


@dataclass(frozen=True, slots=True)
class Headline:
    """What comparing needs of one headline, computed once per hit and kept in the index."""

    text: str
    """Folded content words joined by spaces (no-space scripts: the folded text, no spaces)."""
    words: tuple[str, ...]
    """Content words, in order, without repeats (no-space scripts: character bigrams)."""
    numbers: frozenset[str]
    entities: frozenset[str]
    """Folded names: acronyms, and capitalised words unless the headline is in Title Case."""
    chars: bool
    """Compared by characters (a no-space script)."""
    skip: str | None
    """Why the title alone cannot place it in a story (too short, generic, no words), or None."""
    stems: frozenset[str] = frozenset()
    """The stems of ``words``, computed once: every comparison reads them."""

    @property
    def comparable(self) -> bool:
        return self.skip is None


EMPTY = Headline("", (), frozenset(), frozenset(), False, "no title")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison: ``same`` with a score in [0, 1] and what decided it."""

    same: bool
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything known about one hit's story: its title, summary and related headlines."""

    title: Headline
    summary: Headline | None = None
    related: tuple[Headline, ...] = ()


def _number(raw: str) -> str:
    return raw.replace(",", ".")


def stem(word: str) -> str:
    """A word's crude stem: its first STEM letters (see the module docstring)."""
    return word[:STEM] if len(word) >= STEM and word.isalpha() else word


def headline(title: str, *, summary: bool = False) -> Headline:
    """Analyse one headline (or, with ``summary``, a summary: longer cap, never "generic")."""
    raw = title[: MAX_SUMMARY_CHARS if summary else MAX_TITLE_CHARS]
    raw = _DOTTED.sub(lambda m: m.group().replace(".", ""), raw)  # U.S. -> US, one word
    tokens = tokenize(raw)
    if not tokens:
        return (
            EMPTY if not summary else Headline("", (), frozenset(), frozenset(), False, "no words")
        )
    numbers = frozenset(_number(m) for m in _NUMBER.findall(raw))
    letters = [ch for ch in raw if ch.isalpha()]
    no_space = sum(1 for ch in letters if is_no_space_script(ch))
    if letters and no_space * 2 >= len(letters):
        text = "".join(w for w, _, _ in tokens)
        bigrams = tuple(dict.fromkeys(text[i : i + 2] for i in range(max(1, len(text) - 1))))
        skip = None if len(text) >= MIN_CHARS else f"shorter than {MIN_CHARS} characters"
        bigrams = tuple(map(sys.intern, bigrams))
        return Headline(text, bigrams, numbers, frozenset(), True, skip, frozenset(bigrams))
    words: list[str] = []
    acronyms: set[str] = set()
    capitals: set[str] = set()
    lower = shouted = cased = 0
    for word, start, end in tokens:
        original = raw[start:end]
        if len(word) < 2 and not word.isdigit():
            continue
        first = original[:1]
        if len(original) >= 4 and first.isalpha() and (first.isupper() or first.islower()):
            cased += 1
            shouted += original.isupper()
            lower += first.islower() and word not in _STOPWORDS
        acronym = len(original) >= 2 and original.isupper() and original.isalpha()
        if word in _STOPWORDS and not acronym:  # "US" is a name, "us" is not
            continue
        if word not in words:
            words.append(word)
        if word in _GENERIC or word.isdigit():
            continue
        if acronym:
            acronyms.add(word)  # an acronym names something in any casing style
        elif first.isupper():
            capitals.add(word)  # a capital in a sentence-case headline: a name
    # In a Title Case Headline (every longer word capitalised) or a script without case,
    # capitals say nothing; in an ALL-CAPS one, neither do the "acronyms".
    if cased and shouted * 10 >= cased * 6:
        acronyms.clear()
    title_case = cased == 0 or (cased >= 3 and lower == 0)
    entities = frozenset(acronyms if title_case else acronyms | capitals)
    content = [w for w in words if w not in _GENERIC]
    skip = None
    if summary:
        skip = None if content else "no words"
    elif not content:
        skip = "no words" if not words else "only generic words"
    elif len(content) < MIN_WORDS:
        skip = f"fewer than {MIN_WORDS} content words"
    # Interned: the index keeps thousands of headlines that share most of their words.
    kept = tuple(map(sys.intern, words))
    stems = frozenset(sys.intern(stem(w)) for w in kept)
    return Headline(" ".join(kept), kept, numbers, entities, False, skip, stems)


def _numbers_conflict(a: Headline, b: Headline) -> bool:
    return bool(a.numbers - b.numbers) and bool(b.numbers - a.numbers)


def _mentions(name: str, other: Headline) -> bool:
    """``name`` (or a form of it: Syria/Syrian, Israel/Israeli) occurs among ``other``'s words."""
    if stem(name) in other.stems:
        return True
    # "MtGox" and "Mt. Gox", "Al-Qaeda" and "Al Qaeda": the same name, written apart or not.
    return len(name) >= 4 and name in other.text.replace(" ", "")


def _names_conflict(a: Headline, b: Headline) -> bool:
    missing_a = any(not _mentions(n, b) for n in a.entities)
    missing_b = any(not _mentions(n, a) for n in b.entities)
    return missing_a and missing_b


def _word_score(a: Headline, b: Headline) -> float:
    """Shared content words over the shorter headline's, softened by the longer's (Dice-like)."""
    if not a.words or not b.words:
        return 0.0
    shared = len(a.stems & b.stems)
    # Counted in stems on both sides: "floods flooding" is one stem, and a headline must
    # score 1.0 against itself.
    shorter, longer = sorted((len(a.stems), len(b.stems)))
    return min(1.0, 0.5 * shared / shorter + 0.5 * shared / longer)


def _required(a: Headline, b: Headline, threshold: float) -> float:
    """The score two headlines must reach: higher when the shorter one has few words."""
    n = min(len(a.words), len(b.words))
    if a.chars:
        n //= 3  # bigrams per "word", roughly
    if n <= 3:
        return min(0.99, threshold + 0.2)
    if n <= 5:
        return min(0.99, threshold + 0.1)
    return threshold


def score(a: Headline, b: Headline) -> float:
    """How alike two headlines are, in [0, 1], before any guard."""
    if a.chars != b.chars:
        return 0.0  # a no-space-script headline and a spaced one are different languages
    if a.chars:
        return float(fuzz.ratio(a.text, b.text)) / 100.0
    return _word_score(a, b)


def compare(a: Headline, b: Headline, threshold: float = DEFAULT_THRESHOLD) -> Verdict:
    """Do two headlines alone tell the same story? (Both must be comparable.)"""
    if not a.comparable or not b.comparable:
        return Verdict(False, 0.0, f"not comparable: {a.skip or b.skip}")
    if _numbers_conflict(a, b):
        return Verdict(False, 0.0, "different numbers")
    if _names_conflict(a, b):
        return Verdict(False, 0.0, "different names")
    s = score(a, b)
    need = _required(a, b, threshold)
    if s >= need:
        return Verdict(True, s, "headlines agree")
    return Verdict(False, s, f"headline score {s:.2f} < {need:.2f}")


def judge(new: Evidence, old: Evidence, threshold: float = DEFAULT_THRESHOLD) -> Verdict:
    """Is ``new`` the story ``old`` tells? Titles first, then related headlines, then summaries.

    Guards (numbers, names) apply to every kind of evidence: a related-headline list or a
    similar summary never joins two headlines that name different numbers or people.
    """
    a, b = new.title, old.title
    if a.numbers and b.numbers and _numbers_conflict(a, b):
        return Verdict(False, 0.0, "different numbers")
    if a.words and b.words and _names_conflict(a, b):
        return Verdict(False, 0.0, "different names")
    # Google News groups articles itself: its listing of another outlet's headline is strong.
    for mine, theirs in ((a, old.related), (b, new.related)):
        if not mine.words:
            continue
        for r in theirs:
            close = r.chars == mine.chars and r.words and score(mine, r) >= RELATED_THRESHOLD
            if close and not _numbers_conflict(mine, r):
                return Verdict(True, 1.0, "listed as related by Google News")
    verdict = compare(a, b, threshold)
    if verdict.same or not (a.comparable and b.comparable):
        return verdict
    if verdict.reason.startswith("headline score") and new.summary and old.summary:
        need = _required(a, b, threshold)
        if verdict.score >= need - SUMMARY_BAND:
            s = score(new.summary, old.summary)
            if s >= SUMMARY_THRESHOLD:
                return Verdict(True, verdict.score, f"summaries agree ({s:.2f})")
    return verdict
