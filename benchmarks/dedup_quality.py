"""Story dedup quality on labelled data: pairwise precision and recall of "same story".

``python -m benchmarks dedup_quality [--thresholds=0.6,0.7,0.8]``

- **UCI News Aggregator** (all 999 rows, 498,501 pairs): two rows are the same story when they
  share a STORY id. Measured twice: *direct*, each pair judged by itself
  (:func:`monitor.dedup.similarity.compare`), and *clustered*, rows placed one by one in file
  order into a real ``StoryBook`` as the daemon does (single link: a row joins the story of any
  member it matches), then every pair in one story counts as "same".
- **SemEval STS headlines** (every scored pair of 2013-2016): "same" when the human score is at
  least 4.0 ("mostly equivalent"); also shown at 3.0.
- **Indonesian headlines** (six outlets, one topic, no labels): how many headlines join a story
  with another outlet's, and a seeded sample of 20 joined pairs to read.

The first 20 wrong pairs of each labelled set are printed. No figure here is asserted by a test.
"""

from __future__ import annotations

import random
import time

from benchmarks import _headlines
from monitor.dedup.similarity import DEFAULT_THRESHOLD, Headline, compare, headline
from monitor.dedup.stories import Candidate, Member, StoryBook
from monitor.dedup.stories import evidence_of as evidence


def _prf(tp: int, fp: int, positives: int) -> str:
    precision = tp / (tp + fp) if tp + fp else 1.0
    return f"precision {precision:.3f}  recall {tp / positives:.4f}  (tp {tp}, fp {fp})"


def uci(thresholds: list[float]) -> None:
    rows = _headlines.uci()
    heads = [headline(t) for t, _, _ in rows]
    labels = [s for _, _, s in rows]
    n = len(rows)
    positives = sum(labels[i] == labels[j] for i in range(n) for j in range(i + 1, n))
    print(f"UCI News Aggregator: {n} rows, {n * (n - 1) // 2} pairs, {positives} same-story")
    for th in thresholds:
        tp = fp = 0
        wrong: list[str] = []
        for i in range(n):
            for j in range(i + 1, n):
                if compare(heads[i], heads[j], th).same:
                    if labels[i] == labels[j]:
                        tp += 1
                    else:
                        fp += 1
                        wrong.append(f"{rows[i][0]!r} ~ {rows[j][0]!r}")
        mark = "  <- default" if th == DEFAULT_THRESHOLD else ""
        print(f"  direct    @ {th:.2f}: {_prf(tp, fp, positives)}{mark}")
        if th == DEFAULT_THRESHOLD:
            shown = wrong[:20]
    stories = _cluster([(t, p) for t, p, _ in rows], DEFAULT_THRESHOLD)
    tp = fp = 0
    for i in range(n):
        for j in range(i + 1, n):
            if stories[i] == stories[j]:
                tp += labels[i] == labels[j]
                fp += labels[i] != labels[j]
    print(
        f"  clustered @ {DEFAULT_THRESHOLD:.2f}: {_prf(tp, fp, positives)}, "
        f"{len(set(stories))} stories for {len(set(labels))} labelled"
    )
    print(f"  wrong pairs at {DEFAULT_THRESHOLD:.2f} (first 20 of the direct run):")
    for w in shown:
        print(f"    {w}")


def _cluster(items: list[tuple[str, str]], threshold: float) -> list[str]:
    book = StoryBook()
    out = []
    for n, (title, source) in enumerate(items):
        ev = evidence(title)
        key = str(n)
        placement = book.place(
            "r", Candidate(key, ev, title, source), since=-1.0, threshold=threshold
        )
        story = placement.story or key
        book.add("r", Member(story, key, 0.0, ev, title, source))
        out.append(story)
    return out


def sts(thresholds: list[float]) -> None:
    pairs = _headlines.sts()
    parsed: list[tuple[float, Headline, Headline, str, str]] = [
        (s, headline(a), headline(b), a, b) for s, a, b in pairs
    ]
    print(f"\nSemEval STS headlines: {len(pairs)} scored pairs")
    for cut in (4.0, 3.0):
        positives = sum(s >= cut for s, *_ in parsed)
        for th in thresholds:
            tp = fp = 0
            wrong = []
            for s, ha, hb, a, b in parsed:
                if compare(ha, hb, th).same:
                    if s >= cut:
                        tp += 1
                    else:
                        fp += 1
                        wrong.append(f"{s:.1f} {a!r} ~ {b!r}")
            mark = "  <- default" if th == DEFAULT_THRESHOLD else ""
            print(f"  same = score >= {cut}: @ {th:.2f}: {_prf(tp, fp, positives)}{mark}")
            if th == DEFAULT_THRESHOLD and cut == 4.0:
                shown = wrong[:20]
    print(f"  wrong pairs at {DEFAULT_THRESHOLD:.2f}, same = score >= 4.0 (first 20):")
    for w in shown:
        print(f"    {w}")


def indonesian() -> None:
    rows = _headlines.indonesian()
    rng = random.Random(20261203)
    sample = rng.sample(rows, min(5000, len(rows)))
    started = time.perf_counter()
    stories = _cluster([(t, o) for o, t in sample], DEFAULT_THRESHOLD)
    elapsed = time.perf_counter() - started
    by_story: dict[str, list[int]] = {}
    for i, s in enumerate(stories):
        by_story.setdefault(s, []).append(i)
    multi = [m for m in by_story.values() if len(m) > 1]
    cross = [m for m in multi if len({sample[i][0] for i in m}) > 1]
    joined = sum(len(m) - 1 for m in multi)
    print(
        f"\nIndonesian headlines (no labels): a seeded sample of {len(sample)} of {len(rows)}, "
        f"placed in {elapsed:.1f} s: {joined} joined a story, {len(multi)} stories of 2+ "
        f"members, {len(cross)} of them across outlets"
    )
    print("  20 joined pairs to read (member ~ the story's first headline):")
    pairs = [(sample[m[0]], sample[i]) for m in multi for i in m[1:]]
    for (o1, t1), (o2, t2) in rng.sample(pairs, min(20, len(pairs))):
        print(f"    [{o2}] {t2!r} ~ [{o1}] {t1!r}")


def main(options: list[str]) -> int:
    thresholds = [0.6, DEFAULT_THRESHOLD, 0.8, 0.9]
    for opt in options:
        if opt.startswith("--thresholds="):
            thresholds = [float(x) for x in opt.split("=", 1)[1].split(",")]
    uci(thresholds)
    sts(thresholds)
    indonesian()
    return 0
