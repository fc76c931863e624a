"""Dataset slices for PADER on the devnet: the same deterministic preparation on every node and in the step.

Every node (user hosts, sellers) and the devnet step call :func:`prepare` with the same
:class:`SliceSpec` and get the same subset, split, initial ``U``/``V``, item owners and epoch plans; each
node then keeps only its part (a user host the users ``i`` with ``i % n_hosts == host_index``, each in its
own ``UserRole``; a seller the items ``j`` with ``j % n_sellers == seller_index``). The plaintext SoReg
reference run by the step starts from exactly the same state and plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from recsys.datasets import RatingData, filmtrust, synthetic
from recsys.datasets.split import train_test_split
from recsys.pader.common import PaderSettings
from recsys.soreg import SoRegModel, SoRegSettings

DATASETS = ("filmtrust", "synthetic")
"""Data sets a node can host."""
FAST_SOREG = SoRegSettings(dim=8, lr=0.05, lambda_v=0.05, init_scale=0.3, items_per_iter=32, epochs=10)
"""Few-epoch SoReg settings (= ``benchmarks/recsys_quality.FAST_SETTINGS``: λ_u 2, β 0.5, 10 friends)."""
N_AGG = 2
"""Users a seller aggregates before decrypting item gradients."""
SYNTHETIC_SHAPE = synthetic.SyntheticSettings(n_users=400, n_items=200, ratings_per_user=8, personal=0.2)
"""Synthetic data hosted when asked for ``synthetic`` (homophilous; sliced like FilmTrust)."""


@dataclass(frozen=True)
class SliceSpec:
    """Which data set, which subset, which seeds: identical on every node of one run."""

    dataset: str = "synthetic"
    """``filmtrust`` or ``synthetic``."""
    users: int = 0
    """Keep this many users (the most socially connected, see :func:`subset`); 0 keeps all."""
    items: int = 0
    """Keep only ratings of the kept users' this many most-rated items (0 keeps all)."""
    seed: int = 0
    """Seed of the split (``seed``), the initial vectors (``seed``) and the epoch orders (``seed + 1``)."""
    test_fraction: float = 0.1
    """Held-out share of the ratings."""
    n_sellers: int = 1
    """Sellers the items are split over (item ``j`` belongs to seller ``j % n_sellers``)."""

    def validate(self) -> "SliceSpec":
        """Raise ``ValueError`` on a bad field; return self."""
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}")
        if not isinstance(self.users, int) or self.users < 0 or self.users == 1:
            raise ValueError("users must be 0 (all) or an integer >= 2")
        if not isinstance(self.items, int) or self.items < 0:
            raise ValueError("items must be 0 (all) or a positive integer")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in (0, 1)")
        if not isinstance(self.n_sellers, int) or self.n_sellers < 1:
            raise ValueError("n_sellers must be an integer >= 1")
        return self

    @classmethod
    def from_args(cls, args: dict) -> "SliceSpec":
        """From control-command arguments (unknown keys are ignored; types are checked)."""
        return cls(dataset=str(args.get("dataset", "synthetic")), users=int(args.get("users", 0)),
                   items=int(args.get("items", 0)), seed=int(args.get("seed", 0)), test_fraction=float(args.get("test_fraction", 0.1)),
                   n_sellers=int(args.get("n_sellers", 1))).validate()


@dataclass
class Prepared:
    """A prepared slice: the split, the initial model and the owner of each item."""

    spec: SliceSpec
    """What was asked for."""
    dataset_used: str
    """What was loaded (``synthetic`` when FilmTrust could not be fetched)."""
    train: RatingData
    """Training ratings."""
    test: RatingData
    """Held-out ratings."""
    model: SoRegModel
    """SoReg at its initial state (``U``, ``V``, mean/std for z-scoring, item owners)."""
    note: str = ""
    """Why the data set differs from the one asked for (empty if it does not)."""

    def order_rng(self) -> np.random.Generator:
        """The generator of the epoch orders (fresh: draw the epochs from it in sequence)."""
        return np.random.default_rng(self.spec.seed + 1)


