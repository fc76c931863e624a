"""The scenario report: report.json plus PNG plots in the devnet directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

REPORT_FILE = "report.json"
FIGURE_DPI = 100


def write_report(root: Path, report: dict[str, Any]) -> Path:
    """Write report.json (without private bookkeeping keys) and the plots; return the report path."""
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    public["plots"] = plot_gossip(root, report)
    path = root / REPORT_FILE
    path.write_text(json.dumps(public, indent=2, default=str))
    return path


def plot_gossip(root: Path, report: dict[str, Any]) -> list[str]:
    """Latency CDF and per-node delivery of each gossip step."""
    phases = [s["result"] for s in report.get("steps", []) if s.get("action") == "gossip" and s.get("result")]
    if not phases:
        return []
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for phase in phases:
        lat = sorted(phase["latencies_ms"])
        if lat:
            left.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=phase["label"])
        names = sorted(phase["expected"])
        right.plot(names, [phase["delivered"].get(n, 0) / max(1, phase["expected"][n]) for n in names], "o-",
                   label=phase["label"])
    left.set(xlabel="latency (ms)", ylabel="fraction of deliveries", title="gossip latency CDF", xscale="log")
    right.set(ylabel="delivered / expected", title="delivery per node", ylim=(0, 1.05))
    left.legend()
    right.legend()
    fig.tight_layout()
    path = root / "gossip.png"
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    return [path.name]
