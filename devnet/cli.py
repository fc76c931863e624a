"""`plexus devnet ...`: a local multi-process network on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from devnet.launcher import Devnet, DevnetError
from node.cli import fail

app = typer.Typer(help="Run a local devnet of daemon processes on 127.0.0.1.", no_args_is_help=True)
console = Console()

DirOption = typer.Option(Path(".devnet"), "--dir", help="Devnet directory (node homes, state, reports).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command()
def up(nodes: int = typer.Option(8, "--nodes", min=1, max=64, help="How many daemons."), root: Path = DirOption) -> None:
    """Start N daemons bootstrapped to each other; return when all are ready."""
    try:
        devnet = Devnet(root)
        devnet.up(nodes)
    except DevnetError as exc:
        fail(str(exc))
    console.print(f"devnet of {nodes} nodes up in {devnet.root}")


@app.command()
def status(root: Path = DirOption, as_json: bool = JsonOption) -> None:
    """The devnet's nodes: pid, alive, connections."""
    rows = Devnet(root).status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "pid", "alive", "connected", "peer id")
    for row in rows:
        table.add_row(row["name"], str(row["pid"]), "yes" if row["alive"] else "no", str(row["connected"]), row["peer_id"])
    console.print(table)


@app.command()
def down(root: Path = DirOption) -> None:
    """Stop every node (SIGTERM, then SIGKILL after 5 s)."""
    stopped = Devnet(root).down()
    console.print(f"stopped {len(stopped)} node(s)")


@app.command()
def kill(node: str = typer.Argument(..., help="Node name (node3) or index (3)."), root: Path = DirOption) -> None:
    """kill -9 one node."""
    try:
        proc = Devnet(root).kill(node)
    except DevnetError as exc:
        fail(str(exc))
    console.print(f"killed {proc.name} (pid {proc.pid})")


@app.command()
def restart(node: str = typer.Argument(..., help="Node name (node3) or index (3)."), root: Path = DirOption) -> None:
    """Bring a node back with the same home (identity and state)."""
    try:
        proc = Devnet(root).restart(node)
    except DevnetError as exc:
        fail(str(exc))
    console.print(f"restarted {proc.name} (pid {proc.pid})")


@app.command()
def run(scenario: Path = typer.Argument(..., exists=True, dir_okay=False, help="Scenario TOML."), root: Path = DirOption,
        as_json: bool = JsonOption) -> None:
    """Run a scripted, bounded scenario; write report.json and plots into the devnet dir."""
    from devnet.runner import run_scenario
    from devnet.scenario import ScenarioError

    try:
        path, report = run_scenario(scenario, root, progress=(lambda _m: None) if as_json else console.print)
    except ScenarioError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"report": str(path), "ok": report["ok"]}))
    else:
        console.print(f"report: {path}" + ("" if report["ok"] else f"  [bold red]FAILED[/]: {report.get('error')}"))
    if not report["ok"]:
        raise typer.Exit(1)
