"""Clicklog entries and a per-node store (sans-IO).

An entry records one search session of its author: the query terms, the results shown and the item
clicked. Each author numbers its own entries 0, 1, 2, ... (``seq``), so ``(author, seq)`` names an entry
and a store can summarise what it holds per author as a contiguous prefix plus a few stragglers (see
``recsys.grank.gossip``). The entry id is a hash of the content; the author's signature (added and checked
by the protocol layer) travels with the entry but is not part of its id.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgpack

ENTRY_ID_BYTES = 16
"""Length of an entry id (truncated SHA-256), in bytes."""

MAX_QUERY_TERMS = 16
"""Most query terms an entry may carry."""

MAX_SHOWN = 100
"""Most shown results an entry may carry."""

MAX_TOKEN_CHARS = 128
"""Longest query term, item id or author id accepted (characters)."""

_TOKEN_RE = re.compile(r"[0-9a-z]+")


def tokenize(text: str) -> tuple[str, ...]:
    """Split free text into lower-case alphanumeric terms, duplicates dropped, order kept."""
    if not isinstance(text, str):
        raise TypeError(f"query text must be str, got {type(text).__name__}")
    return tuple(dict.fromkeys(_TOKEN_RE.findall(text.lower())))


def _check_token(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_TOKEN_CHARS:
        raise ValueError(f"{name} longer than {MAX_TOKEN_CHARS} characters")


@dataclass(frozen=True)
class ClickEntry:
    """One search session of ``author``: it searched ``query``, saw ``shown`` and clicked ``clicked``."""

    author: str
    """Peer id of the node that searched and clicked (the signer)."""
    seq: int
    """Author-local sequence number, 0, 1, 2, ... (one per entry)."""
    query: tuple[str, ...]
    """Normalised query terms (see ``tokenize``)."""
    shown: tuple[str, ...]
    """Item ids shown to the author, in display order; ``clicked`` is one of them."""
    clicked: str
    """Item id the author clicked."""
    timestamp: int
    """Author's clock when clicking, integer milliseconds since the Unix epoch (informational)."""
    signature: bytes = field(default=b"", compare=False)
    """Author's signature over ``signing_bytes()``; checked by the protocol layer, not part of the id."""

    def __post_init__(self) -> None:
        _check_token("author", self.author)
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise ValueError(f"seq must be a non-negative int, got {self.seq!r}")
        if not isinstance(self.query, tuple) or not 0 < len(self.query) <= MAX_QUERY_TERMS:
            raise ValueError(f"query must be a tuple of 1..{MAX_QUERY_TERMS} terms, got {self.query!r}")
        for term in self.query:
            _check_token("query term", term)
        if tuple(dict.fromkeys(self.query)) != self.query or tokenize(" ".join(self.query)) != self.query:
            raise ValueError(f"query terms must be normalised by tokenize(), got {self.query!r}")
        if not isinstance(self.shown, tuple) or not 0 < len(self.shown) <= MAX_SHOWN:
            raise ValueError(f"shown must be a tuple of 1..{MAX_SHOWN} item ids")
        for item in self.shown:
            _check_token("shown item", item)
        _check_token("clicked", self.clicked)
        if self.clicked not in self.shown:
            raise ValueError(f"clicked item {self.clicked!r} was not among the shown results")
        if not isinstance(self.timestamp, int) or isinstance(self.timestamp, bool) or self.timestamp < 0:
            raise ValueError(f"timestamp must be a non-negative int, got {self.timestamp!r}")
        if not isinstance(self.signature, bytes):
            raise ValueError("signature must be bytes")

    def signing_bytes(self) -> bytes:
        """Canonical msgpack encoding of the content: what the author signs and what the id hashes."""
        return msgpack.packb(
            [self.author, self.seq, list(self.query), list(self.shown), self.clicked, self.timestamp],
            use_bin_type=True,
        )

    @property
    def entry_id(self) -> str:
        """Stable content id: hex of the first ``ENTRY_ID_BYTES`` of SHA-256(signing_bytes)."""
        return hashlib.sha256(self.signing_bytes()).digest()[:ENTRY_ID_BYTES].hex()

    def wire_size(self) -> int:
        """Approximate encoded size in bytes (content plus signature), used for per-message caps."""
        return len(self.signing_bytes()) + len(self.signature)


