"""Devnet step ``pader``: encrypted PADER over seller and user-host daemons vs plaintext references.

The sellers (``--opt pader.role=seller``) each host the items ``j % n_sellers == index`` of a dataset
slice; the user hosts (``--opt pader.role=user``) each host the users ``i % n_hosts == index``, every user
in its own ``UserRole``. All nodes and this step prepare the same slice (``node.services.pader_data``),
so the plaintext SoReg, MF and the baselines computed here in-process start from the same split, initial
vectors and epoch orders. Reports RMSE per epoch, time, bytes, a PNG plot, and checks that PADER ends
within ``tolerance`` of plaintext SoReg and that ``recommend`` answers top-k items with scores.

The sellers decrypt item gradients only when every pending slot of a ciphertext block holds ``n_agg``
distinct users (``flush_policy="per_item"``), so item vectors move later than in the reference SoReg
(which applies an owner's sum every ``n_agg`` iterations). ``curve_soreg_per_item`` is plaintext SoReg
with that same schedule: the gap to it is what encryption and the distributed order cost, the gap to
``curve_soreg`` adds what the privacy schedule costs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from devnet.scenario import RunContext, ScenarioError, step
from node.client import ControlError
from node.services import pader_data as data
from recsys import baselines
from recsys.metrics import rmse
from crypto.packing import Layout
from recsys.soreg import SoRegModel, apply_item_gradients, mf_settings

POLL_S = 0.5
DEFAULT_TOLERANCE = 0.01
DEFAULT_K = 5
PLOT_NAME = "pader_rmse.png"


def _poll(ctx: RunContext, deadline: float, what: str, ready) -> Any:
    while True:
        try:
            value = ready()
            if value:
                return value
        except ControlError:
            pass
        if time.monotonic() > deadline:
            raise ScenarioError(f"pader: timed out waiting for {what}")
        time.sleep(POLL_S)


def reference_curves(prepared: data.Prepared, epochs: int) -> dict[str, Any]:
    """Plaintext SoReg and MF (same init, plans and n_agg as the nodes) and the baselines, per epoch."""
    test = prepared.test
    active = np.isin(test.users, prepared.model.active_users)
    users, items, truth = test.users[active], test.items[active], test.scores[active]
    out: dict[str, Any] = {"n_test": int(active.sum())}
    for name, soreg in (("soreg", prepared.model.settings), ("mf", mf_settings(prepared.model.settings))):
        m0 = prepared.model
        model = SoRegModel(m0.data, soreg, m0.U.copy(), m0.V.copy(), m0.item_owner)
        rng = prepared.order_rng()
        curve = []
        for _ in range(epochs):
            model.run_plans(model.plan_epoch(rng), n_agg=data.N_AGG)
            curve.append(round(rmse(model.predict(users, items), truth), 4))
        out[f"curve_{name}"] = curve
    for name, fitted in (("global_mean", baselines.global_mean(prepared.train)), ("bias", baselines.biases(prepared.train))):
        out[f"rmse_{name}"] = round(rmse(fitted.predict(users, items), truth), 4)
    return out


def per_item_soreg_curve(prepared: data.Prepared, epochs: int, key_bits: int) -> list[float]:
    """Plaintext SoReg with the sellers' privacy schedule (``flush_policy="per_item"``): a block of
    catalogue slots is applied once every item in it with pending gradients has ``n_agg`` distinct users.

    Separates what the encrypted run changes on purpose (when item vectors move) from encryption error.
    """
    m0 = prepared.model
    model = SoRegModel(m0.data, m0.settings, m0.U.copy(), m0.V.copy(), m0.item_owner)
    slots = Layout.for_key(key_bits, data.pader_settings().packing.item_layout_bits()).slots
    position = np.zeros(len(m0.item_owner), np.int64)
    for owner in np.unique(m0.item_owner):
        mine = np.flatnonzero(m0.item_owner == owner)
        position[mine] = np.arange(len(mine))
    block = m0.item_owner * len(m0.item_owner) + position // slots
    pending = np.zeros_like(model.V)
    users: dict[int, set[int]] = {}
    test, rng, curve = prepared.test, prepared.order_rng(), []
    active = np.isin(test.users, m0.active_users)
    for _ in range(epochs):
        for plan in model.plan_epoch(rng):
            st = model.step(plan)
            model.U[plan.user] = st.new_u
            np.add.at(pending, st.items, st.item_gradients)
            for j in st.items.tolist():
                users.setdefault(j, set()).add(plan.user)
            for b in set(block[st.items].tolist()):
                members = [j for j in np.flatnonzero(block == b).tolist() if users.get(j)]
                if all(len(users[j]) >= data.N_AGG for j in members):
                    rows = np.array(members, np.int64)
                    model.V[rows] = apply_item_gradients(model.V[rows], pending[rows], m0.settings.lr,
                                                         m0.settings.lambda_v)
                    pending[rows] = 0.0
                    for j in members:
                        users.pop(j)
        curve.append(round(rmse(model.predict(test.users[active], test.items[active]), test.scores[active]), 4))
    return curve


def _plot(ctx: RunContext, curves: dict[str, Any], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(curves["curve_pader"]) + 1)
    for key, label in (("curve_pader", "PADER (encrypted, devnet)"), ("curve_soreg", "SoReg (plaintext)"),
                       ("curve_soreg_per_item", "SoReg, per-item flush (plaintext)"), ("curve_mf", "MF (plaintext)")):
        ax.plot(epochs, curves[key], marker="o", label=label)
    for key, label, style in (("rmse_global_mean", "global mean", ":"), ("rmse_bias", "user+item biases", "--")):
        ax.axhline(curves[key], linestyle=style, color="grey", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test RMSE")
    ax.set_title(title)
    ax.legend()
    path = ctx.devnet.root / PLOT_NAME
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _load(ctx: RunContext, sellers: list[str], hosts: list[str], spec: dict, deadline: float) -> dict:
    for name in sellers:
        _poll(ctx, deadline, f"seller key on {name}", lambda n=name: ctx.devnet.client(n).call("pader.key"))
    loaded = {}
    for index, name in enumerate(sellers):
        loaded[name] = ctx.devnet.client(name).call("pader.load", **spec, seller_index=index)
    host_ids = [ctx.devnet.node(h).peer_id for h in hosts]
    for index, name in enumerate(hosts):
        _poll(ctx, deadline, f"{len(sellers)} catalogues on {name}",
              lambda n=name: ctx.devnet.client(n).call("pader.status").get("sellers", 0) >= len(sellers))
        loaded[name] = ctx.devnet.client(name).call("pader.load", **spec, hosts=host_ids, host_index=index)
    topic = f"plexus/{ctx.devnet.network}/pader-friends"
    if len(hosts) > 1:
        for name in hosts:
            _poll(ctx, deadline, f"friend-share mesh on {name}",
                  lambda n=name: ctx.devnet.client(n).call("status")["mesh"].get(topic, 0) >= 1)
    return loaded


@step("pader")
def pader(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Train PADER on the devnet and compare it with the plaintext references (see the module docstring)."""
    deadline = ctx.deadline(spec)
    sellers, hosts = list(spec["sellers"]), list(spec["hosts"])
    epochs, k = int(spec.get("epochs", 2)), int(spec.get("k", DEFAULT_K))
    tolerance = float(spec.get("tolerance", DEFAULT_TOLERANCE))
    slice_args = {"dataset": spec.get("dataset", "filmtrust"), "users": int(spec.get("users", 0)),
                  "items": int(spec.get("items", 0)), "seed": int(spec.get("seed", 0)), "n_sellers": len(sellers)}
    ctx.progress(f"pader: preparing {slice_args['dataset']} ({slice_args['users'] or 'all'} users) in-process")
    prepared = data.prepare(data.SliceSpec.from_args(slice_args))
    loaded = _load(ctx, sellers, hosts, slice_args, deadline)
    started = time.monotonic()
    for name in hosts:
        ctx.devnet.client(name).call("pader.train", epochs=epochs)
    statuses = _poll(ctx, deadline, "training to finish", lambda: _finished(ctx, hosts, epochs))
    train_s = time.monotonic() - started
    curve = []
    for e in range(epochs):
        sse = sum(s["curve"][e]["sse"] for s in statuses.values())
        n = sum(s["curve"][e]["n"] for s in statuses.values())
        curve.append(round(float(np.sqrt(sse / n)), 4) if n else None)
    ctx.progress(f"pader: encrypted RMSE per epoch {curve} in {train_s:.1f} s; plaintext references")
    result: dict[str, Any] = {"dataset": prepared.dataset_used, "note": prepared.note,
                              "n_users": int(prepared.train.n_users), "n_items": int(prepared.train.n_items),
                              "n_train": len(prepared.train.ratings), "epochs": epochs,
                              "sellers": len(sellers), "hosts": len(hosts), "curve_pader": curve,
                              "train_s": round(train_s, 2)}
    result.update(reference_curves(prepared, epochs))
    result["curve_soreg_per_item"] = per_item_soreg_curve(prepared, epochs, int(spec.get("key_bits", 2048)))
    everyone = {**statuses, **{n: ctx.devnet.client(n).call("pader.status") for n in sellers}}
    result["bytes_sent"] = sum(s.get("bytes_sent", 0) for s in everyone.values())
    result["bytes_received"] = sum(s.get("bytes_received", 0) for s in everyone.values())
    result["iterations"] = sum(s["iterations"] for s in statuses.values())
    result["skipped_iterations"] = sum(s["skipped"] for s in statuses.values())
    result["epoch_s"] = [max(s["curve"][e]["seconds"] for s in statuses.values()) for e in range(epochs)]
    result["item_updates"] = sum(s["seller"]["updated_items"] for n, s in everyone.items() if n in sellers)
    rec = ctx.devnet.client(hosts[0]).call("recommend", k=k)
    result["recommend"] = rec
    result["rmse_pader"], result["rmse_soreg"] = curve[-1], result["curve_soreg"][-1]
    result["rmse_mf"] = result["curve_mf"][-1]
    result["plots"] = [_plot(ctx, result, f"PADER on {prepared.dataset_used} ({result['n_users']} users)")]
    gap = abs(result["rmse_pader"] - result["rmse_soreg"]) if curve[-1] is not None else float("inf")
    result["gap_pader_soreg"] = round(gap, 4)
    same = abs(result["rmse_pader"] - result["curve_soreg_per_item"][-1]) if curve[-1] is not None else float("inf")
    result["gap_pader_soreg_per_item"] = round(same, 4)
    result["checks"] = {
        "all_epochs_trained": all(s["epoch"] >= epochs for s in statuses.values()),
        f"pader_within_{tolerance}_of_soreg": gap <= tolerance,
        f"pader_within_{tolerance}_of_soreg_same_schedule": same <= tolerance,
        "recommend_top_k": len(rec["items"]) == k and all(isinstance(r["score"], float) for r in rec["items"]),
    }
    result["loaded"] = loaded
    return result


def _finished(ctx: RunContext, hosts: list[str], epochs: int) -> dict | None:
    statuses = {n: ctx.devnet.client(n).call("pader.status") for n in hosts}
    for name, status in statuses.items():
        if status.get("last_error") and not status["training"] and status["epoch"] < epochs:
            raise ScenarioError(f"pader: training on {name} stopped: {status['last_error']}")
    done = all(not s["training"] and s["epoch"] >= epochs for s in statuses.values())
    return statuses if done else None
