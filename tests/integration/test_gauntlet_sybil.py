"""A Sybil validator swarm praising an adversary moves it less than one reputable validator (issue 6).

Everything goes through real py-libp2p hosts on 127.0.0.1 and the observer's own services:

* two real nodes (membership, trust, train, gauntlet) train one run with scoring on: the
  **observer** O (node 0), whose view is measured, and a **fellow** honest node F (node 1);
* a bare libp2p host is the **endorsed** validator E: O declares trust in it (``trust.add``);
* another bare host is the **Sybil operator**: it holds the keys of ``SYBILS`` validator identities
  and relays their records (a score record names and is signed by its validator; the gossip hop
  that carries it does not matter). The Sybils trust each other in a cycle, and reach O's trust
  graph through one weak **attack edge**: F was fooled into trusting one Sybil a little. Their
  edges are real signed trust edges on the trust topic;
* the **adversary** A is a peer nobody reputable vouches for.

O's gauntlet service admits the signed ``ScoreMessage``s into its book off GossipSub, and
``GauntletService.local_view()`` combines them weighted by the MeritRank reputation its own trust
service computes. Three phases, each a newer round of genuine, correctly signed records:

1. baseline: E and every Sybil publish a neutral view (the honest peers score 1, A scores 0);
2. swarm: every Sybil switches to praising A alone;
3. endorsed: E alone switches to praising A.

Each phase changes only the numerator of A's combined score (every validator already counts in
the denominator since the baseline), so the move of phase 2 is the swarm's total weight and the
move of phase 3 is E's. Phase 3 is measured with the swarm's praise already in: its denominator
also holds the Sybils' reputation, which can only shrink E's move — the comparison favours the swarm.
"""

from __future__ import annotations

import dataclasses

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from node.settings import NodeSettings
from protocols import gauntlet as gwire
from protocols import trust as twire
from tests.integration.test_gauntlet import OPTIONS, RUN_TIMEOUT_S, call, gauntlet, start_run
from tests.integration.test_train import rogue_peer

SERVICES = ("membership", "trust", "train", "gauntlet")
NETWORK = "devnet"
RUN = "gsybil"
RUN_ROUNDS = 40
"""Length of the run (the test ends long before: it needs a handful of rounds)."""
SYBILS = 8
"""Validator identities of the swarm."""
DECLARED_TRUST = 1.0
"""Weight of the honest nodes' declared trust edges (O -> E, O -> F, F -> O, Sybil -> Sybil)."""
ATTACK_EDGE_WEIGHT = 0.1
"""F's weak, mistaken trust in one Sybil: the swarm's only way into O's trust graph."""
FIRST_SEQ = 1
"""Sequence number of a trust edge published once."""
GOOD = 1.0
"""Score a validator gives the peers it praises."""
NONE = 0.0
"""Score a validator gives the peers it does not."""


def setup_module() -> None:
    """Import torch and build the model up front, so that nodes load the run inside its start delay."""
    from learning.models import TINY, build_tiny

    build_tiny(TINY)


def configure(_index: int, settings: NodeSettings) -> NodeSettings:
    return dataclasses.replace(settings, services=SERVICES, options=OPTIONS)


def b58(peer: ID) -> str:
    return peer.to_base58()


def score_frame(validator: bytes, private_key, round_: int, scores: dict[bytes, float]) -> bytes:
    """A genuine score record of ``validator`` for ``round_``, signed with its own key."""
    from learning.gauntlet import ScoreRecord

    record = ScoreRecord.from_scores(validator, round_, scores)
    return gwire.sign_scores(gwire.score_message(RUN, record), private_key)


async def join(host, nodes, topics: tuple[str, ...]) -> None:
    """Subscribe a bare host to ``topics``, dial every node and wait until each node is in its mesh."""
    for topic in topics:
        await host.pubsub.subscribe(topic)
    for node in nodes:
        await host.host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
    await wait_for(lambda: all(n.peer_id in host.router.mesh.get(t, ()) for n in nodes for t in topics),
                   what=f"{host.host.get_id()} in the mesh of {topics}")


