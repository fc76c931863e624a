"""Pull gossip of clicklogs: exactly the missing entries, within the caps; convergence; bootstrap."""

import numpy as np
import pytest

from recsys.grank.clicklog import ClickEntry, ClickLogStore
from recsys.grank.gossip import (
    AuthorSummary,
    GossipSettings,
    PullRequest,
    answer_pull,
    apply_pull_response,
    bootstrap_response,
    make_pull_request,
)


def log(author, seqs, item="i1"):
    return [ClickEntry(author, s, ("q",), (item, "i0"), item, s) for s in seqs]


def store_of(*entry_lists):
    store = ClickLogStore()
    for entries in entry_lists:
        store.add_all(entries)
    return store


def ids(entries):
    return {e.entry_id for e in entries}


def test_answer_sends_exactly_the_missing_entries():
    answerer = store_of(log("a", range(5)), log("b", range(3)), log("c", range(2)))
    asker = store_of(log("a", [0, 1, 3]), log("b", range(3)))

    response = answer_pull(answerer, make_pull_request(asker))

    expected = ids(answerer.entries()) - ids(asker.entries())
    assert ids(response.entries) == expected
    assert len(response.entries) == len(expected) == 4
    assert response.more is False


def test_answer_respects_entry_cap_round_robin():
    answerer = store_of(log("a", range(50)), log("b", range(2)), log("c", range(2)))
    settings = GossipSettings(max_entries_per_message=4)

    response = answer_pull(answerer, make_pull_request(ClickLogStore(), settings), settings)

    assert len(response.entries) == 4
    assert response.more is True
    assert {e.author for e in response.entries} == {"a", "b", "c"}


def test_answer_respects_byte_cap_and_asker_cap():
    answerer = store_of(log("a", range(20)))
    size = next(answerer.entries()).wire_size()
    request = PullRequest((), max_entries=100, max_bytes=3 * size + size // 2)

    response = answer_pull(answerer, request)

    assert len(response.entries) == 3
    assert sum(e.wire_size() for e in response.entries) <= request.max_bytes
    assert response.more is True


def test_priority_orders_authors_within_a_round():
    answerer = store_of(log("a", range(3)), log("b", range(3)))
    request = PullRequest((), max_entries=2, max_bytes=10**6)

    response = answer_pull(answerer, request, priority={"b": 0.9, "a": 0.1})

    assert [e.author for e in response.entries] == ["b", "a"]


def test_two_stores_converge_after_repeated_pulls():
    rng = np.random.default_rng(3)
    left = store_of(*(log(f"n{k}", range(int(rng.integers(1, 30)))) for k in range(6)))
    right = store_of(*(log(f"n{k}", range(int(rng.integers(1, 30)))) for k in range(4, 10)))
    settings = GossipSettings(max_entries_per_message=7)

    for _ in range(200):
        got_left = apply_pull_response(left, answer_pull(right, make_pull_request(left, settings), settings))
        got_right = apply_pull_response(right, answer_pull(left, make_pull_request(right, settings), settings))
        if got_left == got_right == 0:
            break

    assert ids(left.entries()) == ids(right.entries())
    assert answer_pull(left, make_pull_request(right, settings), settings).entries == ()


def test_bootstrap_sends_whole_prefixes_of_sampled_authors():
    answerer = store_of(*(log(f"n{k}", range(3)) for k in range(10)))
    settings = GossipSettings(bootstrap_authors=4)

    response = bootstrap_response(answerer, np.random.default_rng(0), settings)
    fresh = store_of(response.entries)

    assert len(fresh.authors()) == 4
    assert all(fresh.next_seq(a) == 3 for a in fresh.authors())
    assert response.more is True


def test_summary_lists_prefix_and_extras():
    asker = store_of(log("a", [0, 1, 4, 6]))

    request = make_pull_request(asker)

    assert request.summaries == (AuthorSummary("a", 2, (4, 6)),)


def test_bad_requests_raise():
    with pytest.raises(ValueError):
        AuthorSummary("a", 3, (1,))
    with pytest.raises(ValueError):
        PullRequest((AuthorSummary("a", 0), AuthorSummary("a", 1)), 10, 10)
    with pytest.raises(ValueError):
        GossipSettings(max_entries_per_message=0).validate()
