"""Signed peer records: how nodes learn each other's addresses and services.

Each node gossips a :class:`PeerRecord` signed with its libp2p key on ``plexus/<network>/membership``
every few seconds. A record is accepted only if its author is the GossipSub source of the message,
it names our network, and its sequence number is newer than the one held; authors that announce
too often are ignored (rate-limited view).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.message import limits, wire_message

MAX_ADDRS = 16
MAX_ADDR_CHARS = 256
MAX_SERVICES = 32
MAX_NAME_CHARS = 32


@wire_message(type_id=0x0102, version=1, max_size=8 * 1024)
@dataclass(frozen=True)
class PeerRecord:
    """What a peer says about itself; always travels inside a SignedRecord by that peer."""

    network: str = field(metadata=limits(min_len=1, max_len=MAX_NAME_CHARS))
    """The network the peer belongs to."""
    addrs: tuple[str, ...] = field(metadata=limits(max_len=MAX_ADDRS, items=limits(max_len=MAX_ADDR_CHARS)))
    """Multiaddrs the peer listens on (without /p2p)."""
    services: tuple[str, ...] = field(metadata=limits(max_len=MAX_SERVICES, items=limits(max_len=MAX_NAME_CHARS)))
    """Services the peer runs."""
    seq: int = field(metadata=limits(min=0))
    """Monotonic sequence number (the issuer's clock in milliseconds): newer records replace older."""

    def check(self) -> None:
        for addr in self.addrs:
            if not addr.startswith("/"):
                raise ValueError(f"address {addr[:40]!r} is not a multiaddr")

    @classmethod
    def sample(cls) -> "PeerRecord":
        return cls(network="devnet", addrs=("/ip4/127.0.0.1/tcp/4001",), services=("gossip",), seq=1)
