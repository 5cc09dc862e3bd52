"""URL normalizers on real item links: which to build ``canonical_url`` on, and what ours costs.

Input: every item link of the feed captures in ``shared/fixtures/feeds`` (parsed with
``parse_feed``). Candidates: the ``canonical_url`` this project had before (the baseline, kept
below as it was), w3lib's ``canonicalize_url`` (fragments kept, as identity needs them) and
``safe_url_string``, url-normalize's ``url_normalize`` (when installed: it is not a dependency,
``pip install url-normalize`` to include it), and today's ``canonical_url`` (w3lib plus our rules).

For each: microseconds per URL (best of N passes over all links), how many links it changes, how
many distinct keys the links make; then the pairs of links that some candidate calls one item and
another calls two (the first 10), with each candidate's verdict.

Options: ``--repeat=N`` (default 5).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from monitor.normalize import canonical_url
from monitor.parse import ParseError, parse_feed

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "feeds"

_BASELINE_TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "ref_src",
        "ref_url",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
        "cmpid",
        "s_cid",
        "at_medium",
        "at_campaign",
    }
)


def baseline(url: str) -> str:
    """``canonical_url`` before w3lib: case, default port, fragment and tracking parameters."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc or parts.hostname is None:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host
    if port is not None and {"http": 80, "https": 443}.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{parts.netloc.rpartition('@')[0]}@{netloc}"
    path = parts.path or ("/" if scheme in ("http", "https") else "")

    def tracking(key: str) -> bool:
        k = unquote_plus(key).lower()
        return k in _BASELINE_TRACKING or k.startswith(("utm_", "pk_", "mtm_"))

    pairs = [p for p in parts.query.split("&") if p and not tracking(p.partition("=")[0])]
    return urlunsplit((scheme, netloc, path, "&".join(sorted(pairs)), ""))


def candidates() -> dict[str, Callable[[str], str]]:
    from w3lib.url import canonicalize_url, safe_url_string

    out: dict[str, Callable[[str], str]] = {
        "baseline (old canonical_url)": baseline,
        "w3lib canonicalize_url": lambda u: canonicalize_url(u, keep_fragments=True),
        "w3lib safe_url_string": safe_url_string,
    }
    try:
        from url_normalize import url_normalize
    except ImportError:
        print("url-normalize is not installed: pip install url-normalize to compare it too")
    else:
        out["url-normalize"] = lambda u: url_normalize(u) or u
    out["canonical_url (w3lib + our rules)"] = canonical_url
    return out


def links() -> list[str]:
    out: list[str] = []
    for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file()):
        try:
            feed = parse_feed(
                path.read_bytes(), feed_name=path.name, url="https://fixture.invalid/"
            )
        except ParseError:
            continue
        out.extend(item.link for item in feed.items if item.link)
    return out


def _best(fn: Callable[[str], str], urls: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for u in urls:
            fn(u)
        best = min(best, time.perf_counter() - start)
    return best


def main(options: list[str]) -> int:
    repeat = 5
    for option in options:
        if option.startswith("--repeat="):
            repeat = int(option.split("=", 1)[1])
    if not FIXTURES.is_dir():
        print(f"urls: no fixtures at {FIXTURES}; nothing to measure")
        return 0
    urls = links()
    cands = candidates()
    print(f"urls: {len(urls)} item links from {FIXTURES.name}/, {len(set(urls))} distinct")
    print(f"{'candidate':<36} {'us/URL':>7} {'changed':>8} {'keys':>6}")
    keys: dict[str, list[str]] = {}
    for name, fn in cands.items():
        seconds = _best(fn, urls, repeat)
        keys[name] = [fn(u) for u in urls]
        changed = sum(k != u for k, u in zip(keys[name], urls, strict=True))
        print(f"{name:<36} {seconds / len(urls) * 1e6:7.1f} {changed:8} {len(set(keys[name])):6}")
    # Pairs some candidate merges: every pair inside a group of links with one key.
    merged: set[tuple[int, int]] = set()
    for name in cands:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(keys[name]):
            groups[key].append(i)
        for members in groups.values():
            merged.update(itertools.combinations(members, 2))
    disagree = [
        (i, j)
        for i, j in sorted(merged)
        if urls[i] != urls[j] and len({keys[n][i] == keys[n][j] for n in cands}) > 1
    ]
    print(f"\n{len(disagree)} pairs on which candidates disagree (first 10; same = one item):")
    for i, j in disagree[:10]:
        print(f"  {urls[i]}\n  {urls[j]}")
        print(
            "    "
            + "; ".join(f"{n}: {'same' if keys[n][i] == keys[n][j] else 'apart'}" for n in cands)
        )
    return 0
