"""Assembling a py-libp2p host the way Plexus needs it (DESIGN.md §2).

Noise is the only security transport (a plaintext peer cannot connect), one connection per peer
(py-libp2p waits 250 ms per dial otherwise), GossipSub with go-libp2p-pubsub's documented degrees,
strict signing and the default message id, its spam limit set on purpose, and every stream handler
guarded so that an exception from one bad peer resets a stream instead of ending the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from node.settings import NodeSettings

log = logging.getLogger(__name__)

GOSSIP_PROTOCOLS = (PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID)
APP_SCORE_WEIGHT = 1.0
MAX_CONNECTIONS_PER_PEER = 1

StreamHandler = Callable[[INetStream], Awaitable[None]]


@dataclass
class Libp2pStack:
    """The host and its pubsub layer, not yet running."""

    host: IHost
    pubsub: Pubsub
    router: GossipSub


class PlexusGossipSub(GossipSub):
    """GossipSub with two per-message costs of py-libp2p 0.8.1 removed.

    - No signed peer record (``senderRecord``, ~175 bytes) in every RPC: py-libp2p attaches it on
      top of the hello on each new stream, half the bytes of a small gossip message and what kept a
      one-byte SPSA update above 256 bytes on the wire. Control RPCs no longer even build it.
    - IDONTWANT only for messages of at least ``idontwant_min_bytes`` (go-libp2p-pubsub's
      ``IDontWantMessageThreshold``, 1 KiB): py-libp2p sends one control RPC to every mesh peer for
      every message it receives, which for small messages costs more than the duplicate it saves.
    """

    def __init__(self, *args, idontwant_min_bytes: int = 1024, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.idontwant_min_bytes = idontwant_min_bytes
        self._current_message_bytes = 0

    def send_rpc(self, peer_id: ID, rpc, priority: bool = False) -> None:
        if rpc.HasField("senderRecord"):
            rpc.ClearField("senderRecord")
        super().send_rpc(peer_id, rpc, priority)

    async def emit_control_message(self, control_msg, to_peer: ID) -> None:
        self.send_rpc(to_peer, rpc_pb2.RPC(control=control_msg), priority=True)

    async def publish(self, msg_forwarder: ID, pubsub_msg) -> None:
        # GossipSub.publish calls _emit_idontwant_for_message before its first await, so the size
        # recorded here is the one of the message that call is about.
        self._current_message_bytes = len(pubsub_msg.data)
        await super().publish(msg_forwarder, pubsub_msg)

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids) -> None:
        if self._current_message_bytes >= self.idontwant_min_bytes:
            await super()._emit_idontwant_for_message(msg_id, topic_ids)


class SerialMplex(Mplex):
    """Mplex whose frames reach the secure channel one whole frame at a time.

    py-libp2p 0.8.1's Mplex writes frames from many streams concurrently; its Noise session encrypts
    a frame, then awaits the socket (and splits frames over 64 KiB into several), so two writers can
    interleave or reorder ciphertexts and the peer fails to decrypt ("Failed authentication of
    message"). Yamux has a connection-wide write lock for this; Mplex gets one here. A frame once
    started is also shielded from cancellation: a timeout firing between two Noise chunks would
    consume a nonce the peer never sees and corrupt the connection for good.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._frame_write_lock = trio.Lock()

    async def write_to_stream(self, _bytes: bytes) -> None:
        async with self._frame_write_lock:
            with trio.CancelScope(shield=True):
                await super().write_to_stream(_bytes)


def muxer_options() -> dict:
    """Mplex first (serialised), Yamux still offered: js/go peers negotiate Yamux.

    py-libp2p 0.8.1's Yamux sends window updates from the reading task; under gossip load two
    peers' readers ended up blocked writing to each other and streams stalled for seconds.
    """
    return {TProtocol(MPLEX_PROTOCOL_ID): SerialMplex, TProtocol(YAMUX_PROTOCOL_ID): Yamux}


def noise_only(key_pair: KeyPair) -> dict:
    """Security options offering Noise and nothing else."""
    return {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)}


