"""Gossip benchmark: Plexus's tuned stack beside py-libp2p's defaults, measured in the same run.

Two setups, each run twice (ours, then ``baseline_*`` with ``--libp2p-defaults``):
- ``in_process``: 50 real nodes in one trio loop on 127.0.0.1, random topology, 2 msg/s;
- ``processes``: 10 daemon processes (the devnet launcher), 5 msg/s.
Prints one JSON object. ``--quick`` runs fewer messages and nodes (for a smoke check).

    .venv/bin/python benchmarks/gossip.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import trio

from devnet.launcher import Devnet
from devnet.scenario import RunContext, Scenario
from devnet.steps import gossip as gossip_step
from devnet.steps import wait_connected
from node.harness import edges_for, running_nodes, wait_for_mesh
from protocols.codec import decode
from protocols.gossip import GossipNote, topic_name

MB = 1024 * 1024
MS = 1000.0
TOPIC = "news"
DRAIN_TIMEOUT_S = 15.0
DRAIN_POLL_S = 0.5
CORE_SERVICES = ("gossip", "membership", "query")
MESH_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 90.0
SETTLE_DRAIN_S = 5.0


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


async def _membership_settled(nodes) -> float | None:
    """Seconds until every node has sent its first signed peer record and ``SETTLE_DRAIN_S`` more have
    passed for it to spread (first records are spread over ``announce_interval_s``), so that the
    measurement sees the steady state; None on timeout."""
    started = time.monotonic()
    while time.monotonic() < started + SETTLE_TIMEOUT_S:
        if all(n.service("membership").announcements >= 1 for n in nodes):
            await trio.sleep(SETTLE_DRAIN_S)
            return round(time.monotonic() - started, 2)
        await trio.sleep(DRAIN_POLL_S)
    return None


async def _in_process(count: int, messages: int, rate: float, defaults: bool, root: Path) -> dict:
    def configure(_i, settings):
        return dataclasses.replace(settings, libp2p_defaults=defaults, services=CORE_SERVICES)

    async with running_nodes(count, root, configure) as nodes:
        connect_ms = []
        for a, b in edges_for(count, "random", degree=2, seed=1):
            started = time.perf_counter()
            await nodes[a].dial(nodes[b].addrs()[0])
            connect_ms.append((time.perf_counter() - started) * MS)
        topic = topic_name("devnet", TOPIC)
        try:
            await wait_for_mesh(nodes, topic, timeout_s=MESH_TIMEOUT_S)
            mesh_formed = True
        except TimeoutError:
            mesh_formed = False
        settled_s = await _membership_settled(nodes)
        cpu0 = time.process_time()
        sent = {}
        started = time.monotonic()
        for index in range(messages):
            text = f"m{index}"
            await nodes[index % count].services[0]._cmd_publish({"topic": TOPIC, "text": text})
            sent[text] = index % count
            await trio.sleep(max(0.0, started + (index + 1) / rate - time.monotonic()))

        wanted = messages * (count - 1)

        def all_delivered() -> bool:
            stored = sum(n.store.query("SELECT COUNT(*) FROM gossip_messages WHERE topic=?", (topic,))[0][0]
                         for n in nodes)
            return stored >= wanted + messages  # every node also stores its own notes

        deadline = trio.current_time() + DRAIN_TIMEOUT_S
        while not all_delivered() and trio.current_time() < deadline:
            await trio.sleep(DRAIN_POLL_S)
        cpu_ms = (time.process_time() - cpu0) * MS
        latencies = []
        for i, node in enumerate(nodes):
            for _author, received_at, payload in node.store.gossip_since(topic):
                note = decode(payload, expect=GossipNote)
                if sent.get(note.text) not in (None, i):
                    latencies.append((received_at - note.sent_at) * MS)
        delivered = len(latencies)
        return {
            "nodes": count,
            "messages": messages,
            "rate_per_s": rate,
            "mesh_formed": mesh_formed,
            "membership_settled_s": settled_s,
            "delivery_ratio": round(delivered / wanted, 4),
            "latency_ms_p50": _pct(latencies, 50),
            "latency_ms_p99": _pct(latencies, 99),
            "cpu_ms_per_delivery": round(cpu_ms / max(1, delivered), 3),
            "rss_mb_per_process": round(psutil.Process().memory_info().rss / MB, 1),
            "rss_mb_per_node": round(psutil.Process().memory_info().rss / MB / count, 2),
            "connect_ms_p50": _pct(connect_ms, 50),
        }


def _processes(count: int, messages: int, rate: float, defaults: bool, root: Path) -> dict:
    devnet = Devnet(root)
    services = [arg for name in CORE_SERVICES for arg in ("--service", name)]
    extra = [services + (["--libp2p-defaults"] if defaults else []) for _ in range(count)]
    try:
        devnet.up(count, extra)
        scenario = Scenario(name="bench", nodes=count, steps=(), step_timeout_s=120.0)
        ctx = RunContext(devnet, scenario, {}, progress=lambda m: print(m, file=sys.stderr))
        wait_connected(ctx, {"min_peers": 2})
        connect_ms = []
        for i in range(count):
            target = devnet.nodes[(i + count // 2) % count]
            connect_ms.append(devnet.client(i).call("dial", addr=target.addr, reconnect=True)["ms"])
        procs = [psutil.Process(n.pid) for n in devnet.nodes]
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        try:
            result = gossip_step(ctx, {"messages": messages, "rate": rate, "label": "bench", "timeout_s": 60})
        except Exception as exc:  # noqa: BLE001 - a baseline may not form a mesh at all: report it
            result = {"delivery_ratio": 0.0, "error": str(exc), "latencies_ms": [], "delivered": {}}
        cpu_ms = (sum(p.cpu_times().user + p.cpu_times().system for p in procs) - cpu0) * MS
        delivered = sum(result["delivered"].values())
        rss = [p.memory_info().rss / MB for p in procs]
        return {
            "nodes": count,
            "messages": messages,
            "rate_per_s": rate,
            "delivery_ratio": round(result["delivery_ratio"], 4),
            "latency_ms_p50": _pct(result["latencies_ms"], 50),
            "latency_ms_p99": _pct(result["latencies_ms"], 99),
            "cpu_ms_per_delivery": round(cpu_ms / max(1, delivered), 3),
            "rss_mb_per_process": round(float(np.mean(rss)), 1),
            "connect_ms_p50": _pct(connect_ms, 50),
            **({"error": result["error"]} if "error" in result else {}),
        }
    finally:
        devnet.down()


def side_by_side(ours: dict, baseline: dict) -> dict:
    """Our figures with the baseline's beside them as baseline_<field>."""
    merged = dict(ours)
    for key, value in baseline.items():
        if key not in ("nodes", "messages", "rate_per_s"):
            merged[f"baseline_{key}"] = value
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer nodes and messages")
    args = parser.parse_args()
    in_nodes, in_msgs = (10, 10) if args.quick else (50, 60)
    proc_nodes, proc_msgs = (4, 20) if args.quick else (10, 100)
    with tempfile.TemporaryDirectory(prefix="plxb") as tmp:
        root = Path(tmp)
        report = {"load_avg_start": os.getloadavg()[0]}
        ours = trio.run(_in_process, in_nodes, in_msgs, 2.0, False, root / "a")
        base = trio.run(_in_process, in_nodes, in_msgs, 2.0, True, root / "b")
        report["in_process"] = side_by_side(ours, base)
        ours = _processes(proc_nodes, proc_msgs, 5.0, False, root / "c")
        base = _processes(proc_nodes, proc_msgs, 5.0, True, root / "d")
        report["processes"] = side_by_side(ours, base)
        report["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
