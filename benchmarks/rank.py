"""MeritRank speed, Sybil tolerance and G-Rank search under attack; prints ONE JSON object.

    .venv/bin/python benchmarks/rank.py [--quick] [--seed N] [--no-grank]

Speed (side by side in one run, median over several egos): a fresh 10,000-walk MeritRank for one ego
(walks + walk index + scores at beta=0 and at beta=0.9) against networkx personalised PageRank on the
same 10k-node / ~100k-edge graph (Barabasi-Albert m=5, reciprocal, weights uniform 1-5). The one-off
graph build (add_edge for every edge + CSR arrays) is reported as ``build_ms``. Edge updates: p50 of
``update_edge`` with a new weight on random edges whose source is not the ego ("away") and on the ego's
own edges ("ego"), with the ego's walks kept up to date incrementally.

Sybil tolerance on ``recsys.attacks.attack_graph`` (1,000 honest BA m=3 nodes, 50 Sybils behind an
attacker at distance 2, attack edges weight 20), tau = 1.0 unless stated:

* ``sybil_gain_hit`` / ``sybil_gain_visit``: {shape: {beta: sum(R(sybil)) / R(attacker)}}.
* ``attacker_cut``: {shape: whether the attacker's own score drops at beta=0.9}; ``attacker_rho``.
* ``honest_cut_mass``: {tau: share of honest reputation (hit counting, ego and attacker excluded)
  removed at beta=1}, on the serial_cycle graph.
* ``spearman_honest_b09``: Spearman rho between beta=0.9 and beta=0 scores on the same walks over all
  honest nodes (ego excluded), tau=1.0 (``spearman_honest_b09_tau095`` for tau=0.95).
* ``far_attacker``: walks reaching an attacker at distance 4, and its gains.

G-Rank: ``mrr_*`` from ``recsys.grank.experiment.flood_experiment`` (10-attacker clicklog flood).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import networkx as nx
import numpy as np
from scipy.stats import spearmanr

from recsys.attacks import SHAPES, AttackSettings, attack_graph, honest_graph
from recsys.meritrank import COUNTING_MODES, MeritRank, MeritRankSettings

BETAS = ("0", "0.5", "0.9", "1")
TAU = 1.0
TAU_LOOSE = 0.95
BETA_SPEARMAN = 0.9
SPEED_NODES, SPEED_M = 10_000, 5
QUICK_SPEED_NODES = 3_000
WEIGHT_LOW, WEIGHT_HIGH = 1.0, 5.0
SPEED_EGOS, QUICK_SPEED_EGOS = 5, 2
AWAY_UPDATES, QUICK_AWAY_UPDATES = 500, 100
EGO_UPDATES, QUICK_EGO_UPDATES = 10, 3
WALKS = 10_000
FAR_DISTANCE = 4


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def build_meritrank(edges, seed: int, walks: int = WALKS) -> tuple[MeritRank, float]:
    started = time.perf_counter()
    mr = MeritRank(MeritRankSettings(walks=walks), seed=seed)
    for u, v, w in edges:
        mr.add_edge(u, v, w)
    mr.prepare()
    return mr, time.perf_counter() - started


def speed(seed: int, quick: bool) -> dict:
    rng = np.random.default_rng(seed)
    n = QUICK_SPEED_NODES if quick else SPEED_NODES
    edges = honest_graph(n, SPEED_M, rng, WEIGHT_LOW, WEIGHT_HIGH)
    mr, build_s = build_meritrank(edges, seed)
    g = nx.DiGraph()
    g.add_weighted_edges_from(edges)
    egos = rng.choice(n, size=QUICK_SPEED_EGOS if quick else SPEED_EGOS, replace=False).tolist()
    fresh, fresh_plain, ppr = [], [], []
    for ego in egos:
        mr.forget(ego)
        t0 = time.perf_counter()
        mr.scores(ego)
        t1 = time.perf_counter()
        mr.scores(ego, beta=BETA_SPEARMAN, tau=TAU)
        t2 = time.perf_counter()
        nx.pagerank(g, personalization={ego: 1.0}, weight="weight")
        t3 = time.perf_counter()
        fresh_plain.append(t1 - t0)
        fresh.append(t2 - t0)
        ppr.append(t3 - t2)
        mr.forget(ego)
    ego = egos[0]
    mr.scores(ego)
    away_edges = [(u, v) for u, v, _ in edges if u != ego]
    picks = rng.choice(len(away_edges), size=QUICK_AWAY_UPDATES if quick else AWAY_UPDATES, replace=False)
    away = []
    for i in picks.tolist():
        u, v = away_edges[i]
        w = float(rng.uniform(WEIGHT_LOW, WEIGHT_HIGH))
        t0 = time.perf_counter()
        mr.update_edge(u, v, w)
        away.append(time.perf_counter() - t0)
    ego_out = [v for u, v, _ in edges if u == ego]
    ego_times = []
    for k in range(QUICK_EGO_UPDATES if quick else EGO_UPDATES):
        w = float(rng.uniform(WEIGHT_LOW, WEIGHT_HIGH))
        t0 = time.perf_counter()
        mr.update_edge(ego, ego_out[k % len(ego_out)], w)
        ego_times.append(time.perf_counter() - t0)
    fresh_ms, ppr_ms = statistics.median(fresh), statistics.median(ppr)
    return {
        "graph": {"nodes": n, "edges": len(edges), "walks": WALKS, "egos": len(egos)},
        "build_ms": ms(build_s),
        "fresh_ms": ms(fresh_ms),
        "fresh_ms_beta0_only": ms(statistics.median(fresh_plain)),
        "nx_ppr_ms": ms(ppr_ms),
        "fresh_vs_ppr": round(fresh_ms / ppr_ms, 4),
        "edge_update_ms_p50": {"away": ms(statistics.median(away)), "ego": ms(statistics.median(ego_times))},
        "edge_update_ms_p90": {"away": ms(float(np.percentile(away, 90))), "ego": ms(float(np.percentile(ego_times, 90)))},
    }


def gain(scores: dict, sybils, attacker) -> float:
    return sum(scores.get(s, 0.0) for s in sybils) / scores[attacker]


def honest_figures(mr: MeritRank, ego, attacker, honest) -> dict:
    nodes = [h for h in honest if h != ego and h != attacker]
    base = mr.scores(ego, beta=0.0)
    r0 = np.array([base.get(h, 0.0) for h in nodes])
    out = {"honest_cut_mass": {}}
    for tau in (TAU_LOOSE, TAU):
        cut = mr.scores(ego, beta=1.0, tau=tau)
        r1 = np.array([cut.get(h, 0.0) for h in nodes])
        out["honest_cut_mass"][str(tau)] = round(float((r0 - r1).sum() / r0.sum()), 6)
    for tau, key in ((TAU, "spearman_honest_b09"), (TAU_LOOSE, "spearman_honest_b09_tau095")):
        s09 = mr.scores(ego, beta=BETA_SPEARMAN, tau=tau)
        out[key] = round(float(spearmanr(r0, [s09.get(h, 0.0) for h in nodes]).statistic), 6)
    return out


def sybil(seed: int, quick: bool) -> dict:
    settings = AttackSettings()
    out: dict = {f"sybil_gain_{c}": {} for c in COUNTING_MODES}
    out.update({"walks_reaching_attacker": {}, "attacker_cut": {}, "attacker_cut_tau095": {}})
    for shape in SHAPES:
        ag = attack_graph(shape, seed=seed, settings=settings)
        mr, _ = build_meritrank(ag.edges, seed)
        for counting in COUNTING_MODES:
            out[f"sybil_gain_{counting}"][shape] = {
                b: round(gain(mr.scores(ag.ego, beta=float(b), tau=TAU, counting=counting), ag.sybils, ag.attacker), 6)
                for b in BETAS
            }
        plain = mr.scores(ag.ego)
        out["walks_reaching_attacker"][shape] = mr.walks_reaching(ag.ego, ag.attacker)
        out["attacker_cut"][shape] = mr.scores(ag.ego, beta=BETA_SPEARMAN, tau=TAU)[ag.attacker] < plain[ag.attacker]
        loose = mr.scores(ag.ego, beta=BETA_SPEARMAN, tau=TAU_LOOSE)
        out["attacker_cut_tau095"][shape] = loose.get(ag.attacker, 0.0) < plain[ag.attacker]
        if shape == "serial_cycle":
            out.update(honest_figures(mr, ag.ego, ag.attacker, ag.honest))
            out["attack_graph"] = {"ego": ag.ego, "attacker": ag.attacker, "ego_out_degree":
                                   sum(1 for u, _, _ in ag.edges if u == ag.ego), "seed": seed}
    out["far_attacker"] = far_attacker(seed)
    out["targets_met"] = {
        "gain_b1_below_0.01": all(g["1"] < 0.01 for c in COUNTING_MODES for g in out[f"sybil_gain_{c}"].values()),
        "gain_b09_le_0.12x_b0": all(g["0.9"] <= 0.12 * g["0"] for c in COUNTING_MODES
                                    for g in out[f"sybil_gain_{c}"].values()),
        "attacker_not_cut": not any(out["attacker_cut"].values()),
        "spearman_ge_0.95": out["spearman_honest_b09"] >= 0.95,
        "tau1_cut_below_1pct": out["honest_cut_mass"][str(TAU)] < 0.01,
    }
    return out


def far_attacker(seed: int) -> dict:
    """How many walks reach an attacker FAR_DISTANCE hops away, and the gain there (serial_cycle, hit)."""
    ag = attack_graph("serial_cycle", seed=seed, settings=AttackSettings(attacker_distance=FAR_DISTANCE))
    mr, _ = build_meritrank(ag.edges, seed)
    reached = mr.walks_reaching(ag.ego, ag.attacker)
    gains = {b: round(gain(mr.scores(ag.ego, beta=float(b), tau=TAU), ag.sybils, ag.attacker), 6)
             for b in BETAS} if reached else None
    return {"distance": FAR_DISTANCE, "walks_reaching_attacker": reached, "sybil_gain_hit": gains}


def grank(seed: int, quick: bool) -> dict:
    keys = ("mrr_honest", "mrr_attack_vanilla", "mrr_attack_weighted")
    try:
        from recsys.grank.experiment import flood_experiment
    except ImportError as exc:
        return {**dict.fromkeys(keys), "grank_note": f"flood_experiment unavailable: {exc}"}
    res = flood_experiment(seed=seed, quick=quick)
    out = {k: res.get(k) for k in keys}
    for extra in ("weighted_vs_honest", "vanilla_vs_honest", "elapsed_s"):
        if extra in res:
            out[f"grank_{extra}"] = res[extra]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller speed graph, fewer repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-grank", action="store_true", help="skip the G-Rank flood experiment")
    args = parser.parse_args()
    result = {"benchmark": "rank", "quick": args.quick, "seed": args.seed}
    result.update(speed(args.seed, args.quick))
    result.update(sybil(args.seed, args.quick))
    if args.no_grank:
        result.update({"mrr_honest": None, "mrr_attack_vanilla": None, "mrr_attack_weighted": None})
    else:
        result.update(grank(args.seed, args.quick))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
