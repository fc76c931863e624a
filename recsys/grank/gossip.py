"""Pull gossip of clicklogs (sans-IO): the asker summarises, the answerer sends only what is missing.

One exchange:

1. the asker calls ``make_pull_request(store)`` and sends the ``PullRequest``: per author, the length of
   the contiguous prefix it holds (``next_seq``) and the few seqs it holds beyond it (``extra_seqs``);
2. the answerer calls ``answer_pull(store, request)`` and returns a ``PullResponse`` with the entries the
   asker lacks, at most ``max_entries`` of them and ``max_bytes`` in total; ``more`` says it left some out;
3. the asker verifies each entry's signature (protocol layer) and calls ``store.add`` for the good ones
   (or ``apply_pull_response`` when the signatures were checked already); if ``more`` it asks again.

The answerer walks the missing entries round-robin over authors (each author's first missing entry,
then each author's second, ...), so one author with a huge log cannot fill a message and starve the
others. A ``priority`` (e.g. MeritRank reputation from the answerer's view) orders authors within a round.
A new node with an empty store gets ``bootstrap_response``: whole log prefixes of a random sample of
authors; later pulls fill in the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recsys.grank.clicklog import ClickEntry, ClickLogStore


@dataclass(frozen=True)
class GossipSettings:
    """Caps of the clicklog pull gossip."""

    max_entries_per_message: int = 256
    """Most entries one ``PullResponse`` carries."""
    max_bytes_per_message: int = 256 * 1024
    """Most entry bytes (``ClickEntry.wire_size``) one ``PullResponse`` carries."""
    max_summary_authors: int = 10_000
    """Most authors described in one ``PullRequest``; the rest are treated as unknown by the answerer."""
    max_extra_seqs_per_author: int = 64
    """Most out-of-prefix seqs listed per author in a ``PullRequest``."""
    bootstrap_authors: int = 32
    """Authors sampled for a new node's first response."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a cap is out of range."""
        for name in (
            "max_entries_per_message",
            "max_bytes_per_message",
            "max_summary_authors",
            "bootstrap_authors",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_extra_seqs_per_author < 0:
            raise ValueError("max_extra_seqs_per_author must be >= 0")


@dataclass(frozen=True)
class AuthorSummary:
    """What the asker holds of one author's log."""

    author: str
    """Peer id of the clicklog author."""
    next_seq: int
    """The asker holds seqs 0..next_seq-1 of this author."""
    extra_seqs: tuple[int, ...] = ()
    """Seqs >= next_seq the asker also holds (sorted, at most ``max_extra_seqs_per_author``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.author, str) or not self.author:
            raise ValueError("author must be a non-empty string")
        if not isinstance(self.next_seq, int) or self.next_seq < 0:
            raise ValueError(f"next_seq must be a non-negative int, got {self.next_seq!r}")
        if any(not isinstance(s, int) or s < self.next_seq for s in self.extra_seqs):
            raise ValueError("extra_seqs must be ints >= next_seq")


@dataclass(frozen=True)
class PullRequest:
    """The asker's summary and the caps it wants the answer to respect."""

    summaries: tuple[AuthorSummary, ...]
    """One summary per author the asker holds entries of (authors absent: nothing held)."""
    max_entries: int
    """Most entries the asker accepts in the response."""
    max_bytes: int
    """Most entry bytes the asker accepts in the response."""

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be >= 1")
        authors = [s.author for s in self.summaries]
        if len(set(authors)) != len(authors):
            raise ValueError("a PullRequest lists an author twice")


@dataclass(frozen=True)
class PullResponse:
    """Entries the asker lacked, and whether the answerer left some out because of the caps."""

    entries: tuple[ClickEntry, ...]
    """Missing entries, in round-robin author order."""
    more: bool
    """True when the answerer holds further entries the asker lacks."""


def make_pull_request(store: ClickLogStore, settings: GossipSettings | None = None) -> PullRequest:
    """Summarise ``store`` for a pull; authors with the longest logs are listed first when capped."""
    settings = settings or GossipSettings()
    settings.validate()
    authors = sorted(store.authors(), key=lambda a: (-store.next_seq(a), a))
    extras = settings.max_extra_seqs_per_author
    summaries = tuple(
        AuthorSummary(a, store.next_seq(a), tuple(store.seqs_above_frontier(a)[:extras]))
        for a in authors[: settings.max_summary_authors]
    )
    return PullRequest(summaries, settings.max_entries_per_message, settings.max_bytes_per_message)


def _missing_by_author(store: ClickLogStore, request: PullRequest) -> dict[str, list[ClickEntry]]:
    known = {s.author: s for s in request.summaries}
    missing: dict[str, list[ClickEntry]] = {}
    for author in store.authors():
        summary = known.get(author)
        start = summary.next_seq if summary else 0
        extras = set(summary.extra_seqs) if summary else set()
        entries = [e for e in store.by_author(author) if e.seq >= start and e.seq not in extras]
        if entries:
            missing[author] = entries
    return missing


def _round_robin(
    queues: dict[str, list[ClickEntry]], order: list[str], max_entries: int, max_bytes: int
) -> PullResponse:
    out: list[ClickEntry] = []
    used = 0
    more = False
    depth = max((len(q) for q in queues.values()), default=0)
    for rank in range(depth):
        for author in order:
            queue = queues[author]
            if rank >= len(queue):
                continue
            size = queue[rank].wire_size()
            if len(out) >= max_entries or used + size > max_bytes:
                more = True
                return PullResponse(tuple(out), more)
            out.append(queue[rank])
            used += size
    return PullResponse(tuple(out), more)


def answer_pull(
    store: ClickLogStore,
    request: PullRequest,
    settings: GossipSettings | None = None,
    priority: Mapping[str, float] | None = None,
) -> PullResponse:
    """Entries of ``store`` the asker lacks, capped by the request's and our own limits.

    ``priority`` (higher first) orders authors within each round-robin round; authors without a
    priority come last, ties by author id.
    """
    settings = settings or GossipSettings()
    settings.validate()
    missing = _missing_by_author(store, request)
    prio = priority or {}
    order = sorted(missing, key=lambda a: (-prio.get(a, float("-inf")), a))
    return _round_robin(
        missing,
        order,
        min(request.max_entries, settings.max_entries_per_message),
        min(request.max_bytes, settings.max_bytes_per_message),
    )


def bootstrap_response(
    store: ClickLogStore, rng: np.random.Generator, settings: GossipSettings | None = None
) -> PullResponse:
    """First response to a new node: log prefixes of ``bootstrap_authors`` randomly sampled authors."""
    settings = settings or GossipSettings()
    settings.validate()
    authors = store.authors()
    if not authors:
        return PullResponse((), False)
    picked = rng.choice(len(authors), size=min(settings.bootstrap_authors, len(authors)), replace=False)
    order = [authors[i] for i in sorted(picked)]
    queues = {a: store.by_author(a) for a in order}
    response = _round_robin(queues, order, settings.max_entries_per_message, settings.max_bytes_per_message)
    return PullResponse(response.entries, response.more or len(order) < len(authors))


def apply_pull_response(store: ClickLogStore, response: PullResponse) -> int:
    """Add the (already signature-checked) entries of ``response``; return how many were new."""
    return store.add_all(response.entries)
