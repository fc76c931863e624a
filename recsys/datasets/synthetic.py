"""Seeded synthetic social ratings with real homophily: communities, power-law degrees, Zipf items.

Each user belongs to one community; its latent vector is the community centroid plus a small personal
deviation, so users of one community rate alike. Each user trusts a power-law number of others, a
fraction ``homophily`` of them inside its own community. Items have Gaussian latent vectors and a Zipf
popularity that decides which items get rated. A score is ``center + scale·(u·v) + noise`` clipped to the
rating range. With few ratings per user, friends carry real information about a user's taste — the case
where SoReg's social term should beat plain MF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.datasets import RatingData

RATING_MIN, RATING_MAX = 1.0, 5.0
"""Range of generated scores."""
RATING_CENTER = 3.0
"""Score of a user/item pair with zero affinity."""
RATING_SCALE = 1.0
"""Score units per unit of latent affinity ``u·v`` (whose variance is about 1)."""


@dataclass(frozen=True)
class SyntheticSettings:
    """Shape of a synthetic social rating data set."""

    n_users: int = 1000
    """Number of users."""
    n_items: int = 500
    """Number of items."""
    n_communities: int = 10
    """Number of taste communities users are split into (uniformly at random)."""
    ratings_per_user: int = 6
    """Distinct items each user rates (drawn by Zipf popularity, without replacement)."""
    degree_exponent: float = 2.5
    """Exponent ``a`` of the power-law out-degree ``P(k) ∝ k^-a`` (> 1)."""
    min_degree: int = 3
    """Smallest out-degree (the power law's lower cut-off)."""
    max_degree: int = 50
    """Largest out-degree (the power law is truncated here)."""
    homophily: float = 0.9
    """Probability that a trust edge stays inside the truster's community (else: any user)."""
    zipf_exponent: float = 0.8
    """Item popularity ∝ rank^-zipf_exponent (0: uniform)."""
    noise: float = 0.3
    """Standard deviation of the Gaussian noise added to every score."""
    dim: int = 8
    """Latent dimension of the generating vectors."""
    personal: float = 0.3
    """Share of a user's latent variance that is personal rather than its community's (0..1)."""

    def validate(self) -> "SyntheticSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        for name in ("n_users", "n_items", "n_communities", "ratings_per_user", "min_degree", "max_degree", "dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SyntheticSettings.{name} must be a positive integer, got {value!r}")
        if self.n_users < 2:
            raise ValueError("SyntheticSettings.n_users must be at least 2 (users need someone to trust)")
        if self.n_communities > self.n_users:
            raise ValueError("SyntheticSettings.n_communities cannot exceed n_users")
        if self.ratings_per_user > self.n_items:
            raise ValueError("SyntheticSettings.ratings_per_user cannot exceed n_items")
        if self.min_degree > self.max_degree or self.max_degree >= self.n_users:
            raise ValueError("SyntheticSettings needs min_degree <= max_degree < n_users")
        if not self.degree_exponent > 1.0:
            raise ValueError("SyntheticSettings.degree_exponent must be > 1")
        for name in ("homophily", "personal"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticSettings.{name} must be in [0, 1]")
        if not (self.zipf_exponent >= 0 and self.noise >= 0):
            raise ValueError("SyntheticSettings.zipf_exponent and noise must be >= 0")
        return self


@dataclass(frozen=True)
class SyntheticTruth:
    """The hidden generating state (for tests and diagnostics)."""

    community: np.ndarray
    """(n_users,) community of every user."""
    U: np.ndarray
    """(n_users, dim) user latent vectors."""
    V: np.ndarray
    """(n_items, dim) item latent vectors."""


def _degrees(s: SyntheticSettings, rng: np.random.Generator) -> np.ndarray:
    """Discrete power law by inverse-transform sampling of a Pareto, truncated to [min, max]."""
    raw = s.min_degree * (1.0 - rng.random(s.n_users)) ** (-1.0 / (s.degree_exponent - 1.0))
    return np.minimum(np.floor(raw).astype(np.int64), s.max_degree)


def _trust(s: SyntheticSettings, community: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    members = [np.flatnonzero(community == c) for c in range(s.n_communities)]
    edges = []
    for user, degree in enumerate(_degrees(s, rng)):
        own = members[community[user]]
        chosen: set[int] = set()
        for _ in range(degree):
            pool = own if (rng.random() < s.homophily and len(own) > 1) else None
            friend = int(rng.choice(pool)) if pool is not None else int(rng.integers(s.n_users))
            if friend != user:
                chosen.add(friend)
        edges.extend((user, friend, 1.0) for friend in sorted(chosen))
    return np.array(edges, dtype=np.float64).reshape(-1, 3)


def _ratings(s: SyntheticSettings, truth: SyntheticTruth, rng: np.random.Generator) -> np.ndarray:
    popularity = np.arange(1, s.n_items + 1, dtype=np.float64) ** -s.zipf_exponent
    popularity = popularity[rng.permutation(s.n_items)]
    popularity /= popularity.sum()
    rows = []
    for user in range(s.n_users):
        items = np.sort(rng.choice(s.n_items, s.ratings_per_user, replace=False, p=popularity))
        affinity = truth.V[items] @ truth.U[user]
        scores = RATING_CENTER + RATING_SCALE * affinity + s.noise * rng.standard_normal(len(items))
        rows.extend(zip([user] * len(items), items, np.clip(scores, RATING_MIN, RATING_MAX)))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def generate_with_truth(settings: SyntheticSettings, seed: int) -> tuple[RatingData, SyntheticTruth]:
    """The data set and its hidden generating vectors, from ``default_rng(seed)``."""
    s = settings.validate()
    rng = np.random.default_rng(seed)
    # Entries of variance d^-1/2 make u·v have variance about 1.
    sigma = s.dim ** -0.25
    community = rng.integers(s.n_communities, size=s.n_users)
    centroids = sigma * np.sqrt(1.0 - s.personal) * rng.standard_normal((s.n_communities, s.dim))
    U = centroids[community] + sigma * np.sqrt(s.personal) * rng.standard_normal((s.n_users, s.dim))
    V = sigma * rng.standard_normal((s.n_items, s.dim))
    truth = SyntheticTruth(community, U, V)
    trust = _trust(s, community, rng)
    ratings = _ratings(s, truth, rng)
    return RatingData(s.n_users, s.n_items, ratings, trust, f"synthetic-{seed}"), truth


def generate(settings: SyntheticSettings, seed: int) -> RatingData:
    """A seeded synthetic social rating data set (see the module docstring)."""
    return generate_with_truth(settings, seed)[0]