class AddResult(enum.Enum):
    """Outcome of ``ClickLogStore.add``."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    """The author already has a different entry with this seq (equivocation); the first one is kept."""
    AUTHOR_FULL = "author_full"
    """The author reached ``max_entries_per_author``; the entry is dropped."""


@dataclass(frozen=True)
class ClickLogSettings:
    """Limits of a node's clicklog store."""

    max_entries_per_author: int = 10_000
    """Entries kept per author; later ones are dropped (bounds the memory one flooder can take)."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a limit is out of range."""
        if self.max_entries_per_author < 1:
            raise ValueError("max_entries_per_author must be >= 1")


class ClickLogStore:
    """All clicklog entries a node holds, keyed by ``(author, seq)``."""

    def __init__(self, settings: ClickLogSettings | None = None) -> None:
        self.settings = settings or ClickLogSettings()
        self.settings.validate()
        self._by_author: dict[str, dict[int, ClickEntry]] = {}
        self._ids: set[str] = set()
        self._frontier: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._ids

    def __iter__(self) -> Iterator[ClickEntry]:
        return self.entries()

    def entries(self) -> Iterator[ClickEntry]:
        """Every entry, by author then seq."""
        for author in sorted(self._by_author):
            yield from self.by_author(author)

    def authors(self) -> list[str]:
        """Authors with at least one entry, sorted."""
        return sorted(self._by_author)

    def by_author(self, author: str) -> list[ClickEntry]:
        """The author's entries in seq order."""
        log = self._by_author.get(author, {})
        return [log[s] for s in sorted(log)]

    def get(self, author: str, seq: int) -> ClickEntry | None:
        """The entry ``(author, seq)`` or None."""
        return self._by_author.get(author, {}).get(seq)

    def next_seq(self, author: str) -> int:
        """Length of the author's contiguous prefix 0..n-1 held here (the next seq to ask for)."""
        return self._frontier.get(author, 0)

    def seqs_above_frontier(self, author: str) -> list[int]:
        """Seqs held beyond the contiguous prefix (gaps left by sampling or capped messages), sorted."""
        frontier = self.next_seq(author)
        return sorted(s for s in self._by_author.get(author, {}) if s >= frontier)

    def add(self, entry: ClickEntry) -> AddResult:
        """Store ``entry`` unless it is a duplicate, conflicts with a held entry or its author is full."""
        if not isinstance(entry, ClickEntry):
            raise TypeError(f"expected ClickEntry, got {type(entry).__name__}")
        log = self._by_author.setdefault(entry.author, {})
        held = log.get(entry.seq)
        if held is not None:
            return AddResult.DUPLICATE if held == entry else AddResult.CONFLICT
        if len(log) >= self.settings.max_entries_per_author:
            return AddResult.AUTHOR_FULL
        log[entry.seq] = entry
        self._ids.add(entry.entry_id)
        frontier = self._frontier.get(entry.author, 0)
        while frontier in log:
            frontier += 1
        self._frontier[entry.author] = frontier
        return AddResult.ADDED

    def add_all(self, entries: Iterable[ClickEntry]) -> int:
        """Add many entries; return how many were new."""
        return sum(self.add(e) is AddResult.ADDED for e in entries)

    def record_click(
        self, author: str, query: Sequence[str] | str, shown: Sequence[str], clicked: str, timestamp: int
    ) -> ClickEntry:
        """Create the author's next entry (seq = highest held + 1), store it and return it (to be signed)."""
        terms = tokenize(query) if isinstance(query, str) else tokenize(" ".join(query))
        seq = max(self._by_author.get(author, {}), default=-1) + 1
        entry = ClickEntry(author, seq, terms, tuple(shown), clicked, timestamp)
        result = self.add(entry)
        if result is not AddResult.ADDED:
            raise ValueError(f"could not record click for {author!r}: {result.value}")
        return entry
