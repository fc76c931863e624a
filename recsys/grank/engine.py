"""One node's G-Rank state in one object: its clicklog store, click index, item metadata (sans-IO).

The daemon owns one ``GRankEngine``. Everything that comes in (local clicks and items, gossiped entries
and metadata whose signatures the protocol layer checked) goes through it; what it returns is what the
daemon signs, persists and sends. On restart, replay the persisted entries and metadata with
``accept_entries`` / ``accept_metadata``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.grank.clicklog import (
    MAX_SHOWN,
    AddResult,
    ClickEntry,
    ClickLogSettings,
    ClickLogStore,
    tokenize,
)
from recsys.grank.gossip import (
    GossipSettings,
    PullRequest,
    PullResponse,
    answer_pull,
    bootstrap_response,
    make_pull_request,
)
from recsys.grank.metadata import ItemMetadata, MetadataIndex
from recsys.grank.rank import ClickIndex, GRankSettings, SearchResult, search, similarities

REMEMBERED_SEARCHES = 64
"""How many recent searches' shown lists ``click`` can refer to."""


@dataclass(frozen=True)
class GRankEngineSettings:
    """Settings of a node's G-Rank engine."""

    clicklog: ClickLogSettings = field(default_factory=ClickLogSettings)
    """Store limits."""
    gossip: GossipSettings = field(default_factory=GossipSettings)
    """Pull gossip caps."""
    rank: GRankSettings = field(default_factory=GRankSettings)
    """Scoring parameters."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a part is out of range."""
        self.clicklog.validate()
        self.gossip.validate()
        self.rank.validate()


class GRankEngine:
    """Clicklogs, metadata and search for the node ``me``."""

    def __init__(self, me: str, settings: GRankEngineSettings | None = None) -> None:
        self.me = me
        self.settings = settings or GRankEngineSettings()
        self.settings.validate()
        self.store = ClickLogStore(self.settings.clicklog)
        self.index = ClickIndex()
        self.metadata = MetadataIndex()
        self._sims: dict[str, float] | None = None
        self._last_shown: dict[tuple[str, ...], tuple[str, ...]] = {}

    # ---- local actions ---------------------------------------------------------------------------

    def click(self, query: str | Sequence[str], item: str, timestamp_ms: int) -> ClickEntry:
        """Record our click on ``item`` for ``query`` and return the new entry (sign, persist, serve it).

        The shown list is the last ``search`` result for the same query when it contained ``item``,
        otherwise just ``(item,)``.
        """
        terms = _terms(query)
        shown = self._last_shown.get(terms, ())
        shown = shown if item in shown else (item,)
        entry = self.store.record_click(self.me, terms, shown, item, timestamp_ms)
        self._index(entry)
        return entry

    def add_item(self, title: str, tags: Sequence[str]) -> ItemMetadata:
        """Create, index and return metadata for one of our items (sign, persist, publish it)."""
        meta = ItemMetadata.create(self.me, title, tags)
        self.metadata.add(meta)
        return meta

    def own_items(self) -> list[ItemMetadata]:
        """Metadata of our own items (what the node republishes)."""
        return self.metadata.owned_by(self.me)

    # ---- incoming --------------------------------------------------------------------------------

    def accept_entries(self, entries: Iterable[ClickEntry]) -> list[ClickEntry]:
        """Store signature-checked entries; return the new ones (to persist)."""
        new = []
        for entry in entries:
            if self.store.add(entry) is AddResult.ADDED:
                self._index(entry)
                new.append(entry)
        return new

    def accept_metadata(self, meta: ItemMetadata) -> bool:
        """Index signature-checked metadata; False when another owner already holds its item id."""
        return self.metadata.add(meta)

    # ---- gossip ----------------------------------------------------------------------------------

    def pull_request(self) -> PullRequest:
        """The summary to send to a peer we pull from."""
        return make_pull_request(self.store, self.settings.gossip)

    def answer(self, request: PullRequest, priority: Mapping[str, float] | None = None) -> PullResponse:
        """Our answer to a peer's pull (``priority``: e.g. reputation from our view, high first)."""
        return answer_pull(self.store, request, self.settings.gossip, priority)

    def bootstrap(self, rng: np.random.Generator) -> PullResponse:
        """Our answer to a new peer with an empty store: log prefixes of a random sample of authors."""
        return bootstrap_response(self.store, rng, self.settings.gossip)

    # ---- search ----------------------------------------------------------------------------------

    def search(
        self, query: str | Sequence[str], k: int | None = 10, reputation: Mapping[str, float] | None = None
    ) -> list[SearchResult]:
        """G-Rank results for ``query``; pass MeritRank ``reputation`` for the Sybil-tolerant variant."""
        if self._sims is None:
            self._sims = similarities(self.index, self.me, self.settings.rank)
        results = search(
            self.index, self.metadata, self.me, query, k, self.settings.rank, reputation, self._sims
        )
        terms = _terms(query)
        self._last_shown.pop(terms, None)
        self._last_shown[terms] = tuple(r.item_id for r in results[:MAX_SHOWN])
        while len(self._last_shown) > REMEMBERED_SEARCHES:
            del self._last_shown[next(iter(self._last_shown))]
        return results

    def _index(self, entry: ClickEntry) -> None:
        self.index.add(entry)
        self._sims = None


def _terms(query: str | Sequence[str]) -> tuple[str, ...]:
    return tokenize(query) if isinstance(query, str) else tokenize(" ".join(query))
