"""`plexus scores`: this node's Gauntlet view of every peer of the run it scores."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from node.cli import HomeOption, JsonOption, client, console, emit

PEER_ID_SHOWN = 16
"""Characters of a peer id shown in the table (the JSON has the full ids)."""


def _render(data: dict) -> None:
    if not data["peers"]:
        state = "scoring on" if data["enabled"] else "scoring off (--opt gauntlet.enabled=1)"
        console.print(f"no scores yet ({state}; run {data['run'] or 'none'})")
        return
    title = f"gauntlet scores, run {data['run']} after round {data['round']} ({data['validators']} validators)"
    table = Table(title=title)
    for name in ("peer", "μ", "σ", "ordinal", "binary EMA", "sync", "final", "weight", "flags"):
        table.add_column(name, justify="left" if name in ("peer", "flags") else "right")
    for row in data["peers"]:
        peer = row["peer_id"][-PEER_ID_SHOWN:] + (" (self)" if row["self"] else "")
        table.add_row(peer, f"{row['mu']:.2f}", f"{row['sigma']:.2f}", f"{row['ordinal']:.2f}",
                      f"{row['binary_ema']:+.3f}", f"{row['sync']:.2f}", f"{row['final']:.4f}",
                      f"{row['weight']:.3f}", ",".join(row["flags"]))
    console.print(table)


def scores(
    history: bool = typer.Option(False, "--history", help="Include the per-round score history (JSON)."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Per peer: μ, σ, ordinal, binary EMA, sync, final (combined view), weight (last round) and flags."""
    emit(client(home).call("gauntlet.scores", history=history), as_json, _render)


def register(app: typer.Typer) -> None:
    """Add `scores` to the `plexus` app."""
    app.command("scores")(scores)
