"""G-Rank on the wire: signed clicklog entries, signed item metadata, and the clicklog pull protocol.

* A clicklog entry (:class:`WireClick`, 0x0501) is a :class:`recsys.grank.ClickEntry` with its author's
  Ed25519 signature over ``CLICK_DOMAIN + entry.signing_bytes()``. The author is a base58 peer id that
  inlines the public key (:func:`protocols.records.author_public_key`), so entries can be re-served by
  anyone and still be checked against their author: nobody can write another peer's clicks.
* Item metadata (:class:`WireItem`, 0x0502) is signed the same way by its owner over
  ``ITEM_DOMAIN + meta.signing_bytes()``; its id must be ``make_item_id(owner, title)`` (an owner cannot
  claim another's item). It is gossiped on ``plexus/<network>/grank-items`` and republished by its owner.
* ``/plexus/grank/1.0.0``: the asker sends one :class:`PullRequestMsg` frame (its per-author summary,
  0x0503), the answerer replies with one :class:`PullResponseMsg` frame (the entries the asker lacks,
  0x0504) or an :class:`~protocols.message.ErrorReply`; the asker pulls again while ``more``. Frame
  sizes are checked before unpacking; every entry's signature is checked by the asker
  (:func:`split_verified`), and bad ones are dropped and blamed on the answering peer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from libp2p.peer.id import ID

from protocols.codec import DecodeError, decode, encode
from protocols.framing import LENGTH_PREFIX, ByteStream, read_frame
from protocols.message import SIGNATURE_LEN, ErrorReply, limits, wire_message
from protocols.records import author_public_key
from protocols.validation import Validation, accept, ignore, reject
from recsys.grank.clicklog import MAX_QUERY_TERMS, MAX_SHOWN, MAX_TOKEN_CHARS, ClickEntry
from recsys.grank.gossip import AuthorSummary, PullRequest, PullResponse
from recsys.grank.metadata import MAX_TAGS, MAX_TITLE_CHARS, ItemMetadata, make_item_id

PROTOCOL_ID = "/plexus/grank/1.0.0"
#: Service part of the metadata gossip topic ``plexus/<network>/grank-items``.
ITEMS_TOPIC_SERVICE = "grank-items"
#: Domain prefixes: a click or item signature can never be replayed as another signed message.
CLICK_DOMAIN = b"plexus-grank-click:"
ITEM_DOMAIN = b"plexus-grank-item:"
#: Largest seq / timestamp on the wire (msgpack int64).
MAX_INT64 = 2**63 - 1
#: Authors one pull request may describe, and out-of-prefix seqs per author (GossipSettings defaults).
MAX_SUMMARY_AUTHORS = 10_000
MAX_EXTRA_SEQS = 64
#: Entries one pull response may carry (the core's default ``max_entries_per_message``).
MAX_RESPONSE_ENTRIES = 256
#: Frame caps, checked before a byte is unpacked.
MAX_REQUEST_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 512 * 1024
MAX_ITEM_FRAME = 4096
#: Entry bytes (``ClickEntry.wire_size``) an answer carries at most: half the frame cap leaves room for
#: the per-entry msgpack field names.
MAX_ENTRY_BYTES = MAX_RESPONSE_BYTES // 2
#: Largest single write on a stream. py-libp2p 0.8.1's Noise session splits a write above 65,519 bytes
#: into several Noise messages and yields between them, so a concurrent writer on the same connection
#: can interleave its mplex frame (or its Noise nonce) and corrupt the connection; writes below this
#: size go out as one Noise message.
MAX_WRITE_BYTES = 32 * 1024
#: ErrorReply codes on the pull protocol.
MALFORMED_REQUEST = 0

SAMPLE_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

_TOKEN = limits(min_len=1, max_len=MAX_TOKEN_CHARS)


def items_topic(network: str) -> str:
    """The gossip topic of item metadata on a network."""
    return f"plexus/{network}/{ITEMS_TOPIC_SERVICE}"


@wire_message(type_id=0x0501, version=1, max_size=8192)
@dataclass(frozen=True)
class WireClick:
    """One signed clicklog entry (the fields of :class:`recsys.grank.ClickEntry`)."""

    author: str = field(metadata=_TOKEN)
    """Base58 peer id of the searcher (the signer)."""
    seq: int = field(metadata=limits(min=0, max=MAX_INT64))
    """Author-local sequence number."""
    query: tuple[str, ...] = field(metadata=limits(min_len=1, max_len=MAX_QUERY_TERMS, items=_TOKEN))
    """Normalised query terms."""
    shown: tuple[str, ...] = field(metadata=limits(min_len=1, max_len=MAX_SHOWN, items=_TOKEN))
    """Item ids shown, in display order."""
    clicked: str = field(metadata=_TOKEN)
    """Item id clicked (one of ``shown``)."""
    timestamp: int = field(metadata=limits(min=0, max=MAX_INT64))
    """Author's clock in ms (informational)."""
    signature: bytes = field(metadata=limits(min_len=SIGNATURE_LEN, max_len=SIGNATURE_LEN))
    """Ed25519 signature of the author over ``CLICK_DOMAIN + signing_bytes()``."""

    def check(self) -> None:
        self.entry()

    def entry(self) -> ClickEntry:
        """The core's entry (raises ValueError when the content breaks the core's rules)."""
        return ClickEntry(self.author, self.seq, self.query, self.shown, self.clicked, self.timestamp,
                          self.signature)

    @classmethod
    def of(cls, entry: ClickEntry) -> "WireClick":
        """The wire form of a signed entry."""
        return cls(entry.author, entry.seq, entry.query, entry.shown, entry.clicked, entry.timestamp,
                   entry.signature)

    @classmethod
    def sample(cls) -> "WireClick":
        return cls(SAMPLE_PEER_ID, 0, ("jazz",), ("a1", "b2"), "b2", 1, bytes(SIGNATURE_LEN))


