"""Node state: settings validation, identity file, SQLite store, rate limits, peer scores."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from node.identity import IdentityError, load_or_create_identity, peer_id_of
from node.ratelimit import KeyedLimiter, TokenBucket
from node.scoring import PENALTY_HALF_LIFE_S, PeerScores
from node.settings import GossipSettings, NodeSettings
from node.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_default_settings_are_valid(tmp_path):
    NodeSettings(home=tmp_path).validate()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"network": "Bad Name"}, "network name"),
        ({"listen": ()}, "listen"),
        ({"bootstrap": ("/ip4/127.0.0.1/tcp/1",)}, "/p2p/"),
        ({"gossip": GossipSettings(degree_low=7)}, "degree"),
        ({"gossip": GossipSettings(spam_limit_per_topic_s=1.0)}, "spam_limit"),
        ({"log_level": "LOUD"}, "log level"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(tmp_path, change, message):
    settings = dataclasses.replace(NodeSettings(home=tmp_path), **change)
    with pytest.raises(ValueError, match=message):
        settings.validate()


def test_identity_is_created_owner_only_and_reused(tmp_path):
    path = tmp_path / "identity.key"
    first = load_or_create_identity(path)
    second = load_or_create_identity(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert peer_id_of(first) == peer_id_of(second)


def test_identity_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "identity.key"
    load_or_create_identity(path)
    os.chmod(path, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_or_create_identity(path)


def test_corrupt_identity_is_refused(tmp_path):
    path = tmp_path / "identity.key"
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(IdentityError, match="not a valid"):
        load_or_create_identity(path)


def test_store_keeps_state_across_reopen(tmp_path: Path):
    store = Store(tmp_path / "node.db")
    store.touch_peer("peerA", 1.0, "dial", ["/ip4/127.0.0.1/tcp/1"])
    assert store.add_gossip(b"id1", "t", "peerA", 2.0, b"payload")
    store.put("k", b"v")
    store.close()
    reopened = Store(tmp_path / "node.db")
    assert [p.peer_id for p in reopened.peers()] == ["peerA"]
    assert reopened.gossip_since("t") == [("peerA", 2.0, b"payload")]
    assert reopened.get("k") == b"v"
    assert reopened.query("PRAGMA journal_mode")[0][0] == "wal"


def test_store_ignores_duplicate_gossip_and_older_peer_records(tmp_path):
    store = Store(tmp_path / "node.db")
    assert store.add_gossip(b"id1", "t", "a", 1.0, b"x")
    assert not store.add_gossip(b"id1", "t", "a", 2.0, b"x")
    assert store.record_peer("p", 1.0, ["/a"], seq=5, services=["gossip"])
    assert not store.record_peer("p", 2.0, ["/b"], seq=4, services=[])
    assert store.peers()[0].addrs == ("/a",)


def test_token_bucket_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take()
    assert not bucket.take()
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take()


def test_keyed_limiter_limits_each_key_separately():
    clock = FakeClock()
    limiter = KeyedLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("a")


def test_reject_penalties_lower_the_score_and_decay():
    clock = FakeClock()
    scores = PeerScores(clock)
    scores.penalise("p")
    assert scores.score("p") == pytest.approx(-1.0)
    clock.now += PENALTY_HALF_LIFE_S
    assert scores.score("p") == pytest.approx(-0.5)
    assert scores.rejects["p"] == 1
