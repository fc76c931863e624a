"""Devnet steps for search under a Sybil attack: G-Rank MRR and MeritRank gain on real daemons.

``rank_setup`` turns a seeded :mod:`recsys.workload` into node state: one honest node per workload
user, the catalogue spread over them as signed items (``items.add``), the users' social graph as trust
edges (``trust.add``) and the training sessions as clicks (``click``); it waits until every honest node
pulled every honest clicklog. ``rank_eval`` searches each honest node's held-out queries through the
control API, vanilla and reputation-weighted, and keeps the MRR. ``rank_attack`` builds the Sybil
regions: each attacker node is trusted by a few honest nodes, trusts its Sybil identities (extra
Ed25519 keys generated here, seeded), publishes spam items tagged with the most searched tags, and
floods clicklogs (``recsys.grank.attacks.flood_entries``): its own entries through ``click``, its
Sybils' entries signed by the Sybil keys and handed to the attacker daemon with ``search.import``
(checked like pulled entries), from where pull gossip spreads them. ``rank_report`` compares, writes
``rank.png`` and checks the two claims of issue 4.

What is not modelled: the Sybils' own outgoing trust edges (Sybil -> attacker, the Sybil ring) would
need a raw publish of Sybil-signed edges on the trust topic; the region is attacker -> Sybils only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
from libp2p.crypto.ed25519 import create_new_key_pair  # noqa: E402
from libp2p.peer.id import ID  # noqa: E402

from devnet.launcher import NodeProc  # noqa: E402
from devnet.scenario import RunContext, ScenarioError, step  # noqa: E402
from protocols import grank as wire  # noqa: E402
from protocols.codec import encode  # noqa: E402
from recsys.grank.attacks import AttackSettings, SybilRegion, flood_entries  # noqa: E402
from recsys.grank.clicklog import ClickEntry  # noqa: E402
from recsys.workload import WorkloadSettings, generate_workload, mrr, sessions_to_entries  # noqa: E402

POLL_S = 0.5
SEED_BYTES = 32
MAX_K = 1000
IMPORT_BATCH_CHARS = 40_000
"""Hex characters of Sybil entries per ``search.import`` call (the control API caps a request at 64 KiB)."""
FIGURE_DPI = 100
CLI_TIMEOUT_S = 60.0
WEIGHTED_KEEP = 0.9
"""Issue 4: weighted MRR under attack keeps at least this share of the no-attack MRR."""


def _state(ctx: RunContext) -> dict[str, Any]:
    state = ctx.report.get("_rank")
    if state is None:
        raise ScenarioError("run rank_setup before the other rank steps")
    return state


def _call(ctx: RunContext, proc: NodeProc, cmd: str, **args: Any) -> Any:
    return ctx.devnet.client(proc.name).call(cmd, **args)


def _wait(ctx: RunContext, spec: dict, what: str, done) -> float:
    started = time.monotonic()
    deadline = ctx.deadline(spec)
    while not done():
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out waiting for {what}")
        time.sleep(POLL_S)
    return round(time.monotonic() - started, 2)


def _workload_settings(spec: dict, n_users: int) -> WorkloadSettings:
    keys = ("n_items", "n_tags", "n_communities", "sessions_per_user", "heldout_per_user", "trust_m", "shown_k")
    overrides = {k: int(spec[k]) for k in keys if k in spec}
    return WorkloadSettings(n_users=n_users, **overrides)


@step("rank_setup")
def rank_setup(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Items, trust edges and clicks of a seeded workload on the honest nodes; wait for full spread."""
    honest = [ctx.devnet.node(i) for i in spec["honest"]]
    seed = int(spec.get("seed", 0))
    workload = generate_workload(_workload_settings(spec, len(honest)), seed=seed)
    node_of = dict(zip(workload.users, honest))
    mesh_s = _wait_for_meshes(ctx, spec, ctx.live_nodes(), ("trust", wire.ITEMS_TOPIC_SERVICE))
    started = time.monotonic()
    item_map: dict[str, str] = {}
    for index, item in enumerate(workload.items):
        owner = honest[index % len(honest)]
        item_map[item.item_id] = _call(ctx, owner, "items.add", title=item.title, tags=list(item.tags))["item_id"]
    for src, dst, weight in workload.trust_edges:
        _call(ctx, node_of[src], "trust.add", peer=node_of[dst].peer_id, weight=round(weight, 3))
    for session in workload.train:
        _call(ctx, node_of[session.user], "click", query=" ".join(session.query), item=item_map[session.clicked],
              shown=[item_map[i] for i in session.shown])
    loaded_s = round(time.monotonic() - started, 2)
    total = len(workload.train)

    def spread() -> bool:
        stats = [_call(ctx, p, "search.stats") for p in honest]
        return all(s["entries"] >= total and s["items"] >= len(workload.items) for s in stats)

    spread_s = _wait(ctx, spec, "honest clicklogs and items on every honest node", spread)
    ctx.report["_rank"] = {"workload": workload, "honest": honest, "node_of": node_of, "item_map": item_map,
                           "back": {v: k for k, v in item_map.items()}, "eval": {}, "attack": None}
    return {"honest_nodes": [p.name for p in honest], "items": len(workload.items),
            "trust_edges": len(workload.trust_edges), "clicks": total, "heldout": len(workload.heldout),
            "mesh_s": mesh_s, "load_s": loaded_s, "spread_s": spread_s}


