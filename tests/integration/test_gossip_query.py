"""Real nodes in one trio loop: gossip delivery, peer records, the query protocol, the control API."""

from __future__ import annotations

import dataclasses
import time

import trio

from node.client import ControlClient
from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from protocols.gossip import topic_name


async def test_gossip_note_reaches_every_node_on_a_line(short_tmp):
    # Arrange
    async with running_nodes(4, short_tmp) as nodes:
        await connect(nodes, "line")
        topic = topic_name("devnet", "news")
        await wait_for_mesh(nodes, topic)
        gossip = nodes[0].services[0]
        # Act
        await gossip._cmd_publish({"topic": "news", "text": "hello line"})
        # Assert
        def everyone_has_it() -> bool:
            return all(
                any(True for row in n.store.gossip_since(topic) if b"hello line" in row[2]) for n in nodes[1:]
            )

        await wait_for(everyone_has_it, what="note stored on nodes 1..3")


def quick_announcements(_index: int, settings):
    """First record within 2 s of connecting; then 2 s, or 10 s per known peer (the default rate)."""
    return dataclasses.replace(settings, membership=dataclasses.replace(settings.membership, announce_interval_s=2.0))


async def test_peer_records_let_the_ends_of_a_line_meet(short_tmp):
    # Arrange: 0-1-2 in a line; 0 and 2 only learn of each other from signed peer records
    async with running_nodes(3, short_tmp, quick_announcements) as nodes:
        await connect(nodes, "line")
        # Act / Assert
        await wait_for(lambda: nodes[2].peer_id in nodes[0].connected_peers(), timeout_s=30, what="0 dials 2")
        table = {row.peer_id for row in nodes[0].store.peers()}
        assert str(nodes[2].peer_id) in table


async def test_announcements_space_out_as_the_peer_table_grows(short_tmp):
    # Arrange
    async with running_nodes(3, short_tmp, quick_announcements) as nodes:
        membership = nodes[0].service("membership")
        alone = membership.announce_interval()
        # Act
        await connect(nodes, "full")
        await wait_for(lambda: nodes[0].store.peer_count() >= 2, what="node 0 knows both peers")
        await wait_for(lambda: all(n.service("membership").announcements >= 1 for n in nodes), what="first records")
        # Assert: 2 s with an empty table; 10 s per known peer once it holds two
        settings = nodes[0].settings.membership
        assert alone == settings.announce_interval_s
        assert membership.announce_interval() == settings.announce_per_peer_s * nodes[0].store.peer_count()


async def test_query_status_peers_and_services_through_the_control_api(short_tmp):
    # Arrange
    async with running_nodes(2, short_tmp) as nodes:
        await connect(nodes, "line")
        client = ControlClient(nodes[0].home.root)
        remote = str(nodes[1].peer_id)
        # Act
        status = await trio.to_thread.run_sync(lambda: client.call("query", peer=remote, kind="status"))
        peers = await trio.to_thread.run_sync(lambda: client.call("query", peer=remote, kind="peers"))
        services = await trio.to_thread.run_sync(lambda: client.call("query", peer=remote, kind="services"))
        # Assert
        assert status["peer_id"] == remote
        assert status["connected"] == 1
        assert str(nodes[0].peer_id) in {p["peer_id"] for p in peers["peers"]}
        assert "/plexus/query/1.0.0" in services["protocols"]
        assert {"gossip", "membership", "query"} <= set(services["services"])


async def test_gossip_tail_streams_new_notes(short_tmp):
    # Arrange
    async with running_nodes(2, short_tmp) as nodes:
        await connect(nodes, "line")
        await wait_for_mesh(nodes, topic_name("devnet", "news"))
        client = ControlClient(nodes[1].home.root)
        received: list[dict] = []

        def tail_two() -> None:
            for event in client.stream("gossip.tail", topic="news"):
                received.append(event)
                if len(received) == 2:
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, tail_two)
            # Act
            for text in ("one", "two"):
                await nodes[0].services[0]._cmd_publish({"topic": "news", "text": text})
                await trio.sleep(0.05)
        # Assert
        assert [e["text"] for e in received] == ["one", "two"]
        assert all(e["received_at"] <= time.time() for e in received)
