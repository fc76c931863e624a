"""Devnet steps for shared-seed SPSA: start and join a run, wait for rounds, and the report.

``spsa_report`` waits for the run to end, checks that every live node holds the same checksum,
draws each node's eval-loss curve (PNG), gives the bytes per update (payload vs wire) and compares
the devnet's final eval loss with single-node MeZO run in this process on the same model, data,
evaluation batches and number of samples.
"""

from __future__ import annotations

import time
from typing import Any

from devnet.scenario import RunContext, ScenarioError, step
from node.client import ControlError

POLL_S = 0.5
DEFAULT_START_DELAY_S = 12.0
"""Round 0 opens this long after the run is created (daemons import torch and load the corpus first)."""
WITHIN = 0.05
"""Allowed relative gap between the devnet's final eval loss and single-node MeZO's."""
MIN_DROP = 0.02
"""The final eval loss must be at least this fraction below the starting loss."""
FP32_BYTES = 4
SINGLE_PEER = b"single-node-mezo"
SINGLE_EVAL_POINTS = 5
"""Evaluations along the single-node MeZO curve (besides the start and the end)."""
FINISHED = ("done", "stopped", "failed")


def _status(ctx: RunContext, name: str) -> dict | None:
    try:
        return ctx.devnet.client(name).call("train.status")
    except ControlError:
        return None


def _wait(ctx: RunContext, spec: dict, what: str, condition) -> None:
    deadline = ctx.deadline(spec)
    while not condition():
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


