"""Seeded search workload: a tagged catalogue, users with latent interests, position-biased clicks.

The model:

- ``n_items`` items, each with 1..``max_tags_per_item`` tags (every tag has items) and a quality.
- Users belong to communities. A community has a tag profile (Dirichlet) and an item taste (log-normal
  affinity per item); a user's tag interest is drawn around its community's profile and its taste is
  the community's taste times personal log-normal noise. Relevance(u, item) = quality × taste.
- A session: the user picks a query tag from its interests, is shown ``shown_k`` items carrying that tag
  in random order, and clicks one with probability ∝ relevance × (1/(position+1))^``position_bias``.
- Held-out sessions (the same model, later) are the ground truth for MRR and recall@k.
- Social trust among users: a Barabási–Albert graph inside each community plus a few random
  cross-community links, made reciprocal, weights uniform in [1, 5] (as the MeritRank attack graph).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from recsys.grank.clicklog import ClickEntry

TAG_PREFIX = "tag"
ITEM_PREFIX = "item"
USER_PREFIX = "user"
SESSION_MS = 1_000
"""Spacing of synthetic session timestamps, milliseconds."""


@dataclass(frozen=True)
class WorkloadSettings:
    """Size and shape of a synthetic search workload."""

    n_users: int = 200
    """Honest users (one node each)."""
    n_items: int = 400
    """Catalogue size."""
    n_tags: int = 40
    """Distinct tags; a query is one tag."""
    max_tags_per_item: int = 3
    """Each item carries 1..this many distinct tags."""
    n_communities: int = 8
    """User communities sharing tag interests, item taste and most social links."""
    sessions_per_user: int = 30
    """Training sessions (clicklog entries) per user."""
    heldout_per_user: int = 5
    """Held-out sessions per user (ground truth)."""
    shown_k: int = 10
    """Results shown per session."""
    position_bias: float = 1.0
    """η in the examination probability (1/(position+1))^η."""
    taste_sigma: float = 1.0
    """Log-normal σ of a community's affinity for each item."""
    personal_sigma: float = 0.3
    """Log-normal σ of a user's deviation from its community's taste."""
    quality_sigma: float = 0.5
    """Log-normal σ of item quality (shared by everyone)."""
    community_tag_concentration: float = 0.3
    """Dirichlet concentration of a community's tag profile (small: few favourite tags)."""
    user_tag_concentration: float = 20.0
    """How closely a user's tag interests follow its community profile (Dirichlet scale)."""
    trust_m: int = 3
    """Barabási–Albert attachment inside a community."""
    cross_links_per_user: float = 0.5
    """Mean random cross-community trust links per user."""
    trust_weight_min: float = 1.0
    """Lowest social trust weight."""
    trust_weight_max: float = 5.0
    """Highest social trust weight."""

    def validate(self) -> None:
        """Raise ``ValueError`` when the workload cannot be generated."""
        positive = ("n_users", "n_items", "n_tags", "max_tags_per_item", "n_communities",
                    "sessions_per_user", "heldout_per_user", "shown_k", "trust_m")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_items < self.n_tags:
            raise ValueError("n_items must be >= n_tags so that every tag has an item")
        if self.max_tags_per_item > self.n_tags:
            raise ValueError("max_tags_per_item must be <= n_tags")
        if self.n_users < self.n_communities * (self.trust_m + 1):
            raise ValueError("each community needs more than trust_m users: "
                             "raise n_users or lower n_communities")
        non_negative = ("position_bias", "taste_sigma", "personal_sigma", "quality_sigma",
                        "cross_links_per_user")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.community_tag_concentration <= 0 or self.user_tag_concentration <= 0:
            raise ValueError("Dirichlet concentrations must be > 0")
        if not 0 < self.trust_weight_min <= self.trust_weight_max:
            raise ValueError("need 0 < trust_weight_min <= trust_weight_max")


@dataclass(frozen=True)
class Item:
    """A catalogue item."""

    item_id: str
    """Item id."""
    title: str
    """Title (its terms do not collide with tags)."""
    tags: tuple[str, ...]
    """Tags."""


@dataclass(frozen=True)
class Session:
    """One search session: ``user`` searched ``query``, saw ``shown``, clicked ``clicked``."""

    user: str
    """User id."""
    query: tuple[str, ...]
    """Query terms (one tag)."""
    shown: tuple[str, ...]
    """Items shown, in display order."""
    clicked: str
    """Clicked item."""


@dataclass(frozen=True)
class Workload:
    """A generated workload."""

    settings: WorkloadSettings
    """Settings it was generated with."""
    items: tuple[Item, ...]
    """Catalogue."""
    users: tuple[str, ...]
    """User ids."""
    community: tuple[int, ...]
    """Community index of each user (aligned with ``users``)."""
    train: tuple[Session, ...]
    """Training sessions (become clicklog entries)."""
    heldout: tuple[Session, ...]
    """Held-out sessions (ground truth)."""
    trust_edges: tuple[tuple[str, str, float], ...]
    """Directed social trust edges (src, dst, weight), reciprocal."""

    def tag_items(self) -> dict[str, tuple[str, ...]]:
        """tag -> items carrying it."""
        out: dict[str, list[str]] = {}
        for item in self.items:
            for tag in item.tags:
                out.setdefault(tag, []).append(item.item_id)
        return {t: tuple(v) for t, v in out.items()}


def sessions_to_entries(sessions: Sequence[Session]) -> list[ClickEntry]:
    """Clicklog entries of ``sessions``, numbered per user in order."""
    seqs: dict[str, int] = {}
    entries = []
    for i, s in enumerate(sessions):
        seq = seqs.get(s.user, 0)
        seqs[s.user] = seq + 1
        entries.append(ClickEntry(s.user, seq, s.query, s.shown, s.clicked, i * SESSION_MS))
    return entries


