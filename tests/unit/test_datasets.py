"""Datasets: RatingData checks, seeded splits, the synthetic generator, the FilmTrust parser."""

from dataclasses import replace

import numpy as np
import pytest

from recsys.datasets import RatingData
from recsys.datasets import filmtrust
from recsys.datasets.split import train_test_split
from recsys.datasets.synthetic import SyntheticSettings, generate, generate_with_truth

SMALL = SyntheticSettings(n_users=300, n_items=120, n_communities=5, ratings_per_user=5, max_degree=20)


def test_rating_data_rejects_bad_tables():
    good = np.array([[0.0, 1.0, 3.0]])
    with pytest.raises(ValueError, match="column 1"):
        RatingData(1, 1, good, np.zeros((0, 3)), "x")
    with pytest.raises(ValueError, match="float64"):
        RatingData(1, 2, good.astype(np.float32), np.zeros((0, 3)), "x")
    with pytest.raises(ValueError, match="shape"):
        RatingData(1, 2, good[:, :2].copy(), np.zeros((0, 3)), "x")
    with pytest.raises(ValueError, match="non-finite"):
        RatingData(1, 2, np.array([[0.0, 1.0, np.nan]]), np.zeros((0, 3)), "x")


def test_split_is_deterministic_disjoint_and_complete():
    data = generate(SMALL, 0)

    train_a, test_a = train_test_split(data, 0.1, seed=3)
    train_b, test_b = train_test_split(data, 0.1, seed=3)
    _, test_c = train_test_split(data, 0.1, seed=4)

    np.testing.assert_array_equal(test_a.ratings, test_b.ratings)
    np.testing.assert_array_equal(train_a.ratings, train_b.ratings)
    assert not np.array_equal(test_a.ratings, test_c.ratings)
    pairs = lambda d: {(int(u), int(i)) for u, i in d.ratings[:, :2]}
    assert not pairs(train_a) & pairs(test_a)
    assert pairs(train_a) | pairs(test_a) == pairs(data)
    assert len(test_a.ratings) == round(0.1 * len(data.ratings))
    assert train_a.trust is data.trust and test_a.n_items == data.n_items


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-9])
def test_split_rejects_fractions_that_leave_a_side_empty(fraction):
    with pytest.raises(ValueError, match="test_fraction|empty"):
        train_test_split(generate(SMALL, 0), fraction)


def test_synthetic_is_seeded():
    a, b, c = generate(SMALL, 1), generate(SMALL, 1), generate(SMALL, 2)

    np.testing.assert_array_equal(a.ratings, b.ratings)
    np.testing.assert_array_equal(a.trust, b.trust)
    assert not np.array_equal(a.ratings, c.ratings)


def test_synthetic_is_homophilous():
    data, truth = generate_with_truth(SMALL, 3)
    a, b = data.trust[:, 0].astype(int), data.trust[:, 1].astype(int)
    rng = np.random.default_rng(0)
    x, y = rng.integers(data.n_users, size=(2, 5000))

    friend_distance = np.linalg.norm(truth.U[a] - truth.U[b], axis=1).mean()
    random_distance = np.linalg.norm(truth.U[x] - truth.U[y], axis=1).mean()

    assert friend_distance < 0.8 * random_distance
    assert np.mean(truth.community[a] == truth.community[b]) > 0.8


def test_synthetic_shape_degrees_and_popularity():
    data = generate(SMALL, 4)
    degrees = np.bincount(data.trust[:, 0].astype(int), minlength=data.n_users)
    popularity = np.sort(np.bincount(data.items, minlength=data.n_items))[::-1]

    assert len(data.ratings) == SMALL.n_users * SMALL.ratings_per_user
    assert data.scores.min() >= 1.0 and data.scores.max() <= 5.0
    assert degrees.max() > 3 * np.median(degrees)  # heavy tail
    assert np.all(data.trust[:, 0] != data.trust[:, 1])
    assert popularity[:10].mean() > 3 * popularity[-10:].mean()  # Zipf head


@pytest.mark.parametrize("field,value", [("n_users", 0), ("degree_exponent", 1.0), ("homophily", 1.5),
                                         ("ratings_per_user", 10_000), ("max_degree", 10_000), ("noise", -1.0)])
def test_synthetic_settings_validate(field, value):
    with pytest.raises(ValueError):
        replace(SMALL, **{field: value}).validate()


def test_read_tab_parses_orange_files_and_rejects_garbage(tmp_path):
    good = tmp_path / "ratings.tab"
    good.write_text("user\tmovie\tscore\nc\tc\tc\nrow=1\tcol=1\tclass\n1\t7\t3.5\n2\t7\t1\n")
    bad = tmp_path / "bad.tab"
    bad.write_text("a\tb\tc\n\n\n1\t2\n")

    assert filmtrust.read_tab(good) == [("1", "7", 3.5), ("2", "7", 1.0)]
    with pytest.raises(ValueError, match="bad.tab:4"):
        filmtrust.read_tab(bad)


def test_fetch_uses_an_existing_cache_without_network(tmp_path):
    for name in filmtrust.FILES:
        (tmp_path / name).write_text("h\nh\nh\n1\t2\t1\n")
    messages = []

    assert filmtrust.fetch(tmp_path, progress=messages.append) == tmp_path
    assert messages and "already" in messages[0]


def test_filmtrust_counts_match_design():
    try:
        data = filmtrust.load()
    except filmtrust.FetchError as exc:
        pytest.skip(f"FilmTrust cannot be fetched here: {exc}")
    expected = filmtrust.EXPECTED_COUNTS

    assert len(np.unique(data.users)) == expected["users"]
    assert data.n_items == expected["items"]
    assert len(data.ratings) == expected["ratings"]
    assert len(data.trust) == expected["trust"]
    assert set(np.unique(data.scores)) <= set(np.arange(0.5, 4.01, 0.5))
