"""Item metadata (title, tags) published by each item's owner, and an index matching it to queries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgpack

from recsys.grank.clicklog import MAX_TOKEN_CHARS, tokenize

ITEM_ID_BYTES = 12
"""Length of a derived item id (truncated SHA-256), in bytes."""

MAX_TITLE_CHARS = 512
"""Longest item title accepted."""

MAX_TAGS = 32
"""Most tags per item."""


def make_item_id(owner: str, title: str) -> str:
    """Derived item id ``hex(sha256(owner, title))[:ITEM_ID_BYTES]``: an owner cannot claim another's."""
    packed = msgpack.packb([owner, title], use_bin_type=True)
    return hashlib.sha256(packed).digest()[:ITEM_ID_BYTES].hex()


@dataclass(frozen=True)
class ItemMetadata:
    """What an owner publishes about one of its items."""

    item_id: str
    """Item id; ``make_item_id(owner, title)`` for items created by ``plexus items add``."""
    owner: str
    """Peer id of the publishing node (the signer)."""
    title: str
    """Human-readable title; its terms match queries."""
    tags: tuple[str, ...]
    """Normalised tags (each a single ``tokenize`` term); they match queries."""
    signature: bytes = field(default=b"", compare=False)
    """Owner's signature over ``signing_bytes()``; checked by the protocol layer."""

    def __post_init__(self) -> None:
        for name in ("item_id", "owner"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_CHARS:
                raise ValueError(f"{name} must be a non-empty string of at most {MAX_TOKEN_CHARS} chars")
        if not isinstance(self.title, str) or len(self.title) > MAX_TITLE_CHARS:
            raise ValueError(f"title must be a string of at most {MAX_TITLE_CHARS} chars")
        if not isinstance(self.tags, tuple) or len(self.tags) > MAX_TAGS:
            raise ValueError(f"tags must be a tuple of at most {MAX_TAGS} tags")
        for tag in self.tags:
            if not isinstance(tag, str) or tokenize(tag) != (tag,):
                raise ValueError(f"tag {tag!r} is not a single normalised term (see tokenize)")

    @classmethod
    def create(cls, owner: str, title: str, tags: Sequence[str]) -> ItemMetadata:
        """Metadata for a new item of ``owner`` with a derived id and normalised tags."""
        norm = tuple(dict.fromkeys(t for tag in tags for t in tokenize(tag)))
        return cls(make_item_id(owner, title), owner, title, norm)

    def terms(self) -> frozenset[str]:
        """Terms a query can match: title terms and tags."""
        return frozenset(tokenize(self.title)) | frozenset(self.tags)

    def signing_bytes(self) -> bytes:
        """Canonical msgpack encoding of the content (what the owner signs)."""
        return msgpack.packb([self.item_id, self.owner, self.title, list(self.tags)], use_bin_type=True)


class MetadataIndex:
    """Metadata of known items with an inverted term index."""

    def __init__(self) -> None:
        self._items: dict[str, ItemMetadata] = {}
        self._by_term: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def get(self, item_id: str) -> ItemMetadata | None:
        """Metadata of ``item_id`` or None."""
        return self._items.get(item_id)

    def add(self, meta: ItemMetadata) -> bool:
        """Add or replace (same owner) an item's metadata; False when another owner holds the id."""
        held = self._items.get(meta.item_id)
        if held is not None and held.owner != meta.owner:
            return False
        if held is not None:
            for term in held.terms():
                self._by_term[term].discard(meta.item_id)
        self._items[meta.item_id] = meta
        for term in meta.terms():
            self._by_term.setdefault(term, set()).add(meta.item_id)
        return True

    def add_all(self, metas: Iterable[ItemMetadata]) -> int:
        """Add many; return how many were accepted."""
        return sum(self.add(m) for m in metas)

    def owned_by(self, owner: str) -> list[ItemMetadata]:
        """Items published by ``owner`` (what a node republishes), by item id."""
        return sorted((m for m in self._items.values() if m.owner == owner), key=lambda m: m.item_id)

    def match(self, query: Sequence[str]) -> dict[str, int]:
        """Items whose metadata shares terms with ``query``: item id -> number of query terms matched."""
        hits: dict[str, int] = {}
        for term in dict.fromkeys(query):
            for item in self._by_term.get(term, ()):
                hits[item] = hits.get(item, 0) + 1
        return hits