def _catalogue(s: WorkloadSettings, rng: np.random.Generator) -> tuple[list[Item], list[str]]:
    tags = [f"{TAG_PREFIX}{t:03d}" for t in range(s.n_tags)]
    items = []
    for j in range(s.n_items):
        n_tags = int(rng.integers(1, s.max_tags_per_item + 1))
        first = j % s.n_tags
        others = rng.choice(s.n_tags, size=n_tags, replace=False)
        picked = list(dict.fromkeys([first, *others.tolist()]))[:n_tags]
        items.append(Item(f"{ITEM_PREFIX}{j:05d}", f"catalogue entry {j}", tuple(tags[t] for t in picked)))
    return items, tags


def _trust_edges(
    s: WorkloadSettings, users: list[str], community: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[str, str, float], ...]:
    graph = nx.Graph()
    graph.add_nodes_from(range(len(users)))
    for c in range(s.n_communities):
        members = np.flatnonzero(community == c)
        ba = nx.barabasi_albert_graph(len(members), s.trust_m, seed=int(rng.integers(2**31)))
        graph.add_edges_from((int(members[a]), int(members[b])) for a, b in ba.edges())
    n_cross = int(round(s.cross_links_per_user * len(users)))
    for _ in range(n_cross):
        a, b = rng.choice(len(users), size=2, replace=False)
        graph.add_edge(int(a), int(b))
    edges = []
    for a, b in sorted(graph.edges()):
        for src, dst in ((a, b), (b, a)):
            weight = float(rng.uniform(s.trust_weight_min, s.trust_weight_max))
            edges.append((users[src], users[dst], weight))
    return tuple(edges)


def _sessions(
    s: WorkloadSettings,
    users: list[str],
    relevance: np.ndarray,
    interest: np.ndarray,
    tag_members: list[np.ndarray],
    tags: list[str],
    count: int,
    rng: np.random.Generator,
) -> list[Session]:
    out = []
    examine = (1.0 / np.arange(1, s.shown_k + 1)) ** s.position_bias
    for u, user in enumerate(users):
        for tag_index in rng.choice(len(tags), size=count, p=interest[u]):
            members = tag_members[tag_index]
            shown = rng.permutation(members)[: s.shown_k]
            weights = relevance[u, shown] * examine[: len(shown)]
            clicked = shown[rng.choice(len(shown), p=weights / weights.sum())]
            out.append(Session(user, (tags[tag_index],), tuple(f"{ITEM_PREFIX}{j:05d}" for j in shown),
                               f"{ITEM_PREFIX}{clicked:05d}"))
    return out


def generate_workload(settings: WorkloadSettings | None = None, seed: int = 0) -> Workload:
    """Generate a workload; the same settings and seed give the same workload."""
    s = settings or WorkloadSettings()
    s.validate()
    rng = np.random.default_rng(seed)
    items, tags = _catalogue(s, rng)
    users = [f"{USER_PREFIX}{u:05d}" for u in range(s.n_users)]
    community = rng.permutation(np.arange(s.n_users) % s.n_communities)
    quality = rng.lognormal(0.0, s.quality_sigma, size=s.n_items)
    taste = rng.lognormal(0.0, s.taste_sigma, size=(s.n_communities, s.n_items))
    personal = rng.lognormal(0.0, s.personal_sigma, size=(s.n_users, s.n_items))
    relevance = quality[None, :] * taste[community] * personal
    profile = rng.dirichlet(np.full(s.n_tags, s.community_tag_concentration), size=s.n_communities)
    interest = np.stack([rng.dirichlet(s.user_tag_concentration * profile[c] + 1e-3) for c in community])
    tag_index = {t: i for i, t in enumerate(tags)}
    tag_members = [[] for _ in tags]
    for j, item in enumerate(items):
        for tag in item.tags:
            tag_members[tag_index[tag]].append(j)
    tag_members = [np.array(m) for m in tag_members]
    train = _sessions(s, users, relevance, interest, tag_members, tags, s.sessions_per_user, rng)
    heldout = _sessions(s, users, relevance, interest, tag_members, tags, s.heldout_per_user, rng)
    return Workload(s, tuple(items), tuple(users), tuple(int(c) for c in community), tuple(train),
                    tuple(heldout), _trust_edges(s, users, community, rng))


def reciprocal_rank(ranked: Sequence[str], truth: str) -> float:
    """1/(position of ``truth`` in ``ranked``, from 1), or 0 when absent."""
    for position, item in enumerate(ranked, start=1):
        if item == truth:
            return 1.0 / position
    return 0.0


def mrr(rankings: Sequence[Sequence[str]], truths: Sequence[str]) -> float:
    """Mean reciprocal rank of each truth in its ranking."""
    if len(rankings) != len(truths):
        raise ValueError(f"{len(rankings)} rankings but {len(truths)} truths")
    if not truths:
        raise ValueError("cannot compute MRR of no queries")
    return float(np.mean([reciprocal_rank(r, t) for r, t in zip(rankings, truths)]))


def recall_at_k(rankings: Sequence[Sequence[str]], truths: Sequence[str], k: int) -> float:
    """Share of queries whose truth is among the first ``k`` results."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(rankings) != len(truths):
        raise ValueError(f"{len(rankings)} rankings but {len(truths)} truths")
    if not truths:
        raise ValueError("cannot compute recall of no queries")
    return float(np.mean([t in list(r)[:k] for r, t in zip(rankings, truths)]))
