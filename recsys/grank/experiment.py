"""Search under attack: G-Rank MRR without attack, under a Sybil clicklog flood and under targeted clicks.

Honest users (``recsys.workload``) search, click and gossip their clicklogs; every honest user holds
every log (the steady state of the pull gossip). The trust graph is the users' social graph plus
``n_attackers`` Sybil regions (``recsys.grank.attacks``). For a sample of honest searchers (egos) we
rank each of their held-out queries with

- vanilla G-Rank on honest logs only (``mrr_honest``) and reputation-weighted G-Rank on the same logs;
- vanilla and weighted G-Rank after the flood (honest logs + flood entries + spam metadata);
- vanilla and weighted G-Rank after targeted Sybil clicks;
- a uniformly random order of the items matching the query (``mrr_random``).

Reputation is MeritRank from each ego's view (α=0.15, β=0.9, τ=1.0), on the same trust graph for all
attacked variants. Issue 4 asks ``mrr_attack_weighted`` ≥ 0.9 × ``mrr_honest`` while vanilla drops.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from recsys.grank.attacks import (
    AttackSettings,
    SybilRegion,
    flood_entries,
    spam_metadata,
    sybil_regions,
    targeted_entries,
)
from recsys.grank.metadata import ItemMetadata, MetadataIndex
from recsys.grank.rank import ClickIndex, GRankSettings, search, similarities
from recsys.meritrank import MeritRank, MeritRankSettings
from recsys.workload import (
    Workload,
    WorkloadSettings,
    generate_workload,
    mrr,
    recall_at_k,
    sessions_to_entries,
)

VARIANTS = ("honest", "honest_weighted", "attack_vanilla", "attack_weighted",
            "targeted_vanilla", "targeted_weighted", "random")


@dataclass(frozen=True)
class FloodExperimentSettings:
    """Everything the search-under-attack experiment depends on."""

    workload: WorkloadSettings = field(default_factory=WorkloadSettings)
    """Honest catalogue, users, sessions and social graph."""
    attack: AttackSettings = field(default_factory=AttackSettings)
    """Attackers, Sybils and fake entries."""
    grank: GRankSettings = field(default_factory=GRankSettings)
    """G-Rank scoring parameters."""
    meritrank: MeritRankSettings = field(
        default_factory=lambda: MeritRankSettings(walks=10_000, alpha=0.15, beta=0.9, tau=1.0)
    )
    """Reputation from each searcher's view."""
    n_egos: int = 100
    """Honest searchers whose held-out queries are evaluated."""
    recall_k: int = 10
    """k of recall@k."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a part is out of range."""
        self.workload.validate()
        self.attack.validate()
        self.grank.validate()
        self.meritrank.validate()
        if not 1 <= self.n_egos <= self.workload.n_users:
            raise ValueError("n_egos must be in 1..n_users")
        if self.recall_k < 1:
            raise ValueError("recall_k must be >= 1")


QUICK = FloodExperimentSettings(
    workload=WorkloadSettings(
        n_users=160, n_items=320, n_tags=32, sessions_per_user=25, heldout_per_user=4
    ),
    attack=AttackSettings(sybils_per_attacker=10, target_queries=24),
    meritrank=MeritRankSettings(walks=4_000, alpha=0.15, beta=0.9, tau=1.0),
    n_egos=60,
)
"""Reduced run for tests and ``--quick`` (well under 30 s)."""


def _honest_metadata(workload: Workload, rng: np.random.Generator) -> list[ItemMetadata]:
    owners = rng.integers(len(workload.users), size=len(workload.items))
    return [ItemMetadata(it.item_id, workload.users[int(o)], it.title, it.tags)
            for it, o in zip(workload.items, owners)]


