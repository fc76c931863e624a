"""The trust graph on real nodes: edges travel, move rankings, survive restarts; forgeries are punished."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.client import ControlClient
from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from protocols import trust as wire
from protocols.codec import decode, encode
from protocols.message import SignedRecord
from protocols.records import RECORD_DOMAIN, encode_signed
from tests.integration.test_robustness import rogue_peer

#: Only what these tests need: other services must not slow or break them.
SERVICES = ("membership", "trust")
FAST_TRUST = (("trust.walks", "2000"), ("trust.recompute_interval_s", "0.2"), ("trust.republish_interval_s", "1"))
TOPIC = wire.topic("devnet")


def fast(_index, settings):
    return dataclasses.replace(settings, services=SERVICES, options=settings.options + FAST_TRUST)


def outsider() -> str:
    """A peer id that runs no node (a target of trust)."""
    return ID.from_pubkey(create_new_key_pair().public_key).to_base58()


def trust_of(node):
    return node.service("trust")


async def test_an_edge_declared_on_a_reaches_b_and_c_and_moves_their_ranking(short_tmp):
    async with running_nodes(3, short_tmp, fast) as (a, b, c):
        await connect([a, b, c], "line")
        await wait_for_mesh([a, b, c], TOPIC)
        x = outsider()
        await trust_of(b).add_own_edge(str(a.peer_id), 5.0)
        await trust_of(c).add_own_edge(str(a.peer_id), 5.0)
        await trust_of(b).refresh()
        before = dict(trust_of(b).reputation())
        # Act
        await trust_of(a).add_own_edge(x, 2.0)
        # Assert: B and C hold A's edge and now rank X through A
        for node in (b, c):
            await wait_for(lambda n=node: x in trust_of(n).reputation(), what=f"{x[-6:]} ranked on {node.peer_id}")
        assert x not in before
        for node in (b, c):
            ranking = trust_of(node).reputation()
            assert 0 < ranking[x] < ranking[str(a.peer_id)]
            assert node.scores.score(str(a.peer_id)) > 0
        rows = a.store.query("SELECT src, dst, kind FROM trust_edges WHERE dst=?", (x,))
        assert rows == [(str(a.peer_id), x, "declared")]


async def test_forged_edges_are_rejected_and_the_forwarder_loses_score(short_tmp):
    async with running_nodes(1, short_tmp, fast) as (node,), rogue_peer(short_tmp) as rogue:
        await rogue.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
        await rogue.pubsub.subscribe(TOPIC)
        rogue_id = rogue.host.get_id().to_base58()
        await wait_for(lambda: rogue.host.get_id() in node.stack.pubsub.peer_topics.get(TOPIC, ()),
                       what="rogue known on the trust topic")
        victim = create_new_key_pair()
        edge = wire.TrustEdge(dst=outsider(), weight=50.0, seq=1, kind="declared")
        body = encode(edge)
        other_author = SignedRecord(author=ID.from_pubkey(victim.public_key).to_bytes(), body=body,
                                    signature=create_new_key_pair().private_key.sign(RECORD_DOMAIN + body))
        good = decode(wire.sign_edge(edge, victim.private_key), expect=SignedRecord)
        bad_signature = dataclasses.replace(good, signature=bytes(64))
        bad_body = dataclasses.replace(good, body=encode(dataclasses.replace(edge, weight=-50.0)))
        score_before = node.scores.score(rogue_id)
        # Act
        for forged in (other_author, bad_signature, bad_body):
            await rogue.pubsub.publish(TOPIC, encode_signed(forged))
        # Assert
        await wait_for(lambda: node.scores.rejects.get(rogue_id, 0) >= 3, what="three rejects counted")
        assert node.scores.score(rogue_id) < score_before
        assert node.store.query("SELECT count(*) FROM trust_edges") == [(0,)]


async def test_edges_and_ranking_survive_a_restart(short_tmp):
    x, y = outsider(), outsider()
    async with running_nodes(2, short_tmp, fast) as (a, b):
        await connect([a, b], "line")
        await wait_for_mesh([a, b], TOPIC)
        await trust_of(b).add_own_edge(y, 1.0)
        await wait_for(lambda: a.store.query("SELECT count(*) FROM trust_edges WHERE dst=?", (y,)) == [(1,)],
                       what="B's edge stored on A")
        await trust_of(a).add_own_edge(str(b.peer_id), 5.0)
        await trust_of(a).add_own_edge(x, 1.0)
        await trust_of(a).refresh()
        ranking_before = dict(trust_of(a).reputation())
        edges_before = sorted(trust_of(a).rank.edges())
    # Act: reopen the same homes, without connecting the nodes
    async with running_nodes(2, short_tmp, fast) as (a, _b):
        ranking_after = dict(trust_of(a).reputation())
        edges_after = sorted(trust_of(a).rank.edges())
    # Assert
    assert edges_after == edges_before and len(edges_after) == 3
    assert set(ranking_after) == set(ranking_before) == {str(b.peer_id), x, y}
    assert max(ranking_after, key=ranking_after.get) == str(b.peer_id)


async def test_trust_and_rank_through_the_cli(short_tmp):
    async with running_nodes(1, short_tmp, fast) as (node,):
        x = outsider()
        home = str(node.home.root)

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "node", *args, "--home", home, "--json"],
                                  capture_output=True, text=True, timeout=60)

        # Act
        trusted = await trio.to_thread.run_sync(cli, "trust", x, "--weight", "3")
        distrusted = await trio.to_thread.run_sync(cli, "distrust", outsider())
        ranked = await trio.to_thread.run_sync(cli, "rank", "--k", "5")
        control = await trio.to_thread.run_sync(lambda: ControlClient(node.home.root).call("trust.rank", k=5))
        bad = await trio.to_thread.run_sync(lambda: cli("trust", "not-a-peer"))
        # Assert
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout)["weight"] == 3.0
        assert json.loads(distrusted.stdout)["weight"] == -1.0
        rows = json.loads(ranked.stdout)["rows"]
        assert rows[0]["peer"] == x and rows[0]["rank"] == 1 and rows[0]["score"] > 0 and rows[0]["walks"] > 0
        assert control["rows"] == rows
        assert bad.returncode == 1 and "cannot add edge" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


async def test_a_late_joiner_learns_edges_from_the_republish_loop(short_tmp):
    async with running_nodes(2, short_tmp, fast) as (a, b):
        x = outsider()
        await trust_of(a).add_own_edge(x, 2.0)  # nobody is connected yet
        # Act
        await connect([a, b], "line")
        # Assert
        await wait_for(lambda: b.store.query("SELECT src FROM trust_edges WHERE dst=?", (x,)) == [(str(a.peer_id),)],
                       what="A's edge republished to B")


async def test_epoch_decay_scales_prunes_and_persists_weights(short_tmp):
    strong, faint = outsider(), outsider()
    async with running_nodes(1, short_tmp, fast) as (node,):
        trust = trust_of(node)
        await trust.add_own_edge(strong, 10.0)
        await trust.add_own_edge(faint, 0.055)
        await trust.refresh()
        # Act
        await trust.advance_epoch()
        edges = {dst: w for _src, dst, w in trust.rank.edges()}
        listed = (await trust._cmd_edges({}))["edges"]
    async with running_nodes(1, short_tmp, fast) as (node,):
        edges_after_restart = {dst: w for _src, dst, w in trust_of(node).rank.edges()}
    # Assert: theta = 0.9; 0.055 * 0.9 < prune_below = 0.05
    assert edges == {strong: 9.0}
    assert {row["dst"]: round(row["effective"], 6) for row in listed} == {strong: 9.0, faint: 0.0495}
    assert edges_after_restart.keys() == {strong} and abs(edges_after_restart[strong] - 9.0) < 1e-9


async def test_a_source_cannot_store_more_edges_than_its_quota(short_tmp):
    quota = (("trust.max_edges_per_src", "2"),)

    def capped(index, settings):
        return dataclasses.replace(settings, services=SERVICES, options=settings.options + FAST_TRUST + quota)

    async with running_nodes(2, short_tmp, capped) as (a, b):
        await connect([a, b], "line")
        await wait_for_mesh([a, b], TOPIC)
        targets = [outsider() for _ in range(4)]
        # Act
        for target in targets:
            await trust_of(a).add_own_edge(target, 1.0)
        await trust_of(a).add_own_edge(targets[0], 3.0)
        # Assert: B keeps A's first two edges and still takes updates of them
        await wait_for(lambda: b.store.query("SELECT weight FROM trust_edges WHERE dst=?", (targets[0],)) == [(3.0,)],
                       what="update of a held edge")
        held = {row[0] for row in b.store.query("SELECT dst FROM trust_edges")}
        assert held == set(targets[:2])
