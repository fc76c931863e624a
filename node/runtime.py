"""The running node: the libp2p stack, the store, the task group and the services on top.

A :class:`Node` is what services see: publish/subscribe with validation and backpressure, stream
protocol registration, named background tasks, the control registry, the store and the scores.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

import anyio
import multiaddr
import trio
from anyio.abc import TaskGroup
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service

from node.control import ControlRegistry, serve_control
from node.home import NodeHome, write_atomic
from node.host import StreamHandler, build_stack, set_guarded_handler
from node.identity import peer_id_of
from node.ratelimit import KeyedLimiter, TokenBucket
from node.scoring import PeerScores
from node.settings import NodeSettings
from node.store import Store
from protocols.validation import Validation, Verdict

log = logging.getLogger(__name__)

PUBLIC_FILE_MODE = 0o644
VERSION = "0.1.0"
PEER_RECORD_POLL_S = 0.5
"""How often ``open_stream`` looks for a record of a peer it has no address for."""

GossipHandler = Callable[[rpc_pb2.Message], Awaitable[None]]
GossipValidator = Callable[[str, rpc_pb2.Message], Validation]


class Service(Protocol):
    """A node service: registers its handlers, topics, commands and tasks in :meth:`start`."""

    name: str

    async def start(self, node: "Node") -> None: ...


class PublishTimeout(RuntimeError):
    """Backpressure: the topic's publish budget did not free up within the wait limit."""


