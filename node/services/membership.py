"""Membership: signed peer records on gossip, the peer table, bootstrap and discovery dials."""

from __future__ import annotations

import logging
import random
import time

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from node.control import CommandError
from node.ratelimit import KeyedLimiter
from node.runtime import Node
from protocols.codec import decode
from protocols.membership import PeerRecord
from protocols.message import SignedRecord
from protocols.records import encode_signed, sign_record, verify_record
from protocols.validation import Validation, accept, ignore, reject, validate_signed_frame

log = logging.getLogger(__name__)

TOPIC_SERVICE = "membership"
MILLIS = 1000
ANNOUNCE_JITTER = 0.1
"""Announcement intervals vary by ±10% so that nodes started together do not announce together."""
CONNECT_POLL_S = 0.5
"""How often a node without connections checks whether it may send its first record."""
RECHECK_S = 5.0
"""How often the announcement interval is re-read while waiting (it grows as the peer table fills)."""


class MembershipService:
    """Announce ourselves, learn others, keep the peer table and enough connections."""

    name = "membership"

    def __init__(self) -> None:
        self.node: Node | None = None
        self._limiter: KeyedLimiter | None = None
        self.announcements = 0
        """Signed peer records this node has published since it started."""

    async def start(self, node: Node) -> None:
        self.node = node
        settings = node.settings.membership
        self._limiter = KeyedLimiter(settings.record_rate_per_peer_s, max(1.0, settings.record_rate_per_peer_s))
        await node.subscribe(node.settings.topic(TOPIC_SERVICE), self._on_record, self._validate)
        node.spawn("membership.bootstrap", self._bootstrap_loop)
        node.spawn("membership.announce", self._announce_loop)
        node.control.add("peers", self._cmd_peers)
        node.control.add("dial", self._cmd_dial)

    # -- inbound -------------------------------------------------------------------------
    def _validate(self, author: str, msg: rpc_pb2.Message) -> Validation:
        def rule(record_author: bytes, record: PeerRecord) -> Validation:
            if record_author != msg.from_id:
                return reject("record author is not the message source")
            if record.network != self.node.settings.network:
                return ignore(f"record for network {record.network!r}")
            if not self._limiter.allow(author):
                return ignore("peer record rate limit")
            return accept()

        return validate_signed_frame(msg.data, expect=PeerRecord, rule=rule)[0]

    async def _on_record(self, msg: rpc_pb2.Message) -> None:
        record = verify_record(decode(msg.data, expect=SignedRecord), expect=PeerRecord)
        author = ID(msg.from_id)
        if author == self.node.peer_id:
            return
        fresh = self.node.store.record_peer(author.to_base58(), time.time(), record.addrs, record.seq, record.services)
        connected = self.node.connected_peers()
        # Only the peer with the smaller id dials: when both sides dial each other at once,
        # py-libp2p keeps one connection and the pubsub stream on the other one dies with it.
        dials_first = self.node.peer_id.to_bytes() < author.to_bytes()
        if fresh and dials_first and author not in connected and len(connected) < self.node.settings.membership.target_peers:
            for addr in record.addrs:
                if await self.node.dial(f"{addr}/p2p/{author.to_base58()}"):
                    break

    # -- outbound ------------------------------------------------------------------------
    def _own_record(self) -> bytes:
        suffix = f"/p2p/{self.node.peer_id}"
        addrs = tuple(a[: -len(suffix)] if a.endswith(suffix) else a for a in self.node.addrs())
        record = PeerRecord(
            network=self.node.settings.network,
            addrs=addrs,
            services=tuple(s.name for s in self.node.services),
            seq=int(time.time() * MILLIS),
        )
        return encode_signed(sign_record(record, self.node.key_pair.private_key))

    async def _announce_loop(self) -> None:
        """Announce once connected (at a random point of the first interval), then whenever the growing interval has passed."""
        topic = self.node.settings.topic(TOPIC_SERVICE)
        while not self.node.connected_peers():
            await trio.sleep(CONNECT_POLL_S)
        # nodes started together would all announce at once, and every record reaches every node
        await trio.sleep(random.uniform(0, self.node.settings.membership.announce_interval_s))
        while True:
            now = time.time()
            for peer in self.node.connected_peers():
                self.node.store.touch_peer(peer.to_base58(), now, "connection")
            try:
                await self.node.publish(topic, self._own_record())
                self.announcements += 1
            except Exception as exc:  # noqa: BLE001 - no peers yet, budget exhausted...
                log.debug("announce failed: %s", exc)
            jitter = random.uniform(1 - ANNOUNCE_JITTER, 1 + ANNOUNCE_JITTER)
            # the interval is re-read as the table fills: a node that just joined waits long once it knows many
            while (remaining := now + self.announce_interval() * jitter - time.time()) > 0:
                await trio.sleep(min(RECHECK_S, remaining))

    def announce_interval(self) -> float:
        """Seconds between announcements: grows with the peers we know (see MembershipSettings)."""
        settings = self.node.settings.membership
        known = self.node.store.peer_count()
        return min(settings.max_announce_interval_s,
                   max(settings.announce_interval_s, settings.announce_per_peer_s * known))

    async def _bootstrap_loop(self) -> None:
        while True:
            for addr in self.node.settings.bootstrap:
                await self.node.dial(addr)
            await trio.sleep(self.node.settings.membership.redial_interval_s)

    # -- control -------------------------------------------------------------------------
    async def _cmd_dial(self, args: dict) -> dict:
        """Dial a full multiaddr; with ``reconnect`` drop an existing connection first. Times the dial."""
        addr = args.get("addr")
        if not isinstance(addr, str) or "/p2p/" not in addr:
            raise CommandError("dial needs 'addr', a multiaddr ending in /p2p/<peer id>")
        peer = ID.from_base58(addr.rsplit("/p2p/", 1)[1])
        if args.get("reconnect") and peer in self.node.connected_peers():
            await self.node.host.disconnect(peer)
        started = time.perf_counter()
        ok = await self.node.dial(addr)
        return {"connected": ok, "ms": round((time.perf_counter() - started) * MILLIS, 3)}

    async def _cmd_peers(self, _args: dict) -> dict:
        return {"peers": self.peer_table()}

    def peer_table(self) -> list[dict]:
        """The peer table as plain rows (also served to remote peers by the query service)."""
        connected = {p.to_base58() for p in self.node.connected_peers()}
        expiry = self.node.settings.membership.peer_expiry_s
        now = time.time()
        return [
            {
                "peer_id": row.peer_id,
                "addrs": list(row.addrs),
                "last_seen": row.last_seen,
                "age_s": round(now - row.last_seen, 1),
                "connected": row.peer_id in connected,
                "stale": now - row.last_seen > expiry,
                "source": row.source,
                "services": list(row.services),
            }
            for row in self.node.store.peers()
            if row.peer_id != str(self.node.peer_id)
        ]