def _reputation_gain(ctx: RunContext, state: dict) -> dict[str, Any]:
    """Σ Sybil reputation / Σ attacker reputation from each honest node's view (MeritRank, trust.rank)."""
    attack = state["attack"]
    if attack is None:
        return {}
    attackers = {a["peer_id"] for a in attack["regions"]}
    sybils = {s for a in attack["regions"] for s in a["sybils"]}
    gains, att_share, syb_share, views = [], [], [], []
    direct = {name for a in attack["regions"] for name in a["trusted_by"]}
    for proc in state["honest"]:
        rows = _call(ctx, proc, "trust.rank", k=MAX_K)["rows"]
        scores = {r["peer"]: r["score"] for r in rows}
        total = sum(v for v in scores.values() if v > 0) or 1.0
        att = sum(max(scores.get(a, 0.0), 0.0) for a in attackers)
        syb = sum(max(scores.get(s, 0.0), 0.0) for s in sybils)
        att_share.append(att / total)
        syb_share.append(syb / total)
        if att > 0:
            gains.append(syb / att)
            views.append(proc.name)
    by_kind = {kind: [g for g, v in zip(gains, views) if (v in direct) == is_direct]
               for kind, is_direct in (("trusts_attacker", True), ("attacker_farther", False))}
    return {"reputation_gain": float(np.mean(gains)) if gains else None,
            "reputation_gain_per_view": [round(g, 4) for g in gains], "gain_views": views,
            "reputation_gain_by_view_kind": {k: float(np.mean(v)) if v else None for k, v in by_kind.items()},
            "attacker_reputation_share": float(np.mean(att_share)),
            "sybil_reputation_share": float(np.mean(syb_share))}


