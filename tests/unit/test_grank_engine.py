"""A node's G-Rank engine: local items and clicks, pull gossip between two engines, search."""

import numpy as np

from recsys.grank import GRankEngine, GossipSettings, GRankEngineSettings, ItemMetadata


def test_items_and_clicks_flow_between_two_engines():
    alice, bob = GRankEngine("alice"), GRankEngine("bob")
    train = alice.add_item("Blue Train", ["jazz"])
    steps = alice.add_item("Giant Steps", ["jazz", "sax"])
    for meta in alice.own_items():
        assert bob.accept_metadata(meta)

    shown = [r.item_id for r in alice.search("jazz")]
    entry = alice.click("jazz", steps.item_id, timestamp_ms=1)
    new = bob.accept_entries(alice.answer(bob.pull_request()).entries)

    assert set(shown) == {train.item_id, steps.item_id}
    assert entry.shown == tuple(shown)
    assert new == [entry]
    assert [r.item_id for r in bob.search("jazz")] == [steps.item_id, train.item_id]


def test_click_without_prior_search_shows_only_the_item():
    node = GRankEngine("me")

    entry = node.click("Free Jazz", "x1", timestamp_ms=5)

    assert entry.shown == ("x1",)
    assert entry.query == ("free", "jazz")
    assert [r.item_id for r in node.search("jazz")] == ["x1"]


def test_metadata_of_another_owner_is_refused():
    node = GRankEngine("me")
    mine = node.add_item("Kind of Blue", ["jazz"])

    assert node.accept_metadata(ItemMetadata(mine.item_id, "mallory", "spam", ("jazz",))) is False


def test_bootstrap_then_pulls_converge():
    settings = GRankEngineSettings(gossip=GossipSettings(max_entries_per_message=5, bootstrap_authors=2))
    old, new = GRankEngine("old", settings), GRankEngine("new", settings)
    for author in range(6):
        peer = GRankEngine(f"p{author}")
        entries = [peer.click("jazz", f"x{i}", i) for i in range(4)]
        old.accept_entries(entries)

    new.accept_entries(old.bootstrap(np.random.default_rng(0)).entries)
    for _ in range(20):
        if not new.accept_entries(old.answer(new.pull_request()).entries):
            break

    assert len(new.store) == len(old.store) == 24
