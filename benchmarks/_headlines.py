"""Labelled and unlabelled headline sets from ``../shared/fixtures/datasets`` (see SOURCES.md)."""

from __future__ import annotations

import csv
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "datasets"


def require() -> Path:
    if not DATASETS.is_dir():
        raise SystemExit(f"no datasets at {DATASETS}: these benchmarks need ../shared/fixtures")
    return DATASETS


def uci() -> list[tuple[str, str, str]]:
    """(title, publisher, story id) of the UCI News Aggregator rows, in file order."""
    path = require() / "uci-news-aggregator-first999" / "uci-news-aggregator.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return [(r["TITLE"], r["PUBLISHER"], r["STORY"]) for r in csv.DictReader(f)]


def sts() -> list[tuple[float, str, str]]:
    """(gold score 0-5, headline, headline) of every scored SemEval STS headline pair."""
    out = []
    for year in (2013, 2014, 2015, 2016):
        path = require() / "semeval-sts-headlines" / f"{year}.headlines.test.tsv"
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0].strip():
                out.append((float(parts[0]), parts[1], parts[2]))
    return out


def indonesian() -> list[tuple[str, str]]:
    """(outlet, headline) from the six Indonesian outlets, file order within each outlet."""
    out = []
    for path in sorted((require() / "narasipal-id-headlines").glob("*_master.csv")):
        outlet = path.name.split("_")[0]
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            for row in csv.DictReader(f):
                title = (row.get("article_title") or row.get("title") or "").strip()
                if title:
                    out.append((outlet, title))
    return out
