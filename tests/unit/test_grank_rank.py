"""G-Rank: similarity formula, item scores, metadata-first ordering, reputation weighting."""

import math

import pytest

from recsys.grank.clicklog import ClickEntry
from recsys.grank.metadata import ItemMetadata, MetadataIndex, make_item_id
from recsys.grank.rank import ClickIndex, GRankSettings, raw_similarity, search, similarities


def clicks(author, pairs):
    return [ClickEntry(author, s, (q,), (item, "filler"), item, s) for s, (q, item) in enumerate(pairs)]


@pytest.fixture
def index():
    return ClickIndex.from_entries(
        clicks("e", [("jazz", "i1"), ("jazz", "i2"), ("rock", "i3")])
        + clicks("n1", [("jazz", "i1"), ("jazz", "i2"), ("blues", "i4")])
        + clicks("n2", [("pop", "i5")])
        + clicks("n3", [("jazz", "i1")])
    )


def test_similarity_formula_on_hand_built_logs(index):
    # n1: shared terms {jazz}=1, shared clicks {i1,i2}=2, union {i1..i4}=4 -> (1 + 4) / 4
    assert raw_similarity(index, "e", "n1", 10) == pytest.approx(5 / 4)
    # n3: (1 + 1) / |{i1,i2,i3}|
    assert raw_similarity(index, "e", "n3", 10) == pytest.approx(2 / 3)
    assert raw_similarity(index, "e", "n2", 10) == 0.0


def test_similarities_are_normalised_to_the_most_similar_peer(index):
    sims = similarities(index, "e")

    assert sims == pytest.approx({"e": 1.0, "n1": 1.0, "n2": 0.0, "n3": (2 / 3) / (5 / 4)})


def test_top_terms_limit_counts_only_most_used_terms():
    index = ClickIndex.from_entries(
        clicks("e", [("a", "x"), ("a", "x"), ("b", "y")]) + clicks("n", [("b", "z")])
    )

    assert raw_similarity(index, "e", "n", top_terms=1) == 0.0
    assert raw_similarity(index, "e", "n", top_terms=2) == pytest.approx(1 / 3)


def test_item_scores_follow_the_formula(index):
    f = GRankSettings().familiarity
    s3 = (2 / 3) / (5 / 4)

    results = search(index, MetadataIndex(), "e", "jazz", k=None)

    assert [r.item_id for r in results] == ["i1", "i2"]
    assert results[0].score == pytest.approx(2 * (1 + f) + (s3 + f))
    assert results[1].score == pytest.approx(2 * (1 + f))


def test_metadata_matches_rank_first(index):
    meta = MetadataIndex()
    meta.add(ItemMetadata("i9", "owner", "Kind of Blue", ("jazz",)))
    meta.add(ItemMetadata("i2", "owner", "Giant Steps", ("jazz", "sax")))

    results = search(index, meta, "e", "jazz", k=None)

    assert [r.item_id for r in results] == ["i2", "i9", "i1"]
    assert [r.metadata_match for r in results] == [1, 1, 0]


def test_metadata_title_terms_match_and_k_truncates(index):
    meta = MetadataIndex()
    meta.add(ItemMetadata("i9", "owner", "Jazz at Newport", ()))

    results = search(index, meta, "e", "JAZZ!", k=1)

    assert [r.item_id for r in results] == ["i9"]


def test_weighted_variant_ignores_zero_reputation_authors():
    index = ClickIndex.from_entries(
        clicks("e", [("jazz", "i1")]) + clicks("good", [("jazz", "i1")]) + clicks("sybil", [("jazz", "i7")] * 5)
    )

    vanilla = search(index, MetadataIndex(), "e", "jazz", k=None)
    weighted = search(index, MetadataIndex(), "e", "jazz", k=None, reputation={"good": 0.3, "sybil": 0.0})
    unknown = search(index, MetadataIndex(), "e", "jazz", k=None, reputation={"good": 0.3})

    assert {r.item_id for r in vanilla} == {"i1", "i7"}
    assert [r.item_id for r in weighted] == ["i1"]
    assert [r.item_id for r in unknown] == ["i1"]


def test_reputation_floor_lets_unknown_authors_count_a_little():
    index = ClickIndex.from_entries(clicks("good", [("jazz", "i1")]) + clicks("stranger", [("jazz", "i7")]))

    results = search(index, MetadataIndex(), "e", "jazz", k=None, reputation={"good": 0.3},
                     settings=GRankSettings(reputation_floor=0.01))

    assert [r.item_id for r in results] == ["i1", "i7"]


def test_weighted_variant_gives_one_vote_per_author_whatever_the_volume():
    few = ClickIndex.from_entries(clicks("a", [("jazz", "i1")]) + clicks("b", [("jazz", "i2")]))
    flood = ClickIndex.from_entries(clicks("a", [("jazz", "i1")]) + clicks("b", [("jazz", "i2")] * 50))
    rep = {"a": 0.5, "b": 0.5}

    score_few = {r.item_id: r.score for r in search(few, MetadataIndex(), "e", "jazz", reputation=rep)}
    score_flood = {r.item_id: r.score for r in search(flood, MetadataIndex(), "e", "jazz", reputation=rep)}

    assert score_flood["i2"] == pytest.approx(score_few["i2"])
    assert score_flood["i1"] == pytest.approx(score_few["i1"])


def test_weighted_variant_drops_metadata_of_unreputable_owners(index):
    meta = MetadataIndex()
    meta.add(ItemMetadata("spam", "sybil", "buy now", ("jazz",)))

    vanilla = search(index, meta, "e", "jazz", k=None)
    weighted = search(index, meta, "e", "jazz", k=None, reputation={"n1": 0.2, "n3": 0.1})

    assert vanilla[0].item_id == "spam"
    assert "spam" not in [r.item_id for r in weighted]


def test_bad_input_raises(index):
    with pytest.raises(ValueError):
        search(index, MetadataIndex(), "e", "!!!")
    with pytest.raises(ValueError):
        search(index, MetadataIndex(), "e", "jazz", k=0)
    with pytest.raises(ValueError):
        search(index, MetadataIndex(), "e", "jazz", reputation={"n1": math.nan})
    with pytest.raises(ValueError):
        GRankSettings(familiarity=-1).validate()


def test_index_counts_each_entry_once(index):
    again = clicks("n3", [("jazz", "i1")])[0]

    assert index.add(again) is False
    assert len(index) == 8


def test_metadata_owner_cannot_be_overwritten():
    meta = MetadataIndex()
    mine = ItemMetadata.create("alice", "Blue Train", ["Jazz", "hard bop"])

    assert mine.item_id == make_item_id("alice", "Blue Train")
    assert mine.tags == ("jazz", "hard", "bop")
    assert meta.add(mine) is True
    assert meta.add(ItemMetadata(mine.item_id, "mallory", "spam", ("jazz",))) is False
    assert meta.add(ItemMetadata(mine.item_id, "alice", "Blue Train", ("coltrane",))) is True
    assert meta.match(["jazz"]) == {}
    assert meta.match(["coltrane", "blue"]) == {mine.item_id: 2}
    assert meta.owned_by("alice") == [meta.get(mine.item_id)]
