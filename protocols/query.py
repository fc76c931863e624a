"""``/plexus/query/1.0.0``: ask a remote peer for its status, its peers or its services.

One request frame, one reply frame (:mod:`protocols.framing`), then the stream closes. A request
that does not decode is answered with an :class:`~protocols.message.ErrorReply` and the node goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from protocols.codec import DecodeError, decode, encode
from protocols.framing import ByteStream, read_frame, write_frame
from protocols.message import ErrorReply, limits, wire_message

PROTOCOL_ID = "/plexus/query/1.0.0"
QUERY_KINDS = ("status", "peers", "services")
MAX_REQUEST_BYTES = 256
MAX_REPLY_BYTES = 256 * 1024
MAX_PEERS_IN_REPLY = 1024
MALFORMED_REQUEST = 0
UNKNOWN_KIND = 1


@wire_message(type_id=0x0201, version=1, max_size=MAX_REQUEST_BYTES)
@dataclass(frozen=True)
class QueryRequest:
    """What the asker wants to know."""

    kind: str = field(metadata=limits(min_len=1, max_len=16))
    """One of QUERY_KINDS."""

    @classmethod
    def sample(cls) -> "QueryRequest":
        return cls(kind="status")


@wire_message(type_id=0x0202, version=1, max_size=4096)
@dataclass(frozen=True)
class StatusReply:
    """A peer's view of itself."""

    peer_id: str = field(metadata=limits(max_len=128))
    network: str = field(metadata=limits(max_len=32))
    version: str = field(metadata=limits(max_len=32))
    uptime_s: float = field(metadata=limits(min=0.0))
    connected: int = field(metadata=limits(min=0))
    known_peers: int = field(metadata=limits(min=0))
    topics: tuple[str, ...] = field(metadata=limits(max_len=64, items=limits(max_len=128)))

    @classmethod
    def sample(cls) -> "StatusReply":
        return cls("12D3KooW", "devnet", "0.1.0", 1.0, 1, 1, ("plexus/devnet/news",))


@dataclass(frozen=True)
class PeerEntry:
    """One row of a peer's peer table."""

    peer_id: str = field(metadata=limits(max_len=128))
    last_seen: float = field(metadata=limits(min=0.0))
    connected: bool
    addrs: tuple[str, ...] = field(metadata=limits(max_len=16, items=limits(max_len=256)))


@wire_message(type_id=0x0203, version=1, max_size=MAX_REPLY_BYTES)
@dataclass(frozen=True)
class PeersReply:
    """A peer's peer table."""

    peers: tuple[PeerEntry, ...] = field(metadata=limits(max_len=MAX_PEERS_IN_REPLY))

    @classmethod
    def sample(cls) -> "PeersReply":
        return cls((PeerEntry("12D3KooW", 1.0, True, ("/ip4/127.0.0.1/tcp/1",)),))


@wire_message(type_id=0x0204, version=1, max_size=4096)
@dataclass(frozen=True)
class ServicesReply:
    """The services a peer runs, with their protocol ids and topics."""

    services: tuple[str, ...] = field(metadata=limits(max_len=32, items=limits(max_len=32)))
    protocols: tuple[str, ...] = field(metadata=limits(max_len=64, items=limits(max_len=128)))

    @classmethod
    def sample(cls) -> "ServicesReply":
        return cls(("gossip",), (PROTOCOL_ID,))


Reply = StatusReply | PeersReply | ServicesReply
Answer = Callable[[str], Awaitable[Reply]]


async def serve(stream: ByteStream, answer: Answer) -> str:
    """Answer one query on ``stream``; returns the kind served (or the error reason)."""
    try:
        request = decode(await read_frame(stream, MAX_REQUEST_BYTES), expect=QueryRequest)
    except DecodeError as err:
        await write_frame(stream, encode(ErrorReply(code=MALFORMED_REQUEST, reason=err.reason)))
        return f"malformed: {err.reason}"
    if request.kind not in QUERY_KINDS:
        await write_frame(stream, encode(ErrorReply(code=UNKNOWN_KIND, reason=f"unknown kind {request.kind!r}")))
        return f"unknown kind {request.kind!r}"
    await write_frame(stream, encode(await answer(request.kind)))
    return request.kind


class QueryFailed(RuntimeError):
    """The remote peer answered with an error."""


async def ask(stream: ByteStream, kind: str) -> Reply:
    """Send one query and return the decoded reply; QueryFailed if the peer refused it."""
    await write_frame(stream, encode(QueryRequest(kind=kind)))
    reply = decode(await read_frame(stream, MAX_REPLY_BYTES), expect=(StatusReply, PeersReply, ServicesReply, ErrorReply))
    if isinstance(reply, ErrorReply):
        raise QueryFailed(reply.reason)
    return reply
