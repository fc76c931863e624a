"""Typed node settings: every tunable of the daemon in one place, each documented and validated.

The numbers follow go-libp2p-pubsub's documented GossipSub parameters (D=6, Dlo=4, Dhi=12, 1 s
heartbeat) and what DESIGN.md §2 measured for py-libp2p on this machine.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"


@dataclass(frozen=True)
class GossipSettings:
    """GossipSub mesh parameters and our own publish backpressure."""

    degree: int = 6
    """D: the number of peers a node keeps in each topic mesh."""
    degree_low: int = 4
    """Dlo: below this many mesh peers the heartbeat grafts more."""
    degree_high: int = 12
    """Dhi: above this many mesh peers the heartbeat prunes."""
    heartbeat_interval_s: int = 1
    """Seconds between GossipSub heartbeats (mesh maintenance and IHAVE gossip)."""
    spam_limit_per_topic_s: float = 200.0
    """py-libp2p's built-in per-peer, per-topic message cap per second (its default of 10 silently
    drops bursts, own publishes included); set above our own publish rate with headroom for forwarding."""
    publish_rate_per_s: float = 50.0
    """Our publish backpressure: at most this many own publishes per second per topic (token bucket)."""
    publish_burst: int = 20
    """Token bucket size for own publishes: how many may go out back to back."""
    subscription_queue: int = 256
    """Messages buffered between a topic's drain task and the service consuming them."""
    max_message_bytes: int = 256 * 1024
    """Largest gossip payload accepted by our validators."""
    inbound_rate_per_peer_s: float = 100.0
    """Rate limit on messages a single remote author may get accepted per second, per topic."""
    idontwant_min_bytes: int = 1024
    """Smallest message we send IDONTWANT for (go-libp2p-pubsub's IDontWantMessageThreshold)."""

    def validate(self) -> None:
        if not 1 <= self.degree_low <= self.degree <= self.degree_high:
            raise ValueError("gossip degrees must satisfy 1 <= degree_low <= degree <= degree_high")
        if self.heartbeat_interval_s < 1:
            raise ValueError("gossip heartbeat_interval_s must be at least 1 second")
        if self.publish_rate_per_s <= 0 or self.publish_burst < 1:
            raise ValueError("gossip publish_rate_per_s must be > 0 and publish_burst >= 1")
        if self.spam_limit_per_topic_s < self.publish_rate_per_s:
            raise ValueError("gossip spam_limit_per_topic_s must be >= publish_rate_per_s or own publishes drop")
        if self.subscription_queue < 1 or self.max_message_bytes < 1:
            raise ValueError("gossip subscription_queue and max_message_bytes must be positive")
        if self.inbound_rate_per_peer_s <= 0:
            raise ValueError("gossip inbound_rate_per_peer_s must be > 0")
        if self.idontwant_min_bytes < 0:
            raise ValueError("gossip idontwant_min_bytes must be >= 0")


@dataclass(frozen=True)
class MembershipSettings:
    """Signed peer records, the peer table and peer discovery."""

    announce_interval_s: float = 30.0
    """Shortest time between this node's signed peer-record announcements."""
    announce_per_peer_s: float = 10.0
    """Seconds of announcement interval per known peer: every record reaches every node, so the
    interval grows with the network and all nodes' records together stay near
    ``1 / announce_per_peer_s`` per second (at a fixed 10 s, 50 nodes in one process spent most of a core on them).
    Connected peers' last-seen is kept current by the connections themselves."""
    max_announce_interval_s: float = 600.0
    """Longest time between announcements, however large the network."""
    target_peers: int = 8
    """Dial peers learnt from records until this many are connected."""
    peer_expiry_s: float = 1800.0
    """A peer not seen for this long is shown as stale in the peer table."""
    record_rate_per_peer_s: float = 2.0
    """Peer records accepted per author per second; more are ignored (rate-limited view)."""
    redial_interval_s: float = 5.0
    """Seconds between attempts to re-dial bootstrap peers that are not connected."""

    def validate(self) -> None:
        if self.announce_interval_s <= 0 or self.redial_interval_s <= 0 or self.announce_per_peer_s < 0:
            raise ValueError("membership intervals must be > 0 (announce_per_peer_s >= 0)")
        if self.max_announce_interval_s < self.announce_interval_s:
            raise ValueError("membership max_announce_interval_s must be >= announce_interval_s")
        if self.target_peers < 1:
            raise ValueError("membership target_peers must be >= 1")
        if self.peer_expiry_s <= self.max_announce_interval_s:
            raise ValueError("membership peer_expiry_s must exceed max_announce_interval_s")
        if self.record_rate_per_peer_s <= 0:
            raise ValueError("membership record_rate_per_peer_s must be > 0")


