"""User topics: publish text notes, keep what arrives in the store, stream it to `gossip tail`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from node.control import CommandError
from node.runtime import Node
from protocols.codec import decode
from protocols.gossip import GossipNote, encode_note, topic_name, validate_note

log = logging.getLogger(__name__)

JOINED_TOPICS_KEY = "gossip.topics"
DEFAULT_TOPICS = ("news",)
TAIL_BUFFER = 256
TAIL_BACKLOG = 10
RECEIVED_LIMIT = 100_000


class GossipService:
    """Publish and subscribe to named user topics."""

    name = "gossip"

    def __init__(self) -> None:
        self.node: Node | None = None
        self._tails: dict[str, list[MemoryObjectSendStream]] = {}

    async def start(self, node: Node) -> None:
        self.node = node
        stored = node.store.get(JOINED_TOPICS_KEY)
        for name in json.loads(stored) if stored else DEFAULT_TOPICS:
            await self.join(name)
        node.control.add("gossip.publish", self._cmd_publish)
        node.control.add("gossip.join", self._cmd_join)
        node.control.add("gossip.received", self._cmd_received)
        node.control.add_stream("gossip.tail", self._cmd_tail)

    async def join(self, name: str) -> str:
        """Subscribe to a user topic (persisted: a restarted node rejoins it)."""
        topic = topic_name(self.node.settings.network, name)
        if name not in self._tails:
            self._tails[name] = []
            await self.node.subscribe(topic, lambda msg, n=name: self._on_message(n, msg), self._validate)
            self.node.store.put(JOINED_TOPICS_KEY, json.dumps(sorted(self._tails)).encode())
        return topic

    def _validate(self, _author: str, msg: rpc_pb2.Message):
        return validate_note(msg.data)[0]

    async def _on_message(self, name: str, msg: rpc_pb2.Message) -> None:
        author = ID(msg.from_id).to_base58()
        now = time.time()
        self.node.store.add_gossip(msg.from_id + msg.seqno, msg.topicIDs[0], author, now, msg.data)
        self.node.store.touch_peer(author, now, "gossip")
        note = decode(msg.data, expect=GossipNote)
        event = {"topic": name, "author": author, "text": note.text, "sent_at": note.sent_at, "received_at": now}
        for tail in list(self._tails.get(name, [])):
            try:
                tail.send_nowait(event)
            except anyio.WouldBlock:
                log.info("gossip tail on %s is slow; dropped one event for it", name)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._tails[name].remove(tail)

    async def _cmd_publish(self, args: dict) -> dict:
        name, text = _topic_arg(args), args.get("text")
        if not isinstance(text, str):
            raise CommandError("gossip.publish needs 'text'")
        try:
            payload = encode_note(text, time.time())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        topic = await self.join(name)
        await self.node.publish(topic, payload)
        return {"topic": topic, "bytes": len(payload)}

    async def _cmd_join(self, args: dict) -> dict:
        return {"topic": await self.join(_topic_arg(args))}

    async def _cmd_received(self, args: dict) -> dict:
        name = _topic_arg(args)
        since = float(args.get("since", 0.0))
        rows = self.node.store.gossip_since(topic_name(self.node.settings.network, name), since, RECEIVED_LIMIT)
        out = []
        for author, received_at, payload in rows:
            note = decode(payload, expect=GossipNote)
            out.append({"author": author, "received_at": received_at, "text": note.text, "sent_at": note.sent_at})
        return {"topic": name, "messages": out}

    async def _cmd_tail(self, args: dict) -> AsyncIterator[dict]:
        name = _topic_arg(args)
        await self.join(name)
        backlog = (await self._cmd_received({"topic": name}))["messages"][-TAIL_BACKLOG:]
        for row in backlog:
            yield {"topic": name, **row}
        send, receive = anyio.create_memory_object_stream[dict](TAIL_BUFFER)
        self._tails[name].append(send)
        try:
            async with receive:
                async for event in receive:
                    yield event
        finally:
            if send in self._tails[name]:
                self._tails[name].remove(send)


def _topic_arg(args: dict) -> str:
    name = args.get("topic")
    if not isinstance(name, str):
        raise CommandError("a 'topic' name is needed")
    try:
        topic_name("x", name)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return name
