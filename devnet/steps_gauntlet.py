"""Devnet steps for Gauntlet scoring: configure, run a scored fine-tuning run, and the report.

``gauntlet_run`` starts a run (as ``spsa_start`` does), waits for its end and keeps what every node
says about it: the combined scores of an honest observer per round, the weights every replica
applied, the eval loss. ``gauntlet_report`` compares a weighted with an unweighted run, finds per
adversary kind the first round after which every honest peer's combined final score stays above
the adversary's, and plots the ratings over rounds (PNG).
"""

from __future__ import annotations

import time
from typing import Any

from libp2p.peer.id import ID

from devnet.scenario import RunContext, ScenarioError, step
from devnet.steps_spsa import FINISHED, _status, _wait, spsa_start

ADVERSARY_FLAG = "--adversary"
"""The `plexus run` flag that makes a node an adversary."""
HONEST = "honest"
TAIL_ROUNDS = 5
"""Adversaries' weight share is averaged over this many last rounds."""
MAX_ADVERSARY_SHARE = 0.05
"""Done when, after separation, the adversaries hold at most this share of the aggregation weight."""
SEPARATION_LIMITS = {"freerider": 30, "noise": 30, "copycat": 30, "stale": 30, "lazy": 60}
"""Rounds within which each kind must be separated (issue 6)."""
COLOURS = {HONEST: "tab:green", "freerider": "tab:grey", "noise": "tab:red", "copycat": "tab:purple",
           "stale": "tab:orange", "lazy": "tab:brown"}


def kinds(ctx: RunContext) -> dict[str, str]:
    """Node name → behaviour, from the scenario's per-node arguments."""
    out = {}
    for index in range(ctx.scenario.nodes):
        args = ctx.scenario.node_args.get(index, [])
        kind = args[args.index(ADVERSARY_FLAG) + 1] if ADVERSARY_FLAG in args else HONEST
        out[f"node{index}"] = kind
    return out


def _hex(ctx: RunContext, name: str) -> str:
    return ID.from_base58(ctx.devnet.node(name).peer_id).to_bytes().hex()


