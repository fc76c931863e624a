"""PADER on real nodes: 1 seller + 2 user hosts on synthetic data over /plexus/pader/1.0.0 (1024-bit TEST keys).

One encrypted iteration over the stream equals the in-process driver (``recsys.pader.simulate``); bad
frames get an error reply and the session and training go on; ratings survive a restart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from crypto.randomness import RandomnessPool
from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from node.services import pader_data as data
from protocols import pader as wire
from recsys.pader.simulate import EncryptedSoReg
from recsys.soreg import SoRegModel

SERVICES = ("pader",)
TEST_OPTIONS = (("pader.test_keys", "1"), ("pader.key_bits", "1024"), ("pader.catalogue_interval_s", "0.5"),
                ("pader.refill_target", "64"))
SPEC = dict(dataset="synthetic", users=12, seed=0, n_sellers=1)
TOPIC_CAT = wire.topic("devnet", wire.CATALOGUE_TOPIC)
TOPIC_FRIENDS = wire.topic("devnet", wire.FRIENDS_TOPIC)


def roles(index, settings):
    role = "seller" if index == 0 else "user"
    return dataclasses.replace(settings, services=SERVICES,
                               options=settings.options + TEST_OPTIONS + (("pader.role", role),))


def pader(node):
    return node.service("pader")


async def _start_seller(nodes):
    """Connect seller and two users, and load the seller's slice of the dataset."""
    seller, u1, u2 = nodes
    await connect(nodes, "full")
    await wait_for_mesh(nodes, TOPIC_CAT)
    await wait_for_mesh([u1, u2], TOPIC_FRIENDS)
    await wait_for(lambda: pader(seller).key is not None, what="seller key")
    await pader(seller)._cmd_load({**SPEC, "seller_index": 0})


async def _setup(nodes):
    _, u1, u2 = nodes
    await _start_seller(nodes)
    hosts = [str(u1.peer_id), str(u2.peer_id)]
    for index, node in enumerate((u1, u2)):
        await pader(node)._cmd_load({**SPEC, "hosts": hosts, "host_index": index})
    for node in (u1, u2):
        await wait_for(lambda n=node: pader(n).users.sellers, what="catalogue on user hosts")


def _plan_with_remote_friend(prepared, n_hosts=2):
    """A plan of a user on host 0 that has a friend on host 1."""
    m = prepared.model
    for plan in m.plan_epoch(np.random.default_rng(5)):
        friends = m.data.trust[plan.trust_rows, 1].astype(int)
        if plan.user % n_hosts == 0 and any(f % n_hosts == 1 for f in friends):
            return plan
    raise AssertionError("no plan with a remote friend in this slice")


async def test_one_iteration_over_the_stream_equals_the_in_process_driver(short_tmp):
    async with running_nodes(3, short_tmp, roles) as nodes:
        seller, u1, u2 = nodes
        await _setup(nodes)
        prepared = data.prepare(data.SliceSpec(**SPEC))
        plan = _plan_with_remote_friend(prepared)
        trainer1, trainer2 = pader(u1).trainer, pader(u2).trainer
        m = prepared.model
        friends = m.data.trust[plan.trust_rows, 1].astype(int)
        for f in friends:  # friends on host 1 publish their shares over gossip
            if f % 2 == 1:
                pader(u2).users.make_shares(pader(u2).users.users[str(f).encode()])
            else:
                pader(u1).users.make_shares(pader(u1).users.users[str(f).encode()])
        await pader(u2).publish_shares()
        remote = [trainer1.friend_id(int(f)) for f in friends if f % 2 == 1]
        key_fp = pader(seller).key.public.fingerprint
        await wait_for(lambda: all((r, key_fp) in pader(u1).users.shares for r in remote), what="friend shares")
        user = pader(u1).users.users[str(plan.user).encode()]
        pairs = [(trainer1.friend_id(int(f)), float(w)) for f, w in zip(friends, m.data.trust[plan.trust_rows, 2])]
        # Act
        await pader(u1).users.train_step(user, m.data.items[plan.rating_rows], m.z[plan.rating_rows], pairs)
        # Assert: same vector as the in-process driver from the same state, and as plaintext SoReg
        reference = SoRegModel(m.data, m.settings, m.U.copy(), m.V.copy(), m.item_owner)
        sim = EncryptedSoReg(reference, data.pader_settings(), [pader(seller).key], insecure_test_keys=True)
        expected = sim.run_plan(plan)
        plain = reference.step(plan).new_u
        assert np.max(np.abs(user.role.u - expected)) < 1e-6  # masks differ: only fixed-point rounding
        assert np.max(np.abs(user.role.u - plain)) < 1e-5
        assert pader(u1).users.stats["bytes_sent"] > 0 and pader(seller).seller_stats["sessions"] == 1


