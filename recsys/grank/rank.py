"""G-Rank scoring: node similarity from clicklogs, item scores, metadata-first ordering (sans-IO).

Vanilla G-Rank (Chotkan & Pouwelse): for a searcher ``i`` and every clicklog author ``n``

    S_i(n) = (κ_t + κ_m²) / κ_u

with κ_t the number of shared top-10 query terms, κ_m the number of shared clicked items and κ_u the
size of the union of clicked items; S is normalised so the most similar other author has 1, and the
searcher itself counts as 1. An item's score for query ``q`` is

    R_i(q) = Σ_n clicks_n(item, q) · (S_i(n) + F)

where ``clicks_n(item, q)`` counts n's clicks on ``item`` under queries sharing terms with ``q`` (an entry
whose query shares m of q's |q| terms counts m/|q|). Items whose metadata matches query terms rank
first (more matched terms first), then by score.

Reputation-weighted G-Rank (the fix asked for in Tribler issue #7290): given ``reputation`` (MeritRank
from the searcher's view), author n's contribution is multiplied by ``max(reputation[n], floor)``
(``reputation_floor`` defaults to 0: an author the searcher's trust graph does not reach, or that it
distrusts — negative MeritRank score — counts for nothing); the searcher's own clicks weigh like its
most trusted peer. With ``one_vote_per_author`` each author's clicks for a query are normalised to sum
to one vote, so a flooder's influence is its reputation, never its volume. A metadata match counts
only for items whose owner has a positive weight (the searcher, or reputation / floor above 0), so
Sybil-published metadata cannot claim the top tier. ``reputation_exponent`` < 1 flattens reputation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recsys.grank.clicklog import ClickEntry, tokenize
from recsys.grank.metadata import MetadataIndex


@dataclass(frozen=True)
class GRankSettings:
    """Parameters of G-Rank scoring."""

    top_terms: int = 10
    """How many of an author's most used query terms count for κ_t."""
    familiarity: float = 0.1
    """F: weight added to every author's normalised similarity, so strangers' clicks still count."""
    reputation_floor: float = 0.0
    """Weighted variant: weight of an author with no (or lower) reputation; 0 ignores such authors."""
    one_vote_per_author: bool = True
    """Weighted variant: normalise each author's clicks for a query to sum to one vote."""
    reputation_exponent: float = 1.0
    """Weighted variant: an author weighs reputation**exponent (< 1 flattens a peaked reputation)."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a parameter is out of range."""
        if self.top_terms < 1:
            raise ValueError("top_terms must be >= 1")
        if self.familiarity < 0:
            raise ValueError("familiarity (F) must be >= 0")
        if self.reputation_floor < 0:
            raise ValueError("reputation_floor must be >= 0")
        if self.reputation_exponent <= 0:
            raise ValueError("reputation_exponent must be > 0")


@dataclass(frozen=True)
class SearchResult:
    """One ranked item."""

    item_id: str
    """The item."""
    score: float
    """R_i(q) (reputation-weighted in the weighted variant)."""
    metadata_match: int
    """Number of query terms its metadata matched (0: ranked by clicks only)."""


class ClickIndex:
    """Per-author aggregates of clicklog entries for fast scoring; feed it every stored entry once."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._clicked: dict[str, set[str]] = {}
        self._terms: dict[str, Counter[str]] = {}
        self._by_term: dict[str, dict[str, Counter[str]]] = {}
        self._top_cache: dict[str, dict[int, frozenset[str]]] = {}

    @classmethod
    def from_entries(cls, entries: Iterable[ClickEntry]) -> ClickIndex:
        """An index of ``entries``."""
        index = cls()
        for entry in entries:
            index.add(entry)
        return index

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, entry: ClickEntry) -> bool:
        """Count ``entry`` once (by entry id); return False for an entry already counted."""
        entry_id = entry.entry_id
        if entry_id in self._seen:
            return False
        self._seen.add(entry_id)
        self._clicked.setdefault(entry.author, set()).add(entry.clicked)
        self._terms.setdefault(entry.author, Counter()).update(entry.query)
        self._top_cache.pop(entry.author, None)
        for term in entry.query:
            self._by_term.setdefault(term, {}).setdefault(entry.author, Counter())[entry.clicked] += 1
        return True

    def authors(self) -> list[str]:
        """Authors with at least one counted entry, sorted."""
        return sorted(self._clicked)

    def clicked_items(self, author: str) -> frozenset[str]:
        """Items ``author`` clicked at least once."""
        return frozenset(self._clicked.get(author, ()))

    def top_terms(self, author: str, n: int) -> frozenset[str]:
        """The author's ``n`` most used query terms (ties by term)."""
        per_author = self._top_cache.setdefault(author, {})
        if n not in per_author:
            counts = self._terms.get(author, Counter())
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            per_author[n] = frozenset(t for t, _ in ranked[:n])
        return per_author[n]

    def clicks(self, query: Sequence[str]) -> dict[str, dict[str, float]]:
        """author -> item -> clicks_n(item, q), each entry weighted by its share of q's terms."""
        terms = tuple(dict.fromkeys(query))
        out: dict[str, dict[str, float]] = {}
        for term in terms:
            for author, counter in self._by_term.get(term, {}).items():
                per_item = out.setdefault(author, {})
                for item, count in counter.items():
                    per_item[item] = per_item.get(item, 0.0) + count / len(terms)
        return out