def connection_config(settings: NodeSettings) -> ConnectionConfig:
    """One connection per peer; py-libp2p's auto-dialler is off (min 0): discovery decides whom to dial."""
    return ConnectionConfig(
        max_connections_per_peer=MAX_CONNECTIONS_PER_PEER,
        min_connections=0,
        low_watermark=0,
        dial_timeout=settings.timeouts.dial_s,
    )


def build_stack(key_pair: KeyPair, settings: NodeSettings, app_score: Callable[[ID], float] | None = None) -> Libp2pStack:
    """Create the host, GossipSub router and Pubsub for one node."""
    if settings.libp2p_defaults:
        return _default_stack(key_pair, settings)
    gossip = settings.gossip
    host = new_host(
        key_pair=key_pair,
        sec_opt=noise_only(key_pair),
        connection_config=connection_config(settings),
        listen_addrs=[multiaddr.Multiaddr(a) for a in settings.listen],
        muxer_opt=muxer_options(),
    )
    router = PlexusGossipSub(
        protocols=list(GOSSIP_PROTOCOLS),
        degree=gossip.degree,
        degree_low=gossip.degree_low,
        degree_high=gossip.degree_high,
        heartbeat_interval=gossip.heartbeat_interval_s,
        score_params=ScoreParams(app_specific_score_fn=app_score, p6_appl_slack_weight=APP_SCORE_WEIGHT),
        spam_protection_enabled=True,
        max_messages_per_topic_per_second=gossip.spam_limit_per_topic_s,
        idontwant_min_bytes=gossip.idontwant_min_bytes,
    )
    pubsub = Pubsub(host, router, strict_signing=True)
    # py-libp2p seeds the seqno counter with whole seconds: a node restarted within N seconds of
    # publishing N messages reuses (sender, seqno) ids, which peers drop as already seen. Seed it
    # with nanoseconds as go-libp2p-pubsub does.
    pubsub.counter = time.time_ns()
    _guard_pubsub(host, pubsub, router)
    return Libp2pStack(host=host, pubsub=pubsub, router=router)


def _default_stack(key_pair: KeyPair, settings: NodeSettings) -> Libp2pStack:
    """The benchmark baseline: py-libp2p's own defaults everywhere it has them (D is required)."""
    gossip = settings.gossip
    host = new_host(key_pair=key_pair, listen_addrs=[multiaddr.Multiaddr(a) for a in settings.listen])
    router = GossipSub(list(GOSSIP_PROTOCOLS), gossip.degree, gossip.degree_low, gossip.degree_high)
    pubsub = Pubsub(host, router)
    _guard_pubsub(host, pubsub, router)
    return Libp2pStack(host=host, pubsub=pubsub, router=router)


def _guard_pubsub(host: IHost, pubsub: Pubsub, router: GossipSub) -> None:
    for protocol in router.get_protocols():
        host.set_stream_handler(protocol, guard_handler(pubsub.stream_handler, f"pubsub {protocol}"))


def guard_handler(handler: StreamHandler, label: str) -> StreamHandler:
    """Wrap a stream handler so that no exception escapes into the swarm (DESIGN.md §3).

    py-libp2p 0.8.1 ends the process when an exception escapes a handler (a malformed protobuf
    frame from one peer is enough); here it costs that peer a reset stream and one log line.
    """

    async def guarded(stream: INetStream) -> None:
        try:
            await handler(stream)
        except Exception as exc:  # noqa: BLE001 - the whole point: nothing escapes
            peer = getattr(getattr(stream, "muxed_conn", None), "peer_id", "?")
            log.warning("%s: dropped stream from %s: %s: %s", label, peer, type(exc).__name__, exc)
            try:
                await stream.reset()
            except Exception:  # noqa: BLE001 - the stream may already be gone
                pass

    return guarded


def set_guarded_handler(host: IHost, protocol: str, handler: StreamHandler) -> None:
    """Register our own stream protocol handler, guarded."""
    host.set_stream_handler(TProtocol(protocol), guard_handler(handler, protocol))