@step("spsa_start")
def spsa_start(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """``creator`` creates run ``run``; every node in ``join`` joins it before round 0."""
    run, creator = spec["run"], spec.get("creator", "node0")
    args = {k: spec[k] for k in ("rounds", "round_s", "samples_per_round", "model") if k in spec}
    args["start_delay_s"] = float(spec.get("start_delay_s", DEFAULT_START_DELAY_S))
    created = ctx.devnet.client(creator).call("train.start", run=run, **args)
    joiners = list(spec.get("join", []))
    started = time.monotonic()
    for name in joiners:
        _wait(ctx, spec, f"{name} to hear of run {run}",
              lambda n=name: run in ((_status(ctx, n) or {}).get("known_runs") or []))
        ctx.devnet.client(name).call("train.start", run=run)
    announced_s = round(time.monotonic() - started, 2)
    participants = [creator] + joiners
    _wait(ctx, spec, "every participant to load the model and data",
          lambda: all((_status(ctx, n) or {}).get("state") not in (None, "loading") for n in participants))
    states = {n: _status(ctx, n)["state"] for n in participants}
    ctx.progress(f"  run {run}: {created['rounds']} rounds of {created['round_s']} s; participants "
                 f"{', '.join(participants)} ({states})")
    return {"run": run, "creator": creator, "joined": joiners, "rounds": created["rounds"],
            "round_s": created["round_s"], "creator_loaded_and_announced_s": announced_s,
            "all_loaded_s": round(time.monotonic() - started, 2), "states": states,
            "everyone_in_time": all(s == "waiting" for s in states.values())}


@step("spsa_wait_round")
def spsa_wait_round(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Wait until node ``node`` (default node0) reaches round ``round`` (or ``more`` rounds from now)."""
    name = spec.get("node", "node0")
    if "more" in spec:
        target = ((_status(ctx, name) or {}).get("round") or 0) + int(spec["more"])
    else:
        target = int(spec["round"])
    _wait(ctx, spec, f"{name} at round {target}", lambda: ((_status(ctx, name) or {}).get("round") or -1) >= target)
    return {"node": name, "round": target}


@step("spsa_join")
def spsa_join(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """A late joiner: ``node`` joins run ``run`` now and must catch up by a sync."""
    name, run = spec["node"], spec["run"]
    started = time.monotonic()
    reply = ctx.devnet.client(name).call("train.start", run=run)
    _wait(ctx, spec, f"{name} to catch up", lambda: ((_status(ctx, name) or {}).get("syncs") or 0) >= 1)
    status = _status(ctx, name)
    return {"node": name, "joined": bool(reply.get("joined")), "caught_up_s": round(time.monotonic() - started, 2),
            "at_round": status["round"], "checks": {"joined_existing_run": bool(reply.get("joined"))}}


def _curves_plot(ctx: RunContext, curves: dict[str, list], single: list, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in sorted(curves.items()):
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label=name)
    if single:
        ax.plot([c[0] for c in single], [c[1] for c in single], "k--", label="single-node MeZO (equal samples)")
    ax.set_xlabel("round")
    ax.set_ylabel("eval loss (nats/byte)")
    ax.set_title("shared-seed SPSA: eval loss per node")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def single_node_mezo(announcement: dict, samples_per_round: list[int]) -> list[list[float]]:
    """Single-node MeZO with the run's model, data and eval batches, ``samples_per_round[r]`` steps in round r.

    Steps take the training shards in turn (what the devnet's peers hold together), float gradients
    (no codec). Returns ``[round, eval loss]`` after each round, starting with round -1 (the initial model).
    """
    import torch

    from learning.spsa import apply_update, derive_seed, projected_gradient
    from node.services.train import CACHE_DIR
    from node.services.train_state import EvalSpec, RunData, build_model, run_corpus
    from protocols.spsa import RunAnnouncement

    torch.set_num_threads(1)
    ann = RunAnnouncement(**announcement)
    model, tokenizer = build_model(ann.model)
    split = run_corpus(ann, CACHE_DIR)
    shards = [RunData(ann, i, CACHE_DIR, tokenizer, EvalSpec(), split) for i in range(ann.n_shards)]
    evaluate = shards[0]

    def eval_loss() -> float:
        with torch.no_grad():
            return sum(float(evaluate.loss(model, b)) for b in evaluate.eval) / len(evaluate.eval)

    curve, step_no = [[-1, round(eval_loss(), 5)]], 0
    every = max(1, len(samples_per_round) // SINGLE_EVAL_POINTS)
    for round_, count in enumerate(samples_per_round):
        for _ in range(count):
            data = shards[step_no % ann.n_shards]
            batch = data.batch(ann.run + "/single", step_no, SINGLE_PEER, 0)
            seed = derive_seed(ann.run + "/single", step_no, SINGLE_PEER, 0)
            with torch.no_grad():
                g = projected_gradient(model, lambda m, b=batch: data.loss(m, b), seed, ann.eps, ann.perturbation)
                apply_update(model, seed, g, ann.lr, ann.weight_decay, 1.0, ann.perturbation)
            step_no += 1
        if round_ % every == 0 or round_ == len(samples_per_round) - 1:
            curve.append([round_, round(eval_loss(), 5)])
    return curve


@step("spsa_report")
def spsa_report(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Wait for the run to end on every live participant, then check and plot it."""
    names = [p.name for p in ctx.live_nodes()]
    _wait(ctx, spec, "every participant to finish",
          lambda: all((s := _status(ctx, n)) is None or s["run"] is None or s["state"] in FINISHED for n in names))
    statuses = {n: s for n in names if (s := _status(ctx, n)) is not None and s["run"] is not None}
    if not statuses:
        raise ScenarioError("no node took part in a run")
    checksums = {n: s.get("checksum") for n, s in statuses.items()}
    curves = {n: s.get("curve", []) for n, s in statuses.items()}
    full = max(statuses.values(), key=lambda s: len(s.get("applied_per_round", [])))
    ctx.progress(f"  spsa: single-node MeZO on {sum(full['applied_per_round'])} samples, in process")
    started = time.monotonic()
    single = single_node_mezo(full["announcement"], full["applied_per_round"])
    single_s = time.monotonic() - started
    plot = ctx.devnet.root / "spsa_eval_loss.png"
    _curves_plot(ctx, curves, single, plot)
    start_loss = single[0][1]
    finals = {n: c[-1][1] for n, c in curves.items() if c}
    devnet_final = sum(finals.values()) / len(finals)
    single_final = single[-1][1]
    wire = {n: s.get("wire_bytes") for n, s in statuses.items()}
    payload = {n: s.get("payload_bytes") for n, s in statuses.items()}
    params = int(full.get("params", 0))
    one_wire = max((w for w in wire.values() if w), default=None)
    return {
        "checks": {
            "same_checksum": len(set(checksums.values())) == 1 and None not in checksums.values(),
            "all_done": all(s["state"] == "done" for s in statuses.values()),
            "learns": devnet_final < (1 - MIN_DROP) * start_loss,
            "within_5pct_of_single_mezo": abs(devnet_final - single_final) <= WITHIN * single_final,
            "update_le_256_bytes": one_wire is not None and one_wire <= 256,
        },
        "checksums": checksums,
        "rounds": {n: s["round"] for n, s in statuses.items()},
        "syncs": {n: s.get("syncs", 0) for n, s in statuses.items()},
        "divergences": {n: s.get("divergences", 0) for n, s in statuses.items()},
        "start_eval_loss": start_loss,
        "final_eval_loss": finals,
        "devnet_final_eval_loss": round(devnet_final, 5),
        "single_mezo_final_eval_loss": single_final,
        "single_mezo_samples": sum(full["applied_per_round"]),
        "single_mezo_s": round(single_s, 1),
        "relative_gap": round(abs(devnet_final - single_final) / single_final, 5),
        "payload_bytes_per_update": payload,
        "wire_bytes_per_update": wire,
        "fp32_gradient_bytes": FP32_BYTES * params if params else None,
        "ratio_fp32_to_wire": round(FP32_BYTES * params / one_wire, 1) if params and one_wire else None,
        "curves": curves,
        "single_mezo_curve": single,
        "plots": [plot.name],
    }
