"""Trust edges on the wire: signed :class:`TrustEdge` records gossiped on ``plexus/<network>/trust``.

A trust edge ``src -> dst`` says how much ``src`` trusts ``dst`` (negative: distrust; zero: the edge
is withdrawn). It always travels inside a :class:`protocols.message.SignedRecord` signed by ``src``:
the record's author IS the edge's source, so nobody can write another peer's edge. Each author keeps
one edge per ``(dst, kind)``; a record with a larger ``seq`` (the author's millisecond clock)
replaces the older one.

Validation (:func:`check_edge_frame`, fast enough for a sync gossip validator):

* REJECT: the frame does not decode, the signature does not verify, the body is not a TrustEdge.
* IGNORE: a self-edge (``dst`` is the author), or a record not newer than the one held for
  ``(src, dst, kind)`` (a replay or a duplicate): harmless, nobody is blamed.
* ACCEPT otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from libp2p.peer.id import ID

from protocols.codec import DecodeError
from protocols.message import limits, wire_message
from protocols.records import decode_signed, encode_signed, sign_record
from protocols.validation import Validation, accept, ignore, reject

#: Service part of the gossip topic ``plexus/<network>/trust``.
TOPIC_SERVICE = "trust"
#: Where edges come from; one edge per (src, dst, kind).
EDGE_KINDS = ("declared", "rating", "click", "contribution")
#: Largest |weight| of one edge record.
MAX_WEIGHT = 100.0
#: Shortest and longest base58 peer id accepted as a destination (Ed25519 ids are 52 chars, RSA 46).
MIN_PEER_ID_CHARS = 32
MAX_PEER_ID_CHARS = 64
MAX_KIND_CHARS = 16
#: Largest seq (msgpack int64).
MAX_SEQ = 2**63 - 1
#: A signed TrustEdge frame is ~250 bytes; this cap leaves room and refuses anything bloated.
MAX_EDGE_FRAME = 1024

SAMPLE_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

#: Peer ids whose base58 form is cached (base58 in pure Python costs ~50 us a conversion).
PEER_ID_CACHE = 4096

SeqLookup = Callable[[str, str, str], "int | None"]


@functools.lru_cache(maxsize=PEER_ID_CACHE)
def _base58(author: bytes) -> str:
    return ID(author).to_base58()


@functools.lru_cache(maxsize=PEER_ID_CACHE)
def _is_peer_id(text: str) -> bool:
    try:
        return ID.from_base58(text).to_base58() == text
    except Exception:  # noqa: BLE001 - base58/multihash errors come in several types
        return False


@wire_message(type_id=0x0401, version=1, max_size=MAX_EDGE_FRAME)
@dataclass(frozen=True)
class TrustEdge:
    """One trust edge from the signing author to ``dst``."""

    dst: str = field(metadata=limits(min_len=MIN_PEER_ID_CHARS, max_len=MAX_PEER_ID_CHARS))
    """The trusted (or distrusted) peer, as a base58 peer id."""
    weight: float = field(metadata=limits(min=-MAX_WEIGHT, max=MAX_WEIGHT))
    """How much: > 0 trust, < 0 distrust, 0 withdraws the edge. Finite, |weight| <= MAX_WEIGHT."""
    seq: int = field(metadata=limits(min=0, max=MAX_SEQ))
    """The author's clock in milliseconds: a larger seq replaces the edge held for (src, dst, kind)."""
    kind: str = field(metadata=limits(min_len=1, max_len=MAX_KIND_CHARS))
    """Where the edge comes from: one of EDGE_KINDS."""

    def check(self) -> None:
        if self.kind not in EDGE_KINDS:
            raise ValueError(f"kind {self.kind[:MAX_KIND_CHARS]!r} is not one of {', '.join(EDGE_KINDS)}")
        if not _is_peer_id(self.dst):
            raise ValueError("dst is not a canonical base58 peer id")

    @classmethod
    def sample(cls) -> "TrustEdge":
        return cls(dst=SAMPLE_PEER_ID, weight=1.0, seq=1, kind="declared")


@dataclass(frozen=True)
class ReceivedEdge:
    """A verified edge: its source (the record's author), the edge, and the signed frame to re-serve."""

    src: str
    """Author and source, base58."""
    edge: TrustEdge
    """The verified message."""
    frame: bytes = field(repr=False)
    """The signed-record frame exactly as received."""


def topic(network: str) -> str:
    """The gossip topic of trust edges on a network."""
    return f"plexus/{network}/{TOPIC_SERVICE}"


def sign_edge(edge: TrustEdge, private_key) -> bytes:
    """The signed-record frame of ``edge`` authored by ``private_key``'s peer."""
    return encode_signed(sign_record(edge, private_key))


def check_edge_frame(data: bytes, stored_seq: SeqLookup) -> tuple[Validation, ReceivedEdge | None]:
    """Validate a gossiped edge frame; ``stored_seq(src, dst, kind)`` gives the seq held (or None).

    Returns the verdict and, unless the frame was rejected, the verified edge.
    """
    if len(data) > MAX_EDGE_FRAME:
        return reject(f"{len(data)} bytes over the {MAX_EDGE_FRAME}-byte edge cap"), None
    try:
        author, edge = decode_signed(data, expect=TrustEdge)
    except DecodeError as err:
        return reject(err.reason), None
    src = _base58(author)
    received = ReceivedEdge(src=src, edge=edge, frame=data)
    return check_edge(received, stored_seq), received


def check_edge(received: ReceivedEdge, stored_seq: SeqLookup) -> Validation:
    """The verdict on an already verified edge: IGNORE self-edges and edges not newer than the one held."""
    edge = received.edge
    if edge.dst == received.src:
        return ignore("self-edge")
    held = stored_seq(received.src, edge.dst, edge.kind)
    if held is not None and edge.seq <= held:
        return ignore(f"stale edge (seq {edge.seq} <= {held})")
    return accept()
