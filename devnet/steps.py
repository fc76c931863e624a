"""The core scenario steps: gossip load, kill -9, restart, and the checks around them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from devnet.launcher import DevnetError, NodeProc
from devnet.scenario import RunContext, ScenarioError, step
from node.client import ControlError

POLL_S = 0.2
DEFAULT_TOPIC = "news"
DEFAULT_RATE_PER_S = 20.0
MS = 1000.0


def _status(ctx: RunContext, proc: NodeProc) -> dict:
    return ctx.devnet.client(proc.name).call("status")


def wait_for_mesh(ctx: RunContext, procs: list[NodeProc], topic: str, deadline: float) -> None:
    """Wait until every node has at least one peer in the topic's mesh."""
    full = f"plexus/{ctx.devnet.network}/{topic}"
    pending = list(procs)
    while pending:
        for proc in list(pending):
            ctx.devnet.client(proc.name).call("gossip.join", topic=topic)
            if _status(ctx, proc)["mesh"].get(full, 0) >= 1:
                pending.remove(proc)
        if pending and time.monotonic() > deadline:
            raise ScenarioError(f"mesh of {topic} not formed on {', '.join(p.name for p in pending)}")
        if pending:
            time.sleep(POLL_S)


def _received(ctx: RunContext, proc: NodeProc, topic: str, label: str) -> dict[str, dict]:
    rows = ctx.devnet.client(proc.name).call("gossip.received", topic=topic)["messages"]
    return {row["text"]: row for row in rows if row["text"].startswith(label + ":")}


@step("gossip")
def gossip(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Publish ``messages`` notes round-robin from the live nodes; measure delivery and latency."""
    topic = spec.get("topic", DEFAULT_TOPIC)
    count = int(spec["messages"])
    rate = float(spec.get("rate", DEFAULT_RATE_PER_S))
    label = spec.get("label", f"gossip{ctx.step_index}")
    deadline = ctx.deadline(spec)
    live = ctx.live_nodes()
    wait_for_mesh(ctx, live, topic, deadline)
    publisher_of: dict[str, str] = {}
    started = time.monotonic()
    for index in range(count):
        proc = live[index % len(live)]
        text = f"{label}:{index}"
        ctx.devnet.client(proc.name).call("gossip.publish", topic=topic, text=text)
        publisher_of[text] = proc.name
        delay = started + (index + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if index % 50 == 49:
            ctx.progress(f"  {label}: published {index + 1}/{count}")
    expected = {p.name: {t for t, pub in publisher_of.items() if pub != p.name} for p in live}
    received: dict[str, dict[str, dict]] = {}
    while True:
        received = {p.name: _received(ctx, p, topic, label) for p in live}
        if all(expected[n] <= set(received[n]) for n in expected) or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    latencies = [
        (row["received_at"] - row["sent_at"]) * MS
        for name, rows in received.items()
        for text, row in rows.items()
        if text in expected[name]
    ]
    delivered = {n: len(expected[n] & set(received[n])) for n in expected}
    wanted = sum(len(v) for v in expected.values())
    ratio = sum(delivered.values()) / wanted if wanted else 1.0
    return {
        "checks": {"delivery": ratio >= float(spec.get("expect_delivery_ratio", 1.0))},
        "label": label,
        "topic": topic,
        "messages": count,
        "publishers": [p.name for p in live],
        "delivered": delivered,
        "expected": {n: len(v) for n, v in expected.items()},
        "delivery_ratio": ratio,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else None,
        "latencies_ms": [round(x, 2) for x in latencies],
    }


@step("kill")
def kill(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """kill -9 one node; remember what it had stored, to check it after restart."""
    proc = ctx.devnet.node(spec["node"])
    topic = spec.get("topic", DEFAULT_TOPIC)
    stored = ctx.devnet.client(proc.name).call("gossip.received", topic=topic)["messages"]
    ctx.devnet.kill(proc.name)
    ctx.report.setdefault("_killed", {})[proc.name] = {"peer_id": proc.peer_id, "stored": len(stored), "topic": topic}
    return {"node": proc.name, "pid": proc.pid, "stored_before_kill": len(stored)}


@step("restart")
def restart(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Restart a killed node with the same home; check identity and stored state came back."""
    proc = ctx.devnet.node(spec["node"])
    before = ctx.report.get("_killed", {}).get(proc.name)
    started = time.monotonic()
    try:
        ctx.devnet.restart(proc.name)
    except DevnetError as exc:
        raise ScenarioError(str(exc)) from exc
    status = _status(ctx, proc)
    result: dict[str, Any] = {"node": proc.name, "pid": proc.pid, "ready_s": round(time.monotonic() - started, 2),
                              "peer_id": status["peer_id"]}
    if before is not None:
        stored = ctx.devnet.client(proc.name).call("gossip.received", topic=before["topic"])["messages"]
        result["same_peer_id"] = status["peer_id"] == before["peer_id"]
        result["stored_after_restart"] = len(stored)
        result["state_kept"] = len(stored) >= before["stored"]
        result["checks"] = {"same_peer_id": result["same_peer_id"], "state_kept": result["state_kept"]}
    wait_for_mesh(ctx, [proc], spec.get("topic", DEFAULT_TOPIC), ctx.deadline(spec))
    result["rejoined_s"] = round(time.monotonic() - started, 2)
    return result


@step("wait_connected")
def wait_connected(ctx: RunContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Wait until every live node has at least ``min_peers`` connections."""
    need = int(spec.get("min_peers", 1))
    deadline = ctx.deadline(spec)
    while True:
        counts = {}
        for proc in ctx.live_nodes():
            try:
                counts[proc.name] = _status(ctx, proc)["connected"]
            except ControlError:
                counts[proc.name] = 0
        if all(c >= need for c in counts.values()):
            return {"connected": counts}
        if time.monotonic() > deadline:
            raise ScenarioError(f"nodes below {need} peers: {counts}")
        time.sleep(POLL_S)