def pader_settings() -> PaderSettings:
    """The PADER settings every node of a run uses (layouts must agree between users and sellers)."""
    return PaderSettings(soreg=FAST_SOREG, n_agg=N_AGG)


def subset(data: RatingData, n_users: int, n_items: int = 0) -> RatingData:
    """The ``n_users`` rating users with the most trust edges (ties: more ratings, then index), re-indexed.

    Items are those the kept users rated (only the ``n_items`` most rated by them when ``n_items > 0``;
    ties: lower index), re-indexed in ascending original order; trust edges among the kept users are kept.
    """
    if n_users <= 0 or n_users >= data.n_users:
        if n_items <= 0:
            return data
        n_users = data.n_users
    raters = np.bincount(data.users, minlength=data.n_users)
    degree = np.zeros(data.n_users, np.int64)
    if len(data.trust):
        np.add.at(degree, data.trust[:, 0].astype(np.int64), 1)
        np.add.at(degree, data.trust[:, 1].astype(np.int64), 1)
    candidates = np.flatnonzero(raters > 0)
    order = sorted(candidates.tolist(), key=lambda u: (-degree[u], -raters[u], u))
    keep = np.array(sorted(order[:n_users]), np.int64)
    user_map = -np.ones(data.n_users, np.int64)
    user_map[keep] = np.arange(len(keep))
    rows = data.ratings[user_map[data.users] >= 0]
    if n_items > 0:
        counts = np.bincount(rows[:, 1].astype(np.int64), minlength=data.n_items)
        popular = sorted(np.flatnonzero(counts).tolist(), key=lambda j: (-counts[j], j))[:n_items]
        rows = rows[np.isin(rows[:, 1].astype(np.int64), popular)]
    items = np.unique(rows[:, 1].astype(np.int64))
    item_map = -np.ones(data.n_items, np.int64)
    item_map[items] = np.arange(len(items))
    ratings = np.column_stack([user_map[rows[:, 0].astype(np.int64)], item_map[rows[:, 1].astype(np.int64)],
                               rows[:, 2]]).astype(np.float64)
    t = data.trust
    inside = (user_map[t[:, 0].astype(np.int64)] >= 0) & (user_map[t[:, 1].astype(np.int64)] >= 0) if len(t) else []
    trust = t[inside] if len(t) else t
    if len(trust):
        trust = np.column_stack([user_map[trust[:, 0].astype(np.int64)], user_map[trust[:, 1].astype(np.int64)],
                                 trust[:, 2]]).astype(np.float64)
    return RatingData(len(keep), len(items), ratings, trust.reshape(-1, 3), f"{data.name}[{len(keep)} users]")


def load_dataset(name: str, progress: Callable[[str], None] | None = None) -> tuple[RatingData, str, str]:
    """``(data, dataset used, note)``: FilmTrust from the cache (fetched if needed), else synthetic data."""
    if name == "filmtrust":
        try:
            filmtrust.fetch(progress=progress)
            return filmtrust.load(), "filmtrust", ""
        except Exception as exc:  # noqa: BLE001 - any fetch failure falls back, and says so
            note = f"FilmTrust unavailable ({type(exc).__name__}: {exc}); synthetic data used instead"
            return synthetic.generate(SYNTHETIC_SHAPE, 0), "synthetic", note
    return synthetic.generate(SYNTHETIC_SHAPE, 0), "synthetic", ""


def prepare(spec: SliceSpec, soreg: SoRegSettings = FAST_SOREG) -> Prepared:
    """Load, subset, split and initialise (deterministic for a given ``spec``)."""
    spec.validate()
    data, used, note = load_dataset(spec.dataset)
    data = subset(data, spec.users, spec.items)
    train, test = train_test_split(data, spec.test_fraction, spec.seed)
    owner = np.arange(train.n_items, dtype=np.int64) % spec.n_sellers
    model = SoRegModel.init(train, soreg, spec.seed, item_owner=owner)
    return Prepared(spec, used, train, test, model, note)


def with_epochs(soreg: SoRegSettings, epochs: int) -> SoRegSettings:
    """``soreg`` with another epoch budget."""
    return replace(soreg, epochs=epochs)
