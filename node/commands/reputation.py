"""`plexus trust`, `plexus distrust` and `plexus rank`: the trust graph from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from node.cli import HomeOption, JsonOption, client, console, emit, fail

DEFAULT_TRUST_WEIGHT = 1.0
DEFAULT_RANK_K = 20


def _declare(peer: str, weight: float, home: Optional[Path], as_json: bool) -> None:
    data = client(home).call("trust.add", peer=peer, weight=weight, kind="declared")
    verb = "withdrew" if data["weight"] == 0 else ("distrusts" if data["weight"] < 0 else "trusts")
    emit(data, as_json, lambda d: console.print(f"this node {verb} [bold cyan]{d['dst']}[/] (weight {d['weight']:g})"))


def trust(
    peer: str = typer.Argument(..., help="The peer id to trust."),
    weight: float = typer.Option(DEFAULT_TRUST_WEIGHT, "--weight", help="Trust weight in (0, 100]; 0 withdraws."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Declare trust in a peer (a signed edge gossiped to the network)."""
    if weight < 0:
        fail("--weight must be >= 0 for trust (use `plexus distrust` for distrust)")
    _declare(peer, weight, home, as_json)


def distrust(
    peer: str = typer.Argument(..., help="The peer id to distrust."),
    weight: float = typer.Option(DEFAULT_TRUST_WEIGHT, "--weight", help="Distrust strength in (0, 100]."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Declare distrust of a peer (a negative signed edge)."""
    if weight <= 0:
        fail("--weight must be > 0 (the edge weight becomes -W)")
    _declare(peer, -weight, home, as_json)


def _render_rank(data: dict) -> None:
    if not data["rows"]:
        console.print("no reputation yet: declare trust with `plexus trust PEER`")
        return
    table = Table(title=f"reputation from {data['ego']} ({data['walks']} walks)")
    table.add_column("rank", justify="right")
    table.add_column("peer", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("walks", justify="right")
    for row in data["rows"]:
        table.add_row(str(row["rank"]), row["peer"], f"{row['score']:.4f}", str(row["walks"]))
    console.print(table)


def rank(
    k: int = typer.Option(DEFAULT_RANK_K, "--k", help="How many peers to show."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Peers by MeritRank reputation from this node's view."""
    if k < 1:
        fail("--k must be >= 1")
    data = client(home).call("trust.rank", k=k)
    emit(data, as_json, _render_rank)


def register(app: typer.Typer) -> None:
    """Add trust, distrust and rank to the `plexus` app."""
    app.command("trust")(trust)
    app.command("distrust")(distrust)
    app.command("rank")(rank)
