"""Run a scenario end to end: start the nodes, run each step, always stop them, write the report."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import importlib
import pkgutil

import devnet
from devnet.launcher import Devnet
from devnet.report import write_report
from devnet.scenario import STEPS, RunContext, Scenario, ScenarioError, load_scenario


def load_steps() -> None:
    """Import every devnet/steps*.py module: each registers its steps with @step."""
    for module in pkgutil.iter_modules(devnet.__path__):
        if module.name.startswith("steps"):
            importlib.import_module(f"devnet.{module.name}")


def run_scenario(path: Path, root: Path, progress: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """Run the scenario at ``path`` in devnet dir ``root``; returns (report path, report)."""
    load_steps()
    scenario = load_scenario(path)
    devnet = Devnet(root)
    report: dict[str, Any] = {"scenario": scenario.name, "nodes": scenario.nodes, "steps": [], "ok": False}
    started = time.monotonic()
    progress(f"devnet: starting {scenario.nodes} nodes in {devnet.root}")
    try:
        devnet.up(scenario.nodes, [scenario.node_args.get(i, []) for i in range(scenario.nodes)])
        report["startup_s"] = round(time.monotonic() - started, 2)
        progress(f"devnet: {scenario.nodes} nodes ready in {report['startup_s']} s")
        ctx = RunContext(devnet, scenario, report, progress)
        for index, spec in enumerate(scenario.steps):
            ctx.step_index = index
            _run_step(ctx, index, spec)
        report["ok"] = all(s["ok"] for s in report["steps"])
    except Exception as exc:  # noqa: BLE001 - the report must say what failed, the nodes must stop
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["traceback"] = traceback.format_exc()
    finally:
        devnet.down()
        report["duration_s"] = round(time.monotonic() - started, 2)
        path = write_report(devnet.root, report)
    return path, report


def _run_step(ctx: RunContext, index: int, spec: dict[str, Any]) -> None:
    action = spec["action"]
    ctx.progress(f"step {index}: {action}")
    started = time.monotonic()
    entry: dict[str, Any] = {"index": index, "action": action, "ok": False}
    ctx.report["steps"].append(entry)
    try:
        entry["result"] = STEPS[action](ctx, spec) or {}
        entry["checks"] = entry["result"].pop("checks", {})
        entry["ok"] = all(entry["checks"].values())
    except ScenarioError as exc:
        entry["error"] = str(exc)
        raise
    finally:
        entry["seconds"] = round(time.monotonic() - started, 2)
    failed = [name for name, passed in entry.get("checks", {}).items() if not passed]
    verdict = f" FAILED checks: {', '.join(failed)}" if failed else ""
    ctx.progress(f"step {index}: {action} done in {entry['seconds']} s {summary(entry['result'])}{verdict}")


def summary(result: dict[str, Any]) -> str:
    """A one-line digest of a step result for progress output."""
    keys = ("delivery_ratio", "latency_ms_p50", "latency_ms_p99", "same_peer_id", "state_kept", "rejoined_s")
    parts = [f"{k}={result[k]:.3g}" if isinstance(result[k], float) else f"{k}={result[k]}" for k in keys if k in result]
    return " ".join(parts)


__all__ = ["run_scenario", "ScenarioError", "Scenario"]
