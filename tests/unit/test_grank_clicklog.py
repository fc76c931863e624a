"""Clicklog entries and the per-node store."""

import pytest

from recsys.grank.clicklog import AddResult, ClickEntry, ClickLogSettings, ClickLogStore, tokenize


def entry(author="a", seq=0, query=("jazz",), shown=("i1", "i2"), clicked="i1", ts=0):
    return ClickEntry(author, seq, query, shown, clicked, ts)


def test_entry_id_is_stable_and_ignores_signature():
    first = entry()
    signed = ClickEntry("a", 0, ("jazz",), ("i1", "i2"), "i1", 0, signature=b"sig")

    assert first.entry_id == signed.entry_id
    assert first.entry_id == entry().entry_id
    assert len(first.entry_id) == 32


def test_entry_id_changes_with_content():
    assert entry(clicked="i1").entry_id != entry(clicked="i2").entry_id
    assert entry(seq=0).entry_id != entry(seq=1).entry_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clicked": "i9"},
        {"seq": -1},
        {"query": ()},
        {"query": ("Jazz",)},
        {"shown": ()},
        {"author": ""},
        {"ts": -5},
    ],
)
def test_bad_entries_raise(kwargs):
    with pytest.raises(ValueError):
        entry(**kwargs)


def test_tokenize_normalises_and_deduplicates():
    assert tokenize("Miles DAVIS, kind-of-blue miles") == ("miles", "davis", "kind", "of", "blue")


def test_store_tracks_frontier_and_gaps():
    store = ClickLogStore()

    store.add_all([entry(seq=0), entry(seq=1), entry(seq=3)])

    assert store.next_seq("a") == 2
    assert store.seqs_above_frontier("a") == [3]
    store.add(entry(seq=2))
    assert store.next_seq("a") == 4
    assert store.seqs_above_frontier("a") == []


def test_store_reports_duplicates_and_conflicts():
    store = ClickLogStore()
    store.add(entry(seq=0, clicked="i1"))

    assert store.add(entry(seq=0, clicked="i1")) is AddResult.DUPLICATE
    assert store.add(entry(seq=0, clicked="i2")) is AddResult.CONFLICT
    assert store.get("a", 0).clicked == "i1"
    assert len(store) == 1


def test_store_caps_entries_per_author():
    store = ClickLogStore(ClickLogSettings(max_entries_per_author=2))

    results = [store.add(entry(seq=s)) for s in range(3)]

    assert results == [AddResult.ADDED, AddResult.ADDED, AddResult.AUTHOR_FULL]
    assert store.add(entry(author="b")) is AddResult.ADDED


def test_record_click_numbers_own_entries():
    store = ClickLogStore()

    first = store.record_click("me", "Blue Train", ["i1", "i2"], "i2", 1000)
    second = store.record_click("me", ["blue"], ["i3"], "i3", 2000)

    assert (first.seq, second.seq) == (0, 1)
    assert first.query == ("blue", "train")
    assert [e.seq for e in store.by_author("me")] == [0, 1]
