"""The query service: answer remote peers on /plexus/query/1.0.0 and ask them for the CLI."""

from __future__ import annotations

import dataclasses
import time

import trio
from libp2p.peer.id import ID

from node.control import CommandError
from node.runtime import VERSION, Node
from protocols import query as wire
from protocols.codec import DecodeError


class QueryService:
    """Status, peers and services of this node, for remote peers and for `plexus status`."""

    name = "query"

    def __init__(self) -> None:
        self.node: Node | None = None

    async def start(self, node: Node) -> None:
        self.node = node
        node.serve_protocol(wire.PROTOCOL_ID, self._serve)
        node.control.add("status", self._cmd_status)
        node.control.add("services", self._cmd_services)
        node.control.add("query", self._cmd_query)
        node.control.add("scores.peers", self._cmd_peer_scores)

    async def _serve(self, stream) -> None:
        with trio.move_on_after(self.node.settings.timeouts.stream_s):
            await wire.serve(stream, self._answer)
        await stream.close()

    async def _answer(self, kind: str) -> wire.Reply:
        if kind == "status":
            return self.status()
        if kind == "peers":
            rows = self.node.store.peers()[: wire.MAX_PEERS_IN_REPLY]
            connected = {p.to_base58() for p in self.node.connected_peers()}
            return wire.PeersReply(
                tuple(
                    wire.PeerEntry(r.peer_id, r.last_seen, r.peer_id in connected, r.addrs[:16])
                    for r in rows
                    if r.peer_id != str(self.node.peer_id)
                )
            )
        return self.services()

    def status(self) -> wire.StatusReply:
        return wire.StatusReply(
            peer_id=str(self.node.peer_id),
            network=self.node.settings.network,
            version=VERSION,
            uptime_s=round(time.time() - self.node.started_at, 3),
            connected=len(self.node.connected_peers()),
            known_peers=len(self.node.store.peers()),
            topics=tuple(self.node.topics),
        )

    def services(self) -> wire.ServicesReply:
        return wire.ServicesReply(
            services=tuple(s.name for s in self.node.services), protocols=tuple(self.node.stream_protocols)
        )

    async def _cmd_status(self, _args: dict) -> dict:
        router = self.node.stack.router
        status = dataclasses.asdict(self.status())
        status["addrs"] = self.node.addrs()
        status["mesh"] = {topic: len(peers) for topic, peers in router.mesh.items()}
        status["pid"] = self.node.info()["pid"]
        return status

    async def _cmd_services(self, _args: dict) -> dict:
        return dataclasses.asdict(self.services())

    async def _cmd_peer_scores(self, _args: dict) -> dict:
        return {"rejects": dict(self.node.scores.rejects)}

    async def _cmd_query(self, args: dict) -> dict:
        kind, peer = args.get("kind"), args.get("peer")
        if kind not in wire.QUERY_KINDS:
            raise CommandError(f"kind must be one of {', '.join(wire.QUERY_KINDS)}")
        try:
            peer_id = ID.from_base58(str(peer))
        except Exception as exc:  # noqa: BLE001 - base58 errors come in several types
            raise CommandError(f"{peer!r} is not a peer id") from exc
        try:
            with trio.fail_after(self.node.settings.timeouts.stream_s):
                stream = await self.node.open_stream(peer_id, wire.PROTOCOL_ID)
                try:
                    reply = await wire.ask(stream, kind)
                finally:
                    await stream.close()
        except trio.TooSlowError as exc:
            raise CommandError(f"peer {peer} did not answer in time") from exc
        except (wire.QueryFailed, DecodeError) as exc:
            raise CommandError(f"peer {peer} answered badly: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - dial/negotiation errors of libp2p
            raise CommandError(f"cannot reach peer {peer}: {type(exc).__name__}: {exc}") from exc
        return dataclasses.asdict(reply)