def raw_similarity(index: ClickIndex, ego: str, other: str, top_terms: int) -> float:
    """Unnormalised ``(κ_t + κ_m²) / κ_u`` between ``ego`` and ``other`` (0 when neither clicked)."""
    mine, theirs = index.clicked_items(ego), index.clicked_items(other)
    union = len(mine | theirs)
    if union == 0:
        return 0.0
    kappa_t = len(index.top_terms(ego, top_terms) & index.top_terms(other, top_terms))
    kappa_m = len(mine & theirs)
    return (kappa_t + kappa_m**2) / union


def similarities(index: ClickIndex, ego: str, settings: GRankSettings | None = None) -> dict[str, float]:
    """S_i(n) for every author n, normalised so the most similar other author is 1; ego itself is 1."""
    settings = settings or GRankSettings()
    settings.validate()
    raw = {a: raw_similarity(index, ego, a, settings.top_terms) for a in index.authors() if a != ego}
    peak = max(raw.values(), default=0.0)
    sims = {a: (s / peak if peak > 0 else 0.0) for a, s in raw.items()}
    sims[ego] = 1.0
    return sims


def _author_weights(
    authors: Iterable[str], ego: str, reputation: Mapping[str, float], settings: GRankSettings
) -> dict[str, float]:
    for author, value in reputation.items():
        if not math.isfinite(value):
            raise ValueError(f"reputation of {author!r} must be a finite number, got {value!r}")

    def weight(value: float) -> float:
        return max(max(value, 0.0) ** settings.reputation_exponent, settings.reputation_floor)

    top = max((v for a, v in reputation.items() if a != ego), default=0.0)
    return {a: weight(top if a == ego else reputation.get(a, 0.0)) for a in authors}


def search(
    index: ClickIndex,
    metadata: MetadataIndex,
    ego: str,
    query: Sequence[str] | str,
    k: int | None = 10,
    settings: GRankSettings | None = None,
    reputation: Mapping[str, float] | None = None,
    sims: Mapping[str, float] | None = None,
) -> list[SearchResult]:
    """Rank items for ``query`` from ``ego``'s view; ``reputation`` given selects the weighted variant.

    ``sims`` may pass precomputed ``similarities(index, ego)`` (they change only when logs change).
    ``k=None`` returns the full ranking.
    """
    settings = settings or GRankSettings()
    settings.validate()
    terms = tokenize(query) if isinstance(query, str) else tuple(dict.fromkeys(query))
    if not terms:
        raise ValueError("query has no terms")
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1 or None, got {k}")
    sims = similarities(index, ego, settings) if sims is None else sims
    clicks = index.clicks(terms)
    weighted = reputation is not None
    weights = _author_weights(clicks, ego, reputation, settings) if weighted else {}
    scores: dict[str, float] = {}
    for author, per_item in clicks.items():
        factor = sims.get(author, 0.0) + settings.familiarity
        if weighted:
            factor *= weights[author]
            if settings.one_vote_per_author:
                factor /= sum(per_item.values())
        if factor <= 0:
            continue
        for item, count in per_item.items():
            scores[item] = scores.get(item, 0.0) + count * factor
    matches = metadata.match(terms)
    if weighted:
        owners = {item: metadata.get(item).owner for item in matches}
        owner_weight = _author_weights(set(owners.values()), ego, reputation, settings)
        matches = {item: m for item, m in matches.items() if owner_weight[owners[item]] > 0}
    candidates = set(matches) | {i for i, s in scores.items() if s > 0}
    ranked = sorted(candidates, key=lambda i: (-matches.get(i, 0), -scores.get(i, 0.0), i))
    chosen = ranked if k is None else ranked[:k]
    return [SearchResult(i, scores.get(i, 0.0), matches.get(i, 0)) for i in chosen]