class _PeerTableNotifee(INotifee):
    """Keeps the peer table's last-seen current as connections open and close."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        self.store.touch_peer(peer.to_base58(), time.time(), "connection")

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self.store.touch_peer(conn.muxed_conn.peer_id.to_base58(), time.time(), "connection")

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr) -> None:
        return None


class Node:
    """One daemon's runtime state; create with :meth:`open`, drive with :meth:`run`."""

    def __init__(self, settings: NodeSettings, key_pair: KeyPair, store: Store, services: list[Service]) -> None:
        self.settings = settings
        self.home = NodeHome(settings.home)
        self.key_pair = key_pair
        self.peer_id = peer_id_of(key_pair)
        self.store = store
        self.services = services
        self.scores = PeerScores()
        self.control = ControlRegistry()
        self.stack = build_stack(key_pair, settings, app_score=self._app_score)
        self.host.get_network().register_notifee(_PeerTableNotifee(store))
        self.started_at = time.time()
        self.stream_protocols: list[str] = []
        self.topics: list[str] = []
        self._publish_buckets: dict[str, TokenBucket] = {}
        self._inbound = KeyedLimiter(settings.gossip.inbound_rate_per_peer_s, settings.gossip.inbound_rate_per_peer_s)
        self._tasks: TaskGroup | None = None
        self._stop = trio.Event()

    # -- identity and addresses ----------------------------------------------------------
    @property
    def host(self):
        return self.stack.host

    def addrs(self) -> list[str]:
        """Our listen multiaddrs with /p2p/<peer id>."""
        return [str(a) for a in self.host.get_addrs()]

    def connected_peers(self) -> list[ID]:
        return list(self.host.get_connected_peers())

    def service(self, name: str) -> Service:
        """A running service by name; KeyError if this node does not run it."""
        for candidate in self.services:
            if candidate.name == name:
                return candidate
        raise KeyError(f"service {name!r} is not running on this node")

    # -- tasks ---------------------------------------------------------------------------
    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start a named background task owned by the node's task group."""
        if self._tasks is None:
            raise RuntimeError("node is not running")
        self._tasks.start_soon(self._supervised, name, fn, *args, name=name)

    async def _supervised(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:  # noqa: BLE001 - one failing task is logged, the node goes on
            log.exception("task %s failed", name)

    def stop(self) -> None:
        """Ask the node to shut down (idempotent)."""
        self._stop.set()

    # -- gossip --------------------------------------------------------------------------
    async def subscribe(self, topic: str, handler: GossipHandler, validator: GossipValidator | None = None) -> None:
        """Join a topic: validate with ``validator`` and hand accepted messages to ``handler``."""
        if topic in self.topics:
            return
        self.stack.pubsub.set_topic_validator(topic, self._wrap_validator(topic, validator), False)
        subscription = await self.stack.pubsub.subscribe(topic)
        self.topics.append(topic)
        self.spawn(f"gossip.drain[{topic}]", self._drain, topic, subscription, handler)

    def _wrap_validator(self, topic: str, validator: GossipValidator | None) -> Callable[[ID, rpc_pb2.Message], bool]:
        max_bytes = self.settings.gossip.max_message_bytes

        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            author = ID(msg.from_id).to_base58()
            if len(msg.data) > max_bytes:
                verdict = Validation(Verdict.REJECT, f"{len(msg.data)} bytes over the {max_bytes}-byte cap")
            elif author != str(self.peer_id) and not self._inbound.allow((author, topic)):
                verdict = Validation(Verdict.IGNORE, "author over its rate limit")
            elif validator is None:
                verdict = Validation(Verdict.ACCEPT)
            else:
                try:
                    verdict = validator(author, msg)
                except Exception as exc:  # noqa: BLE001 - a validator bug must not stop gossip
                    log.exception("validator for %s failed", topic)
                    verdict = Validation(Verdict.IGNORE, f"validator error {type(exc).__name__}")
            if verdict.penalises:
                self.scores.penalise(forwarder.to_base58())
                log.info("rejected message on %s from %s (author %s): %s", topic, forwarder, author, verdict.reason)
            return verdict.passes

        return validate

    async def _drain(self, topic: str, subscription, handler: GossipHandler) -> None:
        while True:
            msg = await subscription.get()
            try:
                await handler(msg)
            except Exception:  # noqa: BLE001 - one bad message must not stop the topic
                log.exception("handler for %s failed", topic)

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish with backpressure: wait for the topic's token bucket, at most the stream timeout."""
        bucket = self._publish_buckets.get(topic)
        if bucket is None:
            gossip = self.settings.gossip
            bucket = self._publish_buckets[topic] = TokenBucket(gossip.publish_rate_per_s, gossip.publish_burst)
        deadline = time.monotonic() + self.settings.timeouts.stream_s
        while not bucket.take():
            wait = bucket.wait_time()
            if time.monotonic() + wait > deadline:
                raise PublishTimeout(f"publish budget of {topic} exhausted")
            await trio.sleep(wait)
        await self.stack.pubsub.publish(topic, data)

    # -- streams -------------------------------------------------------------------------
    def serve_protocol(self, protocol: str, handler: StreamHandler) -> None:
        """Register a guarded handler for one of our stream protocols."""
        set_guarded_handler(self.host, protocol, handler)
        self.stream_protocols.append(protocol)

    async def open_stream(self, peer: ID, protocol: str):
        """Open a stream to ``peer``, dialling it from the peer table if not connected."""
        timeouts = self.settings.timeouts
        if peer not in self.connected_peers():
            addrs = await self._addresses_of(peer)
            for addr in addrs[:1]:
                await self.dial(f"{addr}/p2p/{peer.to_base58()}")
        with trio.fail_after(timeouts.dial_s):
            return await self.host.new_stream(peer, [protocol])

    async def _addresses_of(self, peer: ID) -> tuple[str, ...]:
        """The peer's addresses from the peer table, waiting up to ``timeouts.peer_record_s`` for its
        signed record (a peer heard of on gossip may not have announced itself yet)."""
        deadline = trio.current_time() + self.settings.timeouts.peer_record_s
        while True:
            row = self.store.peer(peer.to_base58())
            if (row is not None and row.addrs) or trio.current_time() >= deadline:
                return row.addrs if row is not None else ()
            await trio.sleep(PEER_RECORD_POLL_S)

    async def dial(self, addr: str) -> bool:
        """Connect to a peer by full multiaddr; False (and a log line) if it fails in time."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:  # noqa: BLE001 - bad addresses come from config or peers
            log.warning("cannot dial %s: %s", addr, exc)
            return False
        if info.peer_id == self.peer_id or info.peer_id in self.connected_peers():
            return True
        with trio.move_on_after(self.settings.timeouts.dial_s):
            try:
                await self.host.connect(info)
                self.store.touch_peer(info.peer_id.to_base58(), time.time(), "dial", [str(a) for a in info.addrs])
                return True
            except Exception as exc:  # noqa: BLE001 - libp2p raises many types on dial failure
                log.info("dial %s failed: %s", addr, exc)
        return False

    def _app_score(self, peer: ID) -> float:
        return self.scores.score(peer.to_base58())

    # -- lifecycle -----------------------------------------------------------------------
    def info(self) -> dict:
        return {
            "peer_id": str(self.peer_id),
            "addrs": self.addrs(),
            "control": str(self.home.control_socket),
            "pid": os.getpid(),
            "network": self.settings.network,
            "services": [s.name for s in self.services],
            "started_at": self.started_at,
        }

    async def run(self, on_ready: Callable[["Node"], None] | None = None) -> None:
        """Run until :meth:`stop`; ``on_ready`` is called once everything listens."""
        stack = self.stack
        listen = [multiaddr.Multiaddr(a) for a in self.settings.listen]
        async with AsyncExitStack() as exits:
            await exits.enter_async_context(stack.host.run(listen))
            await exits.enter_async_context(background_trio_service(stack.pubsub))
            await exits.enter_async_context(background_trio_service(stack.router))
            with trio.fail_after(self.settings.timeouts.ready_s):
                await stack.pubsub.wait_until_ready()
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                await tasks.start(
                    serve_control, self.home.control_socket, self.control, self.settings.timeouts.control_request_s,
                    name="control.serve",
                )
                for service in self.services:
                    await service.start(self)
                write_atomic(self.home.info, json.dumps(self.info(), indent=2).encode(), PUBLIC_FILE_MODE)
                log.info("node %s ready on %s", self.peer_id, ", ".join(self.addrs()))
                if on_ready is not None:
                    on_ready(self)
                await self._stop.wait()
                tasks.cancel_scope.cancel()
            self._tasks = None
        self.home.info.unlink(missing_ok=True)
        self.home.control_socket.unlink(missing_ok=True)