async def test_bad_frames_get_an_error_reply_and_the_session_goes_on(short_tmp):
    async with running_nodes(3, short_tmp, roles) as nodes:
        seller, u1, _ = nodes
        await _setup(nodes)
        side = pader(u1).users
        user = next(iter(side.users.values()))
        key_fp = pader(seller).key.public.fingerprint
        public = pader(seller).key.public
        role = user.role
        request = role.start_training(key_fp, user.items[:4].tolist(), user.z[:4].tolist(), [])
        stream = await u1.open_stream(seller.peer_id, wire.PROTOCOL_ID)
        client = wire.SessionClient(stream, user.label)
        items = await client.exchange(request)
        errors = role.on_items(items)
        refused = []
        # Act 1: a ciphertext under another key (fingerprint mismatch)
        try:
            await client.exchange(dataclasses.replace(errors, key_fp=b"\x07" * 16))
        except wire.SessionRefused as exc:
            refused.append(exc.reason)
        # Act 2: an oversized packed value (a valid ciphertext of a huge plaintext)
        huge = public.encrypt_with(1 << (public.bits - 8), RandomnessPool(public).take())
        size = 2 * ((public.bits + 7) // 8)
        try:
            await client.exchange(dataclasses.replace(errors, cts=(int(huge).to_bytes(size, "big"),) * len(errors.cts)))
        except wire.SessionRefused as exc:
            refused.append(exc.reason)
        # Act 3: the honest frame on the same stream, then the rest of the session
        product = await client.exchange(errors)
        revealed = await client.exchange(role.on_product(product))
        role.on_revealed(revealed)
        # Act 4: a replayed request on a fresh stream
        stream2 = await u1.open_stream(seller.peer_id, wire.PROTOCOL_ID)
        try:
            await wire.SessionClient(stream2, user.label).exchange(request)
        except wire.SessionRefused as exc:
            refused.append(exc.reason)
        await stream.close()
        await stream2.close()
        # Assert: three refusals with clear reasons, and training still works afterwards
        assert len(refused) == 3
        assert "WrongKeyError" in refused[0]
        assert "PackingOverflowError" in refused[1]
        assert "ReplayError" in refused[2]
        before = role.u.copy()
        await side.train_step(user, user.items[:4], user.z[:4], [])
        assert not np.allclose(before, role.u)
        assert pader(seller).seller_stats["refused"] == 3


async def test_ratings_survive_a_restart(short_tmp):
    def user_node(_i, settings):
        return dataclasses.replace(settings, services=SERVICES, options=TEST_OPTIONS + (("pader.role", "user"),))

    async with running_nodes(1, short_tmp, user_node) as (node,):
        await pader(node)._cmd_rate({"item": 7, "score": 4.5})
        await pader(node)._cmd_rate({"item": 3, "score": 1.0})
        await pader(node)._cmd_rate({"item": 7, "score": 3.5})
    # Act: a new process-equivalent on the same home
    async with running_nodes(1, short_tmp, user_node) as (node,):
        ratings = (await pader(node)._cmd_ratings({}))["ratings"]
        own = pader(node).users.users.get(b"")
    # Assert
    assert ratings == [{"item": 3, "score": 1.0}, {"item": 7, "score": 3.5}]
    assert own is not None and sorted(own.items.tolist()) == [3, 7]


async def test_a_node_trains_its_own_ratings_with_a_friend_and_recommends_unrated_items(short_tmp):
    async with running_nodes(3, short_tmp, roles) as nodes:
        seller, u1, u2 = nodes
        await _start_seller(nodes)
        for node in (u1, u2):
            await wait_for(lambda n=node: pader(n).users.sellers, what="catalogue")
        for node, scores in ((u1, (5.0, 1.0, 4.0, 2.0, 3.5)), (u2, (4.0, 4.5, 1.5, 2.0, 3.0))):
            for item, score in zip((0, 2, 4, 6, 8), scores):
                await pader(node)._cmd_rate({"item": item, "score": score})
        await pader(u1)._cmd_friend({"peer": str(u2.peer_id), "weight": 1.0})
        await pader(u2)._cmd_train({"epochs": 1})
        await wait_for(lambda: (u2.peer_id.to_bytes(), pader(seller).key.public.fingerprint) in pader(u1).users.shares,
                       what="friend's share on u1")
        before = pader(u1).users.users[b""].role.u.copy()
        # Act
        await pader(u1)._cmd_train({"epochs": 2})
        await wait_for(lambda: not pader(u1).trainer.busy, what="training on u1")
        status = await pader(u1)._cmd_status({})
        rec = await pader(u1)._cmd_recommend({"k": 3})
        # Assert
        assert status["epoch"] == 2 and status["iterations"] == 2 and status["skipped"] == 0, status
        assert status["bytes_sent"] > 0 and status["bytes_received"] > 0
        assert not np.allclose(before, pader(u1).stored_own_u())
        assert len(rec["items"]) == 3 and not {r["item"] for r in rec["items"]} & {0, 2, 4, 6, 8}
        assert all(1.0 <= r["score"] <= 5.0 for r in rec["items"])
