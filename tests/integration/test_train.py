"""Shared-seed SPSA across real nodes: identical replicas, a late joiner, and bad updates refused."""

from __future__ import annotations

import dataclasses
import os
from contextlib import AsyncExitStack, asynccontextmanager

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service

from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from node.host import build_stack
from node.settings import NodeSettings
from protocols import spsa as wire
from protocols.codec import encode

ROUNDS = 7
ROUND_S = 2.5
OPTIONS = (("train.round_s", str(ROUND_S)), ("train.start_delay_s", "4.0"), ("train.eval_batches", "1"), ("train.eval_batch_size", "4"),
           ("train.checkpoint_every", "2"), ("train.batch_size", "4"), ("train.seq_len", "32"))
RUN_TIMEOUT_S = 45.0


def setup_module() -> None:
    """Import torch and build the model once up front: the nodes then load a run well inside its start delay."""
    from learning.models import TINY, build_tiny

    build_tiny(TINY)


def configure(_index: int, settings: NodeSettings) -> NodeSettings:
    return dataclasses.replace(settings, services=("membership", "train"), options=OPTIONS)


def train(node):
    return node.service("train")


async def call(node, cmd: str, **args) -> dict:
    return await node.control.commands[cmd](args)


def done(nodes) -> bool:
    return all(train(n).state == "done" for n in nodes)


async def test_replicas_reach_identical_checksums_and_a_late_joiner_catches_up(short_tmp):
    async with running_nodes(3, short_tmp, configure) as nodes:
        await connect(nodes, "full")
        await wait_for_mesh(nodes, wire.topic("devnet"))
        # Arrange: two nodes start together, the third joins three rounds late
        await call(nodes[0], "train.start", run="it", rounds=ROUNDS)
        await wait_for(lambda: "it" in train(nodes[1]).known and "it" in train(nodes[2]).known, what="announcement")
        await call(nodes[1], "train.start", run="it")
        await wait_for(lambda: train(nodes[0]).round >= 3, timeout_s=RUN_TIMEOUT_S, what="round 3")
        # Act
        joined = await call(nodes[2], "train.start", run="it")
        await wait_for(lambda: done(nodes), timeout_s=RUN_TIMEOUT_S, what="every node done")
        # Assert
        sums = {train(n).stats["checksum"] for n in nodes}
        assert joined["joined"]
        assert len(sums) == 1
        assert train(nodes[2]).stats["syncs"] >= 1
        assert train(nodes[2]).stats["train_loss"] is not None  # the joiner contributed after catching up
        assert max(train(nodes[0]).stats["applied_per_round"]) == 3
        assert train(nodes[0]).stats["wire_bytes"] <= 256


@asynccontextmanager
async def rogue_peer(tmp):
    """A bare stack with our transports and no validators: it publishes whatever it likes."""
    stack = build_stack(create_new_key_pair(), NodeSettings(home=tmp / "rogue"))
    async with AsyncExitStack() as exits:
        await exits.enter_async_context(stack.host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]))
        await exits.enter_async_context(background_trio_service(stack.pubsub))
        await exits.enter_async_context(background_trio_service(stack.router))
        await stack.pubsub.wait_until_ready()
        yield stack


def update(run: str, round_: int, grads: bytes) -> bytes:
    return encode(wire.SpsaUpdate(r=run, n=round_, g=grads, c=b"\x00" * wire.CHECKSUM_BYTES))


async def publish_forged(rogue, topic: str, data: bytes) -> bytes:
    """Send a message under a fresh identity whose signature is garbage; return that identity."""
    other = create_new_key_pair()
    from libp2p.peer.id import ID

    author = ID.from_pubkey(other.public_key)
    msg = rpc_pb2.Message(data=data, topicIDs=[topic], from_id=author.to_bytes(), seqno=os.urandom(8),
                          signature=os.urandom(64), key=other.public_key.serialize())
    await rogue.router.publish(rogue.host.get_id(), msg)
    return author.to_bytes()


async def test_bad_updates_are_refused_without_harming_the_replicas(short_tmp):
    async with running_nodes(2, short_tmp, configure) as nodes, rogue_peer(short_tmp) as rogue:
        await connect(nodes, "full")
        topic = wire.topic("devnet")
        await rogue.pubsub.subscribe(topic)
        for node in nodes:
            await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        await wait_for_mesh(nodes, topic)
        await wait_for(lambda: all(rogue.host.get_id() in n.stack.pubsub.peer_topics.get(topic, ()) for n in nodes),
                       what="rogue on the topic")
        await call(nodes[0], "train.start", run="bad", rounds=4)
        await wait_for(lambda: "bad" in train(nodes[1]).known, what="announcement")
        await call(nodes[1], "train.start", run="bad")
        await wait_for(lambda: train(nodes[0]).round >= 1 and train(nodes[0]).state == "training",
                       timeout_s=RUN_TIMEOUT_S, what="round 1")
        r = train(nodes[0]).round
        rogue_id = rogue.host.get_id().to_bytes()
        # Act: one valid update, then a duplicate, a stale round, another run, a reserved byte, a forgery
        await rogue.pubsub.publish(topic, update("bad", r, b"\x05"))
        await trio.sleep(0.2)
        await rogue.pubsub.publish(topic, update("bad", r, b"\x06"))
        await rogue.pubsub.publish(topic, update("bad", r - 1, b"\x05"))
        await rogue.pubsub.publish(topic, update("other", r, b"\x05"))
        await rogue.pubsub.publish(topic, update("bad", r, b"\x80"))
        forged = await publish_forged(rogue, topic, update("bad", r, b"\x05"))
        await wait_for(lambda: done(nodes), timeout_s=RUN_TIMEOUT_S, what="every node done")
        # Assert
        for node in nodes:
            entries = train(node).trainer.replica.log.entries(r)
            authors = [e.record.peer for e in entries]
            assert authors.count(rogue_id) == 1
            assert [e.record.grads for e in entries if e.record.peer == rogue_id] == [b"\x05"]
            assert forged not in authors
            assert node.scores.rejects.get(rogue.host.get_id().to_base58(), 0) >= 1
        assert train(nodes[0]).stats["checksum"] == train(nodes[1]).stats["checksum"]