async def test_a_sybil_validator_swarm_moves_an_adversary_less_than_one_endorsed_validator(short_tmp):
    score_topic, trust_topic = gwire.topic(NETWORK), twire.topic(NETWORK)
    sybil_keys = [create_new_key_pair() for _ in range(SYBILS)]
    sybils = [ID.from_pubkey(k.public_key) for k in sybil_keys]
    adversary = ID.from_pubkey(create_new_key_pair().public_key).to_bytes()
    (short_tmp / "endorsed").mkdir()
    (short_tmp / "operator").mkdir()
    async with running_nodes(2, short_tmp, configure) as nodes, \
            rogue_peer(short_tmp / "endorsed") as endorsed, rogue_peer(short_tmp / "operator") as operator:
        observer, fellow = nodes
        g = gauntlet(observer)
        endorsed_id = endorsed.host.get_id()
        honest = [observer.peer_id.to_bytes(), fellow.peer_id.to_bytes()]
        # Arrange: the network, the run (its start delay overlaps the trust set-up) and the trust graph
        await connect(nodes, "full")
        await wait_for_mesh(nodes, score_topic)
        await wait_for_mesh(nodes, trust_topic)
        await join(endorsed, nodes, (score_topic,))
        await join(operator, nodes, (score_topic, trust_topic))
        await start_run(nodes, RUN, RUN_ROUNDS)
        await call(observer, "trust.add", peer=b58(endorsed_id), weight=DECLARED_TRUST)
        await call(observer, "trust.add", peer=b58(fellow.peer_id), weight=DECLARED_TRUST)
        await call(fellow, "trust.add", peer=b58(observer.peer_id), weight=DECLARED_TRUST)
        await call(fellow, "trust.add", peer=b58(sybils[0]), weight=ATTACK_EDGE_WEIGHT)
        for i, key in enumerate(sybil_keys):
            edge = twire.TrustEdge(dst=b58(sybils[(i + 1) % SYBILS]), weight=DECLARED_TRUST, seq=FIRST_SEQ,
                                   kind="declared")
            await operator.pubsub.publish(trust_topic, twire.sign_edge(edge, key.private_key))
        reputation = observer.service("trust").reputation
        await wait_for(lambda: all(reputation().get(b58(p), 0.0) > 0 for p in [endorsed_id, fellow.peer_id, *sybils]),
                       what="E, F and every Sybil reputed from O's view")
        # ... and honest validators at work: O's and F's own score records in O's book
        await wait_for(lambda: g.book is not None and all(v in g.book.latest for v in honest),
                       timeout_s=RUN_TIMEOUT_S, what="the honest nodes' score records in O's book")
        train = observer.service("train")

        async def publish_phase(publisher, signers, scores: dict[bytes, float], after: int) -> int:
            """Publish one record per (validator id, key) in a round newer than ``after``; wait until O's
            book holds them all; return that round."""
            await wait_for(lambda: train.round + 1 > after, timeout_s=RUN_TIMEOUT_S, what=f"a round after {after}")
            round_ = train.round + 1  # the newest round O's book accepts
            for validator, key in signers:
                await publisher.pubsub.publish(score_topic, score_frame(validator, key, round_, scores))
            await wait_for(lambda: all(g.book.latest.get(v) is not None and g.book.latest[v].round == round_
                                       for v, _ in signers), what=f"the records of round {round_} admitted by O")
            return round_

        endorsed_signer = [(endorsed_id.to_bytes(), endorsed.host.get_private_key())]
        swarm_signers = [(p.to_bytes(), k.private_key) for p, k in zip(sybils, sybil_keys)]
        neutral = {**dict.fromkeys(honest, GOOD), adversary: NONE}
        praise = {**dict.fromkeys(honest, NONE), adversary: GOOD}
        # Arrange: the baseline, every outside validator with a neutral view
        first = await publish_phase(endorsed, endorsed_signer, neutral, after=-1)
        first = max(first, await publish_phase(operator, swarm_signers, neutral, after=-1))
        baseline = g.local_view()[0].get(adversary, 0.0)
        # Act 1: the swarm praises A
        await publish_phase(operator, swarm_signers, praise, after=first)
        after_swarm = g.local_view()[0]
        # Act 2: E alone praises A
        await publish_phase(endorsed, endorsed_signer, praise, after=first)
        after_endorsed = g.local_view()[0].get(adversary, 0.0)
        praising = {v for v, record in g.book.latest.items() if record.as_dict().get(adversary, NONE) > NONE}
        view = reputation()
    # Assert: every praise reached O's book (nothing passes for want of records), and weighed by reputation
    assert praising == {endorsed_id.to_bytes(), *(p.to_bytes() for p in sybils)}
    figures = {"baseline": baseline, "after_swarm": after_swarm.get(adversary, 0.0), "after_endorsed": after_endorsed,
               "endorsed_rep": view.get(b58(endorsed_id)), "swarm_rep": sum(view.get(b58(p), 0.0) for p in sybils)}
    moved_by_swarm = after_swarm[adversary] - baseline
    moved_by_endorsed = after_endorsed - after_swarm[adversary]
    assert 0 < moved_by_swarm < moved_by_endorsed, figures  # the swarm counts, and weighs little
    assert after_swarm[adversary] < min(after_swarm[p] for p in honest), (after_swarm, figures)