@step("rank_eval")
def rank_eval(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """MRR of every honest node's held-out queries, vanilla and reputation-weighted, through ``search``."""
    state = _state(ctx)
    label = str(spec["label"])
    time.sleep(float(spec.get("settle_s", 0.0)))  # lets the trust services recompute after new edges
    rankings: dict[str, list[list[str]]] = {"vanilla": [], "weighted": []}
    truths, fallbacks = [], Counter()
    for session in state["workload"].heldout:
        proc = state["node_of"][session.user]
        for variant in rankings:
            answer = _call(ctx, proc, "search", query=" ".join(session.query), k=MAX_K, vanilla=variant == "vanilla")
            if variant == "weighted" and not answer["weighted"]:
                fallbacks[answer["fallback"]] += 1
            rankings[variant].append([state["back"].get(r["item_id"], r["item_id"]) for r in answer["results"]])
        truths.append(session.clicked)
    result = {"label": label, "queries": len(truths),
              "mrr_vanilla": mrr(rankings["vanilla"], truths), "mrr_weighted": mrr(rankings["weighted"], truths),
              "weighted_fallbacks": dict(fallbacks), **_reputation_gain(ctx, state)}
    state["eval"][label] = result
    result["checks"] = {"weighted_applied": not fallbacks}
    return result


def _sybil_keys(seed: int, attacker: int, count: int):
    rng = np.random.default_rng([seed, attacker])
    return [create_new_key_pair(rng.bytes(SEED_BYTES)) for _ in range(count)]


def _batches(frames: list[str], max_chars: int) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    used = 0
    for frame in frames:
        if batches[-1] and used + len(frame) > max_chars:
            batches.append([])
            used = 0
        batches[-1].append(frame)
        used += len(frame)
    return [b for b in batches if b]


def _wait_for_meshes(ctx: RunContext, spec: dict, procs: list[NodeProc], services: tuple[str, ...]) -> float:
    topics = [f"plexus/{ctx.devnet.network}/{s}" for s in services]

    def formed() -> bool:
        meshes = [_call(ctx, p, "status")["mesh"] for p in procs]
        return all(m.get(t, 0) >= 1 for m in meshes for t in topics)

    return _wait(ctx, spec, f"meshes of {', '.join(topics)}", formed)


def _targets(workload, n: int) -> list[str]:
    popularity = Counter(s.query[0] for s in workload.train)
    return [t for t, _ in sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _attack_one(ctx, state, proc, index, cfg: AttackSettings, spec, rng) -> dict[str, Any]:
    seed = int(spec.get("seed", 0))
    keys = _sybil_keys(seed, index, cfg.sybils_per_attacker)
    sybils = [ID.from_pubkey(k.public_key).to_base58() for k in keys]
    honest = state["honest"]
    trusting = [honest[int(h)] for h in rng.choice(len(honest), size=cfg.honest_edges_per_attacker, replace=False)]
    for h in trusting:
        _call(ctx, h, "trust.add", peer=proc.peer_id, weight=cfg.honest_edge_weight)
    for sybil in sybils:
        _call(ctx, proc, "trust.add", peer=sybil, weight=cfg.attack_weight)
    targets = _targets(state["workload"], cfg.target_queries)
    spam = [_call(ctx, proc, "items.add", title=f"best deal {index}-{i}", tags=targets)["item_id"]
            for i in range(cfg.spam_items_per_attacker)]
    item_map = state["item_map"]
    tag_items = {t: [item_map[i] for i in items] for t, items in state["workload"].tag_items().items()}
    honest_entries = [ClickEntry(e.author, e.seq, e.query, tuple(item_map[i] for i in e.shown),
                                 item_map[e.clicked], e.timestamp)
                      for e in sessions_to_entries(state["workload"].train)]
    region = SybilRegion(proc.peer_id, tuple(sybils), ())
    flood = flood_entries(region, spam, targets, tag_items, cfg, rng, honest_entries)
    key_of = dict(zip(sybils, keys))
    for entry in (e for e in flood if e.author == proc.peer_id):
        _call(ctx, proc, "click", query=" ".join(entry.query), item=entry.clicked, shown=list(entry.shown))
    frames = [encode(wire.WireClick.of(wire.sign_click(e, key_of[e.author].private_key))).hex()
              for e in flood if e.author != proc.peer_id]
    imported = 0
    for batch in _batches(frames, IMPORT_BATCH_CHARS):
        imported += _call(ctx, proc, "search.import", entries=batch)["entries_new"]
    return {"node": proc.name, "peer_id": proc.peer_id, "trusted_by": [h.name for h in trusting],
            "sybils": sybils, "spam_items": spam,
            "flood_entries": len(flood), "sybil_entries_imported": imported}


@step("rank_attack")
def rank_attack(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Sybil regions behind the attacker nodes, spam items and a clicklog flood; wait for it to spread."""
    state = _state(ctx)
    cfg = AttackSettings(
        n_attackers=len(spec["attackers"]),
        sybils_per_attacker=int(spec.get("sybils_per_attacker", 5)),
        honest_edges_per_attacker=int(spec.get("honest_edges_per_attacker", 1)),
        honest_edge_weight=float(spec.get("honest_edge_weight", 1.0)),
        entries_per_identity=int(spec.get("entries_per_identity", 40)),
        mimic_per_identity=int(spec.get("mimic_per_identity", 10)),
        target_queries=int(spec.get("target_queries", 8)),
    )
    cfg.validate()
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    regions = [_attack_one(ctx, state, ctx.devnet.node(a), i, cfg, spec, rng) for i, a in enumerate(spec["attackers"])]
    state["attack"] = {"regions": regions}
    expected = len(state["workload"].train) + sum(r["flood_entries"] for r in regions)
    spread_s = _wait(ctx, spec, "flood entries on every honest node",
                     lambda: all(_call(ctx, p, "search.stats")["entries"] >= expected for p in state["honest"]))
    return {"attackers": [r["node"] for r in regions], "sybils": sum(len(r["sybils"]) for r in regions),
            "flood_entries": sum(r["flood_entries"] for r in regions), "expected_entries": expected,
            "spread_s": spread_s}


def _plot(ctx: RunContext, before: dict, after: dict) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    positions = np.arange(2)
    for offset, (variant, colour) in zip((-0.2, 0.2), (("vanilla", "tab:red"), ("weighted", "tab:blue"))):
        left.bar(positions + offset, [before[f"mrr_{variant}"], after[f"mrr_{variant}"]], 0.4, color=colour,
                 label=f"{variant} G-Rank")
    left.set(xticks=positions, xticklabels=["no attack", "Sybil flood"], ylabel="MRR (held-out clicks)",
             title="search quality")
    left.legend()
    gains, views = after.get("reputation_gain_per_view", []), after.get("gain_views", [])
    right.bar(views, gains, color="tab:purple")
    right.set(xlabel="honest node (view)", ylabel="Σ Sybil rep / attacker rep", title="MeritRank reputation gain")
    fig.tight_layout()
    path = ctx.devnet.root / "rank.png"
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    return path.name


@step("rank_report")
def rank_report(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Compare two ``rank_eval`` labels; plot; check weighted keeps ≥ 90 % and vanilla drops."""
    state = _state(ctx)
    before, after = state["eval"][spec.get("before", "before")], state["eval"][spec.get("after", "after")]
    keep = float(spec.get("weighted_keep", WEIGHTED_KEEP))
    result = {
        "mrr_honest": before["mrr_vanilla"], "mrr_honest_weighted": before["mrr_weighted"],
        "mrr_attack_vanilla": after["mrr_vanilla"], "mrr_attack_weighted": after["mrr_weighted"],
        "weighted_vs_honest": after["mrr_weighted"] / before["mrr_vanilla"],
        "weighted_vs_honest_weighted": after["mrr_weighted"] / before["mrr_weighted"],
        "vanilla_vs_honest": after["mrr_vanilla"] / before["mrr_vanilla"],
        "reputation_gain": after.get("reputation_gain"),
        "reputation_gain_by_view_kind": after.get("reputation_gain_by_view_kind"),
        "attacker_reputation_share": after.get("attacker_reputation_share"),
        "sybil_reputation_share": after.get("sybil_reputation_share"),
        "plots": [_plot(ctx, before, after)],
    }
    result["checks"] = {
        "weighted_within_10pct": result["weighted_vs_honest"] >= keep,
        "vanilla_drops": result["mrr_attack_vanilla"] < result["mrr_honest"],
    }
    return result


def _cli(proc: NodeProc, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "node", *args, "--home", proc.home, "--json"],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if done.returncode != 0:
        raise ScenarioError(f"plexus {' '.join(args)} on {proc.name} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


@step("rank_cli")
def rank_cli(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """`plexus search` and `plexus rank` through the real CLI on one honest node."""
    state = _state(ctx)
    proc = state["honest"][int(spec.get("node", 0))]
    query = " ".join(state["workload"].heldout[0].query)
    found = _cli(proc, "search", query, "--k", "5")
    ranked = _cli(proc, "rank", "--k", "5")
    return {"node": proc.name, "query": query, "search_results": len(found["results"]),
            "search_weighted": found["weighted"], "rank_rows": len(ranked["rows"]),
            "checks": {"cli_search": bool(found["results"]) and found["weighted"], "cli_rank": bool(ranked["rows"])}}