@wire_message(type_id=0x0502, version=1, max_size=MAX_ITEM_FRAME)
@dataclass(frozen=True)
class WireItem:
    """Signed metadata of one item (the fields of :class:`recsys.grank.ItemMetadata`)."""

    item_id: str = field(metadata=_TOKEN)
    """``make_item_id(owner, title)``."""
    owner: str = field(metadata=_TOKEN)
    """Base58 peer id of the owner (the signer)."""
    title: str = field(metadata=limits(max_len=MAX_TITLE_CHARS))
    """Title."""
    tags: tuple[str, ...] = field(metadata=limits(max_len=MAX_TAGS, items=_TOKEN))
    """Normalised tags."""
    signature: bytes = field(metadata=limits(min_len=SIGNATURE_LEN, max_len=SIGNATURE_LEN))
    """Ed25519 signature of the owner over ``ITEM_DOMAIN + signing_bytes()``."""

    def check(self) -> None:
        self.metadata()
        if self.item_id != make_item_id(self.owner, self.title):
            raise ValueError("item_id is not make_item_id(owner, title)")

    def metadata(self) -> ItemMetadata:
        """The core's metadata (raises ValueError when the content breaks the core's rules)."""
        return ItemMetadata(self.item_id, self.owner, self.title, self.tags, self.signature)

    @classmethod
    def of(cls, meta: ItemMetadata) -> "WireItem":
        """The wire form of signed metadata."""
        return cls(meta.item_id, meta.owner, meta.title, meta.tags, meta.signature)

    @classmethod
    def sample(cls) -> "WireItem":
        return cls(make_item_id(SAMPLE_PEER_ID, "t"), SAMPLE_PEER_ID, "t", ("jazz",), bytes(SIGNATURE_LEN))


@dataclass(frozen=True)
class WireSummary:
    """What the asker holds of one author's log (see :class:`recsys.grank.AuthorSummary`)."""

    author: str = field(metadata=_TOKEN)
    next_seq: int = field(metadata=limits(min=0, max=MAX_INT64))
    extra_seqs: tuple[int, ...] = field(metadata=limits(max_len=MAX_EXTRA_SEQS, min=0, max=MAX_INT64))


@wire_message(type_id=0x0503, version=1, max_size=MAX_REQUEST_BYTES)
@dataclass(frozen=True)
class PullRequestMsg:
    """The asker's summary of its clicklog store and the caps it wants respected."""

    summaries: tuple[WireSummary, ...] = field(metadata=limits(max_len=MAX_SUMMARY_AUTHORS))
    max_entries: int = field(metadata=limits(min=1, max=MAX_RESPONSE_ENTRIES))
    max_bytes: int = field(metadata=limits(min=1, max=MAX_RESPONSE_BYTES))

    def check(self) -> None:
        self.request()

    def request(self) -> PullRequest:
        """The core's request (raises ValueError on a duplicate author or bad extra seqs)."""
        return PullRequest(
            tuple(AuthorSummary(s.author, s.next_seq, s.extra_seqs) for s in self.summaries),
            self.max_entries, self.max_bytes,
        )

    @classmethod
    def of(cls, request: PullRequest) -> "PullRequestMsg":
        return cls(
            tuple(WireSummary(s.author, s.next_seq, tuple(s.extra_seqs)) for s in request.summaries),
            min(request.max_entries, MAX_RESPONSE_ENTRIES), min(request.max_bytes, MAX_ENTRY_BYTES),
        )

    @classmethod
    def sample(cls) -> "PullRequestMsg":
        return cls((WireSummary(SAMPLE_PEER_ID, 3, (5,)),), 16, 4096)


@wire_message(type_id=0x0504, version=1, max_size=MAX_RESPONSE_BYTES)
@dataclass(frozen=True)
class PullResponseMsg:
    """Entries the asker lacked (signatures unchecked until :func:`split_verified`) and ``more``."""

    entries: tuple[WireClick, ...] = field(metadata=limits(max_len=MAX_RESPONSE_ENTRIES))
    more: bool

    @classmethod
    def of(cls, response: PullResponse) -> "PullResponseMsg":
        return cls(tuple(WireClick.of(e) for e in response.entries), response.more)

    @classmethod
    def sample(cls) -> "PullResponseMsg":
        return cls((WireClick.sample(),), False)