def _targets(workload: Workload, n: int) -> list[str]:
    popularity = Counter(s.query[0] for s in workload.train)
    return [t for t, _ in sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _least_clicked(
    workload: Workload, tags: list[str], tag_items: dict[str, tuple[str, ...]], rng: np.random.Generator
) -> dict[str, str]:
    clicks = Counter(s.clicked for s in workload.train)
    chosen = {}
    for tag in tags:
        items = list(tag_items[tag])
        low = min(clicks[i] for i in items)
        candidates = [i for i in items if clicks[i] == low]
        chosen[tag] = candidates[int(rng.integers(len(candidates)))]
    return chosen


@dataclass
class _Scenario:
    workload: Workload
    tag_items: dict[str, tuple[str, ...]]
    regions: list[SybilRegion]
    logs: dict[str, ClickIndex]
    metadata: dict[str, MetadataIndex]
    meritrank: MeritRank
    counts: dict[str, int]


def _build(cfg: FloodExperimentSettings, seed: int, rng: np.random.Generator) -> _Scenario:
    workload = generate_workload(cfg.workload, seed=seed)
    tag_items = workload.tag_items()
    honest = sessions_to_entries(workload.train)
    honest_meta = _honest_metadata(workload, rng)
    regions = sybil_regions(workload.users, cfg.attack, rng)
    targets = _targets(workload, cfg.attack.target_queries)
    spam = [spam_metadata(r, targets, cfg.attack) for r in regions]
    flood = []
    for region, items in zip(regions, spam):
        spam_ids = [m.item_id for m in items]
        flood += flood_entries(region, spam_ids, targets, tag_items, cfg.attack, rng, honest)
    chosen = _least_clicked(workload, targets, tag_items, rng)
    targeted = [e for r in regions for e in targeted_entries(r, chosen, tag_items, cfg.attack, rng, honest)]
    metadata = {"clean": MetadataIndex(), "flood": MetadataIndex()}
    metadata["clean"].add_all(honest_meta)
    metadata["flood"].add_all(honest_meta + [m for items in spam for m in items])
    metadata["targeted"] = metadata["clean"]
    logs = {
        "clean": ClickIndex.from_entries(honest),
        "flood": ClickIndex.from_entries(honest + flood),
        "targeted": ClickIndex.from_entries(honest + targeted),
    }
    mr = MeritRank(cfg.meritrank, seed=seed)
    for src, dst, weight in workload.trust_edges + tuple(e for r in regions for e in r.edges):
        mr.add_edge(src, dst, weight)
    counts = {"honest_entries": len(honest), "flood_entries": len(flood), "targeted_entries": len(targeted)}
    return _Scenario(workload, tag_items, regions, logs, metadata, mr, counts)


_RUNS = {
    "honest": ("clean", False),
    "honest_weighted": ("clean", True),
    "attack_vanilla": ("flood", False),
    "attack_weighted": ("flood", True),
    "targeted_vanilla": ("targeted", False),
    "targeted_weighted": ("targeted", True),
}
"""variant -> (which clicklogs and metadata, reputation-weighted?)"""


def flood_experiment(
    seed: int = 0, quick: bool = False, settings: FloodExperimentSettings | None = None
) -> dict:
    """Run the experiment; return MRR / recall@k per variant and the attack's size (JSON-ready).

    Keys: ``mrr_honest``, ``mrr_honest_weighted``, ``mrr_attack_vanilla``, ``mrr_attack_weighted``,
    ``mrr_targeted_vanilla``, ``mrr_targeted_weighted``, ``mrr_random``, ``recall_at_k`` (per variant),
    ``weighted_vs_honest`` (mrr_attack_weighted / mrr_honest), ``vanilla_vs_honest``, reputation shares
    and sizes. ``settings`` overrides the defaults (``QUICK`` when ``quick``).
    """
    started = time.perf_counter()
    cfg = settings or (QUICK if quick else FloodExperimentSettings())
    cfg.validate()
    rng = np.random.default_rng(seed)
    sc = _build(cfg, seed, rng)
    attackers = {r.attacker for r in sc.regions}
    sybils = {s for r in sc.regions for s in r.sybils}
    picked = sorted(rng.choice(len(sc.workload.users), cfg.n_egos, replace=False))
    egos = [sc.workload.users[i] for i in picked]
    heldout = [s for s in sc.workload.heldout if s.user in set(egos)]
    rankings: dict[str, list[list[str]]] = {v: [] for v in VARIANTS}
    attacker_share, sybil_share = [], []
    for ego in egos:
        rep = sc.meritrank.scores(ego)
        sc.meritrank.forget(ego)
        total = sum(v for v in rep.values() if v > 0) or 1.0
        attacker_share.append(sum(max(rep.get(a, 0.0), 0.0) for a in attackers) / total)
        sybil_share.append(sum(max(rep.get(s, 0.0), 0.0) for s in sybils) / total)
        sims = {name: similarities(index, ego, cfg.grank) for name, index in sc.logs.items()}
        for session in (s for s in heldout if s.user == ego):
            for variant, (log, weighted) in _RUNS.items():
                ranked = search(sc.logs[log], sc.metadata[log], ego, session.query, k=None,
                                settings=cfg.grank, reputation=rep if weighted else None, sims=sims[log])
                rankings[variant].append([r.item_id for r in ranked])
            rankings["random"].append(list(rng.permutation(list(sc.tag_items[session.query[0]]))))
    truths = [s.clicked for s in heldout]
    result: dict = {f"mrr_{v}": mrr(rankings[v], truths) for v in VARIANTS}
    result["recall_k"] = cfg.recall_k
    result["recall_at_k"] = {v: recall_at_k(rankings[v], truths, cfg.recall_k) for v in VARIANTS}
    result["weighted_vs_honest"] = result["mrr_attack_weighted"] / result["mrr_honest"]
    result["weighted_vs_honest_weighted"] = (
        result["mrr_attack_weighted"] / result["mrr_honest_weighted"]
    )
    result["vanilla_vs_honest"] = result["mrr_attack_vanilla"] / result["mrr_honest"]
    result["targeted_weighted_vs_honest"] = result["mrr_targeted_weighted"] / result["mrr_honest"]
    result["targeted_vanilla_vs_honest"] = result["mrr_targeted_vanilla"] / result["mrr_honest"]
    result["attacker_reputation_share"] = float(np.mean(attacker_share))
    result["sybil_reputation_share"] = float(np.mean(sybil_share))
    result.update(sc.counts)
    result.update({
        "seed": seed, "quick": quick, "n_users": cfg.workload.n_users, "n_items": cfg.workload.n_items,
        "n_egos": cfg.n_egos, "n_queries": len(truths), "n_attackers": len(sc.regions),
        "n_sybils": len(sybils), "walks": cfg.meritrank.walks,
        "elapsed_s": round(time.perf_counter() - started, 2),
    })
    return result
