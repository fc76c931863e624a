"""A node faced with garbage, forgeries and plaintext peers stays up and keeps answering."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack, asynccontextmanager

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.tools.anyio_service import background_trio_service

from node.harness import running_nodes, wait_for
from node.host import build_stack
from node.settings import NodeSettings
from protocols import query as wire
from protocols.codec import encode
from protocols.framing import LENGTH_PREFIX, write_frame
from protocols.membership import PeerRecord
from protocols.message import ErrorReply
from protocols.codec import decode
from protocols.framing import read_frame
from protocols.records import encode_signed, sign_record


@asynccontextmanager
async def rogue_peer(tmp):
    """A bare py-libp2p stack with our transports but no validators: it sends whatever it likes."""
    settings = NodeSettings(home=tmp / "rogue")
    stack = build_stack(create_new_key_pair(), settings)
    async with AsyncExitStack() as exits:
        await exits.enter_async_context(stack.host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]))
        await exits.enter_async_context(background_trio_service(stack.pubsub))
        await exits.enter_async_context(background_trio_service(stack.router))
        await stack.pubsub.wait_until_ready()
        yield stack


async def ask_status(rogue, node) -> str:
    stream = await rogue.host.new_stream(node.peer_id, [TProtocol(wire.PROTOCOL_ID)])
    reply = await wire.ask(stream, "status")
    await stream.close()
    return reply.peer_id


async def test_garbage_on_the_query_protocol_gets_an_error_and_the_node_still_answers(short_tmp):
    async with running_nodes(1, short_tmp) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        # Act: a frame of random bytes, an oversized length prefix, and a truncated frame
        stream = await rogue.host.new_stream(node.peer_id, [TProtocol(wire.PROTOCOL_ID)])
        await write_frame(stream, os.urandom(64))
        reply = decode(await read_frame(stream, wire.MAX_REPLY_BYTES))
        for junk in (LENGTH_PREFIX.pack(2**31) + b"x", b"\x00\x00"):
            bad = await rogue.host.new_stream(node.peer_id, [TProtocol(wire.PROTOCOL_ID)])
            await bad.write(junk)
            await bad.close()
        # Assert
        assert isinstance(reply, ErrorReply)
        assert await ask_status(rogue, node) == str(node.peer_id)


async def test_malformed_pubsub_frame_costs_a_stream_not_the_node(short_tmp):
    async with running_nodes(1, short_tmp) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        # Act: a varint length followed by bytes that are not a protobuf RPC
        stream = await rogue.host.new_stream(node.peer_id, [TProtocol("/meshsub/1.1.0")])
        await stream.write(b"\x20" + b"\xff" * 32)
        await trio.sleep(0.2)
        # Assert
        assert await ask_status(rogue, node) == str(node.peer_id)


async def test_garbage_and_forged_records_on_gossip_are_rejected_and_penalised(short_tmp):
    async with running_nodes(1, short_tmp) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        news, members = "plexus/devnet/news", "plexus/devnet/membership"
        for topic in (news, members):
            await rogue.pubsub.subscribe(topic)
        rogue_id = rogue.host.get_id().to_base58()
        await wait_for(lambda: rogue.host.get_id() in node.stack.router.mesh.get(news, ()) or
                       rogue.host.get_id() in node.stack.pubsub.peer_topics.get(news, ()), what="rogue known on topic")
        other = create_new_key_pair()
        forged = encode_signed(sign_record(PeerRecord("devnet", ("/ip4/127.0.0.1/tcp/9",), (), 1), other.private_key))
        # Act
        await rogue.pubsub.publish(news, os.urandom(100))
        await rogue.pubsub.publish(news, encode(PeerRecord.sample()))
        await rogue.pubsub.publish(members, forged)
        # Assert
        await wait_for(lambda: node.scores.rejects.get(rogue_id, 0) >= 3, what="three rejects counted")
        assert node.scores.score(rogue_id) < 0
        assert node.store.gossip_since(news) == []
        assert await ask_status(rogue, node) == str(node.peer_id)


async def test_a_plaintext_only_peer_cannot_connect(short_tmp):
    async with running_nodes(1, short_tmp) as (node,):
        key_pair = create_new_key_pair()
        plain = new_host(key_pair=key_pair, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)})
        async with plain.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            # Act / Assert
            with pytest.raises(Exception):
                with trio.fail_after(10):
                    await plain.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
            assert plain.get_id() not in node.connected_peers()