@step("gauntlet_configure")
def gauntlet_configure(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Set ``weigh`` (and ``enabled``) on every live node, between runs."""
    args = {k: bool(spec[k]) for k in ("weigh", "enabled") if k in spec}
    answers = {p.name: ctx.devnet.client(p.name).call("gauntlet.configure", **args) for p in ctx.live_nodes()}
    return {"configured": answers}


@step("gauntlet_run")
def gauntlet_run(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Start run ``run`` with every live node, wait for its end, keep scores, weights and losses."""
    names = [p.name for p in ctx.live_nodes()]
    creator = spec.get("creator", names[0])
    started = spsa_start(ctx, {**spec, "creator": creator, "join": [n for n in names if n != creator]})
    ctx.progress(f"  gauntlet: run {spec['run']} started; waiting for {started['rounds']} rounds")
    t0 = time.monotonic()
    _wait(ctx, spec, f"run {spec['run']} to finish",
          lambda: all((s := _status(ctx, n)) is None or s["state"] in FINISHED for n in names))
    statuses = {n: _status(ctx, n) for n in names}
    observer = spec.get("observer", next(n for n, k in kinds(ctx).items() if k == HONEST))
    scores = ctx.devnet.client(observer).call("gauntlet.scores", history=True)
    label = spec.get("label", spec["run"])
    kept = {"observer": observer, "history": scores.get("history", []), "peers": scores["peers"],
            "statuses": statuses, "kinds": kinds(ctx), "ids": {n: _hex(ctx, n) for n in names}}
    ctx.report.setdefault("_gauntlet", {})[label] = kept
    finals = {n: (s or {}).get("eval_loss") for n, s in statuses.items()}
    checksums = {n: (s or {}).get("checksum") for n, s in statuses.items()}
    return {"label": label, "run_s": round(time.monotonic() - t0, 1), "eval_loss": finals,
            "checksums": checksums, "weigh": scores.get("weigh"),
            "checks": {"same_checksum": len(set(checksums.values())) == 1}}


def separation_rounds(history: list[dict], ids: dict[str, str], kind_of: dict[str, str]) -> dict[str, int | None]:
    """Per adversary node: first round after which every honest peer's combined score stays above it."""
    honest = [ids[n] for n, k in kind_of.items() if k == HONEST and n in ids]
    out: dict[str, int | None] = {}
    for name, kind in kind_of.items():
        if kind == HONEST or name not in ids:
            continue
        adversary, first = ids[name], None
        for entry in history:
            combined = entry["combined"]
            above = all(combined.get(h, 0.0) > combined.get(adversary, 0.0) for h in honest)
            if above and first is None:
                first = entry["round"]
            elif not above:
                first = None
        out[f"{name} ({kind})"] = first
    return out


def adversary_share(history: list[dict], ids: dict[str, str], kind_of: dict[str, str]) -> float | None:
    """Mean share of the applied weight held by adversaries over the last rounds with weights."""
    adversaries = {ids[n] for n, k in kind_of.items() if k != HONEST and n in ids}
    shares = []
    for entry in [e for e in history if e.get("weights")][-TAIL_ROUNDS:]:
        total = sum(entry["weights"].values())
        if total > 0:
            shares.append(sum(w for p, w in entry["weights"].items() if p in adversaries) / total)
    return sum(shares) / len(shares) if shares else None


def _plot(kept: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history, ids, kind_of = kept["history"], kept["ids"], kept["kinds"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for name, peer in sorted(ids.items()):
        kind = kind_of.get(name, HONEST)
        rounds = [e["round"] for e in history]
        style = {"color": COLOURS.get(kind, "k"), "label": f"{name} ({kind})", "linewidth": 1.2}
        top.plot(rounds, [e["combined"].get(peer, 0.0) for e in history], **style)
        bottom.plot(rounds, [e["ordinal"].get(peer, float("nan")) for e in history], **style)
    top.set_ylabel("combined final score")
    top.set_title(f"Gauntlet ratings over rounds (observer {kept['observer']})")
    bottom.set_ylabel("ordinal μ − 3σ (observer's view)")
    bottom.set_xlabel("round")
    top.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@step("gauntlet_report")
def gauntlet_report(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Separation per adversary, final weights, adversaries' share, loss weighted vs unweighted, plot."""
    runs = ctx.report.get("_gauntlet", {})
    weighted = runs.get(spec.get("weighted", "weighted"))
    if weighted is None:
        raise ScenarioError("gauntlet_report needs a gauntlet_run labelled 'weighted' first")
    unweighted = runs.get(spec.get("unweighted", "unweighted"))
    ids, kind_of, history = weighted["ids"], weighted["kinds"], weighted["history"]
    separation = separation_rounds(history, ids, kind_of)
    share = adversary_share(history, ids, kind_of)
    plot = ctx.devnet.root / "gauntlet_ratings.png"
    _plot(weighted, plot)
    last = next((e["weights"] for e in reversed(history) if e.get("weights")), {}) or {}
    by_hex = {h: n for n, h in ids.items()}
    final_weights = {f"{by_hex.get(p, p[:12])} ({kind_of.get(by_hex.get(p, ''), '?')})": round(w, 4)
                     for p, w in sorted(last.items(), key=lambda pw: -pw[1])}

    def loss(kept):
        if kept is None:
            return None
        values = [s.get("eval_loss") for s in kept["statuses"].values() if s and s.get("eval_loss") is not None]
        return sum(values) / len(values) if values else None

    loss_w, loss_u = loss(weighted), loss(unweighted)
    checks = {
        "every_adversary_separated": all(r is not None for r in separation.values()),
        "separated_within_limits": all(
            r is not None and r <= SEPARATION_LIMITS.get(name.split("(")[-1].rstrip(")"), 30)
            for name, r in separation.items()),
        "adversary_share_le_5pct": share is not None and share <= MAX_ADVERSARY_SHARE,
    }
    if loss_u is not None:
        checks["weighting_pays"] = loss_w is not None and loss_w < loss_u
    return {
        "checks": checks,
        "separation_round": separation,
        "adversary_weight_share_last_rounds": share,
        "final_weights": final_weights,
        "eval_loss_weighted": loss_w,
        "eval_loss_unweighted": loss_u,
        "rounds_scored": len(history),
        "observer": weighted["observer"],
        "plots": [plot.name],
    }
