"""G-Rank search on real nodes: clicklogs travel by pull and survive restarts; forgeries are punished."""

from __future__ import annotations

import dataclasses

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.client import ControlClient
from node.harness import connect, running_nodes, wait_for
from protocols import grank as wire
from protocols.codec import encode
from protocols.framing import read_frame, write_frame
from recsys.grank import ClickEntry
from tests.integration.test_robustness import rogue_peer

FAST_SEARCH = (("search.pull_interval_s", "0.3"), ("trust.walks", "2000"), ("trust.recompute_interval_s", "0.2"))


def fast(_index, settings):
    return dataclasses.replace(settings, options=settings.options + FAST_SEARCH)


def without_trust(_index, settings):
    return dataclasses.replace(settings, services=("gossip", "membership", "query", "search"))


def search_of(node):
    return node.service("search")


def held(node) -> int:
    return len(search_of(node).engine.store)


async def test_clicks_on_a_reach_b_by_pull_and_survive_a_restart(short_tmp):
    async with running_nodes(2, short_tmp, fast) as (a, b):
        item = await search_of(a).add_item("Kind of Blue", ["jazz", "modal"])
        for _ in range(3):
            search_of(a).click("jazz", item.item_id)
        # Act
        await connect([a, b], "line")
        await wait_for(lambda: held(b) == 3, what="A's three clicks pulled by B")
        before = search_of(b).engine.search("jazz", 5)
        rows = b.store.query("SELECT count(*) FROM grank_entries WHERE author=?", (str(a.peer_id),))
    async with running_nodes(2, short_tmp, fast) as (a, b):
        after = search_of(b).engine.search("jazz", 5)
        entries = sorted(search_of(b).engine.store.by_author(str(a.peer_id)), key=lambda e: e.seq)
        next_click = search_of(a).click("jazz", item.item_id)
    # Assert
    assert rows == [(3,)]
    assert [r.item_id for r in before] == [r.item_id for r in after] == [item.item_id]
    assert [e.seq for e in entries] == [0, 1, 2] and all(wire.click_verifies(e) for e in entries)
    assert next_click.seq == 3  # A's own log continues after the restart


async def serve_forgeries(rogue, entries: list[ClickEntry]) -> None:
    async def handler(stream) -> None:
        await read_frame(stream, wire.MAX_REQUEST_BYTES)
        reply = wire.PullResponseMsg(tuple(wire.WireClick.of(e) for e in entries), False)
        await write_frame(stream, encode(reply))
        await stream.close()

    rogue.host.set_stream_handler(TProtocol(wire.PROTOCOL_ID), handler)


async def test_forged_click_entries_are_dropped_and_the_answering_peer_is_penalised(short_tmp):
    async with running_nodes(1, short_tmp, fast) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        victim = create_new_key_pair()
        victim_id = ID.from_pubkey(victim.public_key).to_base58()
        genuine = wire.sign_click(ClickEntry(victim_id, 0, ("jazz",), ("x",), "x", 1), victim.private_key)
        forged = [
            dataclasses.replace(genuine, seq=1, signature=bytes(64)),  # a bad signature
            wire.sign_click(dataclasses.replace(genuine, seq=2), create_new_key_pair().private_key),  # wrong key
        ]
        await serve_forgeries(rogue, [genuine, *forged])
        rogue_id = rogue.host.get_id()
        score_before = node.scores.score(rogue_id.to_base58())
        # Act
        result = await search_of(node).pull_from(rogue_id)
        # Assert
        assert result["received"] == 3 and result["bad"] == 2 and result["new"] == 1
        assert node.scores.rejects[rogue_id.to_base58()] == 2
        assert node.scores.score(rogue_id.to_base58()) < score_before
        assert node.store.query("SELECT author, seq FROM grank_entries") == [(victim_id, 0)]


async def test_an_equivocating_author_is_penalised_and_its_first_entry_kept(short_tmp):
    async with running_nodes(1, short_tmp, fast) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        author = create_new_key_pair()
        author_id = ID.from_pubkey(author.public_key).to_base58()
        first = wire.sign_click(ClickEntry(author_id, 0, ("jazz",), ("x",), "x", 1), author.private_key)
        second = wire.sign_click(ClickEntry(author_id, 0, ("jazz",), ("y",), "y", 2), author.private_key)
        search_of(node)._ingest([first])
        await serve_forgeries(rogue, [second])
        # Act
        await search_of(node).pull_from(rogue.host.get_id())
        # Assert
        assert search_of(node).stats.equivocations == 1
        assert node.scores.rejects[author_id] == 1
        assert search_of(node).engine.store.get(author_id, 0).clicked == "x"


async def test_search_answers_through_the_control_api_weighted_or_flagged_vanilla(short_tmp):
    async with running_nodes(1, short_tmp, fast) as (node,):
        item = await search_of(node).add_item("Blue Train", ["jazz"])
        control = ControlClient(node.home.root)
        # Act
        clicked = await trio.to_thread.run_sync(lambda: control.call("click", query="jazz", item=item.item_id))
        untrusting = await trio.to_thread.run_sync(lambda: control.call("search", query="jazz"))
        trust = node.service("trust")
        await trust.add_own_edge(ID.from_pubkey(create_new_key_pair().public_key).to_base58(), 1.0)
        await trust.refresh()
        weighted = await trio.to_thread.run_sync(lambda: control.call("search", query="Jazz!", k=3))
        vanilla = await trio.to_thread.run_sync(lambda: control.call("search", query="jazz", vanilla=True))
        listed = await trio.to_thread.run_sync(lambda: control.call("items.list"))
    async with running_nodes(1, short_tmp, without_trust) as (node,):
        control = ControlClient(node.home.root)
        await wait_for(node.home.control_socket.exists, what="control socket listening")
        fallback = await trio.to_thread.run_sync(lambda: control.call("search", query="jazz"))
    # Assert
    assert clicked["seq"] == 0
    assert untrusting["weighted"] is False and "trusts nobody" in untrusting["fallback"]
    assert weighted["weighted"] is True and weighted["fallback"] is None and weighted["terms"] == ["jazz"]
    assert weighted["results"][0]["item_id"] == item.item_id and weighted["results"][0]["title"] == "Blue Train"
    assert vanilla["weighted"] is False and vanilla["fallback"] is None
    assert listed["items"] == [{"item_id": item.item_id, "owner": str(node.peer_id), "title": "Blue Train",
                                "tags": ["jazz"]}]
    assert fallback["weighted"] is False and "trust service not running" in fallback["fallback"]
    assert fallback["results"][0]["item_id"] == item.item_id


def manual_pulls(_index, settings):
    return dataclasses.replace(settings, options=settings.options + (("search.pull_interval_s", "600"),))


async def test_a_pull_larger_than_one_response_frame_arrives_whole_in_rounds(short_tmp):
    async with running_nodes(2, short_tmp, manual_pulls) as (a, b):
        items = [f"item{i:04d}" for i in range(40)]
        for i in range(600):
            search_of(a).click(f"tag{i % 7}", items[i % 40], tuple(items))
        await connect([a, b], "line")
        # Act
        result = await search_of(b).pull_from(a.peer_id)
        # Assert
        assert result["rounds"] == 3 and result["new"] == 600 and result["bad"] == 0 and result["more"] is False
        assert held(b) == 600