# --------------------------------------------------------------------------- signatures


def _key_of(peer: str):
    try:
        return author_public_key(ID.from_base58(peer).to_bytes())
    except DecodeError:
        raise
    except Exception as err:  # noqa: BLE001 - base58 / multihash errors come in several types
        raise DecodeError(f"{peer[:MAX_TOKEN_CHARS]!r} is not an Ed25519 peer id") from err


def sign_click(entry: ClickEntry, private_key) -> ClickEntry:
    """``entry`` with its author's signature (``private_key`` must be the author's)."""
    return ClickEntry(entry.author, entry.seq, entry.query, entry.shown, entry.clicked, entry.timestamp,
                      private_key.sign(CLICK_DOMAIN + entry.signing_bytes()))


def sign_item(meta: ItemMetadata, private_key) -> ItemMetadata:
    """``meta`` with its owner's signature (``private_key`` must be the owner's)."""
    return ItemMetadata(meta.item_id, meta.owner, meta.title, meta.tags,
                        private_key.sign(ITEM_DOMAIN + meta.signing_bytes()))


def click_verifies(entry: ClickEntry) -> bool:
    """True when ``entry.signature`` is its author's signature over its content."""
    try:
        return bool(_key_of(entry.author).verify(CLICK_DOMAIN + entry.signing_bytes(), entry.signature))
    except Exception:  # noqa: BLE001 - a hostile author id or signature is simply not valid
        return False


def item_verifies(meta: ItemMetadata) -> bool:
    """True when ``meta.signature`` is its owner's signature over its content."""
    try:
        return bool(_key_of(meta.owner).verify(ITEM_DOMAIN + meta.signing_bytes(), meta.signature))
    except Exception:  # noqa: BLE001 - a hostile owner id or signature is simply not valid
        return False


def split_verified(entries: Iterable[WireClick]) -> tuple[list[ClickEntry], int]:
    """Entries whose author signature verifies, and how many did not (CPU-bound: run off the loop)."""
    good, bad = [], 0
    for wire in entries:
        entry = wire.entry()
        if click_verifies(entry):
            good.append(entry)
        else:
            bad += 1
    return good, bad


# --------------------------------------------------------------------------- item gossip


def encode_item(meta: ItemMetadata) -> bytes:
    """The gossip frame of signed metadata."""
    return encode(WireItem.of(meta))


def check_item_frame(data: bytes, held: Callable[[str], ItemMetadata | None]) -> tuple[Validation, ItemMetadata | None]:
    """Validate a gossiped item frame; ``held(item_id)`` gives the metadata already known (or None).

    REJECT: too big, does not decode, id not derived from (owner, title), bad owner signature.
    IGNORE: the same metadata is already held (a republish). ACCEPT otherwise.
    """
    if len(data) > MAX_ITEM_FRAME:
        return reject(f"{len(data)} bytes over the {MAX_ITEM_FRAME}-byte item cap"), None
    try:
        meta = decode(data, expect=WireItem).metadata()
    except DecodeError as err:
        return reject(err.reason), None
    if not item_verifies(meta):
        return reject("bad owner signature on item metadata"), None
    known = held(meta.item_id)
    if known is not None and known == meta:
        return ignore("item metadata already held"), meta
    return accept(), meta


# --------------------------------------------------------------------------- pull protocol


async def write_frame(stream: ByteStream, payload: bytes) -> None:
    """Write one length-prefixed frame (as :func:`protocols.framing.write_frame`) in small writes."""
    data = LENGTH_PREFIX.pack(len(payload)) + payload
    for start in range(0, len(data), MAX_WRITE_BYTES):
        await stream.write(data[start:start + MAX_WRITE_BYTES])


class PullFailed(RuntimeError):
    """The answering peer refused the pull (it answered with an ErrorReply)."""


async def serve_pull(stream: ByteStream, answer: Callable[[PullRequest], Awaitable[PullResponse]]) -> str:
    """Answer one pull on ``stream``; returns a short description for the log."""
    try:
        request = decode(await read_frame(stream, MAX_REQUEST_BYTES), expect=PullRequestMsg).request()
        request = dataclasses.replace(request, max_bytes=min(request.max_bytes, MAX_ENTRY_BYTES))
    except DecodeError as err:
        await write_frame(stream, encode(ErrorReply(code=MALFORMED_REQUEST, reason=err.reason)))
        return f"malformed: {err.reason}"
    response = await answer(request)
    await write_frame(stream, encode(PullResponseMsg.of(response)))
    return f"served {len(response.entries)} entries"


async def ask_pull(stream: ByteStream, request: PullRequest) -> PullResponseMsg:
    """Send one pull request and return the (unverified) response; PullFailed on an ErrorReply."""
    await write_frame(stream, encode(PullRequestMsg.of(request)))
    reply = decode(await read_frame(stream, MAX_RESPONSE_BYTES), expect=(PullResponseMsg, ErrorReply))
    if isinstance(reply, ErrorReply):
        raise PullFailed(reply.reason)
    return reply