@dataclass(frozen=True)
class TimeoutSettings:
    """Every wait the daemon does, bounded."""

    dial_s: float = 5.0
    """Dialling one peer (TCP + Noise + Yamux)."""
    stream_s: float = 10.0
    """One request/response exchange on a stream protocol, open to last byte."""
    control_request_s: float = 30.0
    """One control API request, from the CLI's connect to the daemon's answer."""
    shutdown_s: float = 4.0
    """Grace period for services to stop on SIGINT/SIGTERM before they are cancelled."""
    ready_s: float = 30.0
    """Start-up: listening, store open, services started."""
    peer_record_s: float = 40.0
    """Opening a stream to a peer we have no address for: how long to wait for its signed record
    (first records go out within ``membership.announce_interval_s`` of connecting)."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"timeout {f.name} must be > 0")
        if self.shutdown_s >= 5.0:
            raise ValueError("timeout shutdown_s must stay under 5 s (clean stop promise)")


@dataclass(frozen=True)
class NodeSettings:
    """Everything one daemon needs; built by the CLI from flags, validated before start."""

    home: Path
    """The node's home directory: identity, database, logs, control socket, node.json."""
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    """Multiaddrs to listen on (TCP)."""
    bootstrap: tuple[str, ...] = ()
    """Multiaddrs (with /p2p/<peer id>) of peers to dial on start and keep dialling."""
    network: str = "devnet"
    """Network name: gossip topics are plexus/<network>/<service>."""
    services: tuple[str, ...] = ()
    """Services to run, by name; empty means every registered service (node/services/__init__.py)."""
    options: tuple[tuple[str, str], ...] = ()
    """Service options as (key, value) pairs from `plexus run --opt key=value` (e.g. adversary=noise);
    each service reads and validates its own keys."""
    gossip: GossipSettings = field(default_factory=GossipSettings)
    """GossipSub and publish tuning."""
    membership: MembershipSettings = field(default_factory=MembershipSettings)
    """Peer records and discovery."""
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    """Bounded waits."""
    log_level: str = "INFO"
    """Log level of DIR/node.log."""
    libp2p_defaults: bool = False
    """Benchmark baseline only: build the libp2p stack with py-libp2p's defaults (every security
    transport, 3 connections per peer, 120 s heartbeat, 10 msg/s spam cap) instead of our tuning."""

    def validate(self) -> None:
        if not NETWORK_NAME_PATTERN.match(self.network):
            raise ValueError(f"network name {self.network!r} must match {NETWORK_NAME_PATTERN.pattern}")
        if not self.listen:
            raise ValueError("at least one listen address is needed")
        for addr in self.listen + self.bootstrap:
            if not addr.startswith("/"):
                raise ValueError(f"{addr!r} is not a multiaddr (it must start with '/')")
        for addr in self.bootstrap:
            if "/p2p/" not in addr:
                raise ValueError(f"bootstrap address {addr!r} lacks /p2p/<peer id>")
        for key, _value in self.options:
            if not re.match(r"^[a-z][a-z0-9_.-]{0,63}$", key):
                raise ValueError(f"option key {key!r} must be lower-case letters, digits, _ . -")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"unknown log level {self.log_level!r}")
        self.gossip.validate()
        self.membership.validate()
        self.timeouts.validate()

    def option(self, key: str, default: str | None = None) -> str | None:
        """The last value given for an option key, or ``default``."""
        found = [v for k, v in self.options if k == key]
        return found[-1] if found else default

    def topic(self, service: str) -> str:
        """The gossip topic name of a service on this node's network."""
        return f"plexus/{self.network}/{service}"
