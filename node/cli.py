"""`plexus`: the command line. Every read command takes --json; every error is one line, exit 1.

Subcommand groups of other packages (devnet, ...) plug in through the ``plexus.cli`` entry-point
group, so that this package does not import the ones built on top of it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from node.client import ControlClient, ControlError

HOME_ENV = "PLEXUS_HOME"
DEFAULT_HOME = Path.home() / ".plexus"
ENTRY_POINT_GROUP = "plexus.cli"

app = typer.Typer(
    name="plexus",
    help="Plexus: a decentralized learning node on py-libp2p.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
gossip_app = typer.Typer(help="Publish to and follow gossip topics.", no_args_is_help=True)
app.add_typer(gossip_app, name="gossip")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

HomeOption = typer.Option(None, "--home", help=f"Node home directory (default ${HOME_ENV} or {DEFAULT_HOME}).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def resolve_home(home: Optional[Path]) -> Path:
    """--home, else $PLEXUS_HOME, else ~/.plexus."""
    if home is not None:
        return home
    return Path(os.environ.get(HOME_ENV, DEFAULT_HOME))


def client(home: Optional[Path]) -> ControlClient:
    return ControlClient(resolve_home(home))


def emit(data: Any, as_json: bool, render) -> None:
    """Print ``data`` as JSON or through ``render`` (rich)."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def fail(message: str) -> None:
    """One clear line on stderr, exit code 1."""
    print_error(message)
    raise typer.Exit(1)


def print_error(message: str) -> None:
    """One line on stderr; the message is shown literally (no rich markup inside it)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


@app.command()
def init(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Create a node home with its identity (safe to run twice: the identity is kept)."""
    from node.home import NodeHome
    from node.identity import load_or_create_identity, peer_id_of

    node_home = NodeHome(resolve_home(home))
    node_home.ensure()
    peer_id = str(peer_id_of(load_or_create_identity(node_home.identity)))
    emit({"home": str(node_home.root), "peer_id": peer_id}, as_json,
         lambda d: console.print(f"home [bold]{d['home']}[/]  peer id [bold cyan]{d['peer_id']}[/]"))


@app.command()
def run(
    home: Optional[Path] = HomeOption,
    listen: list[str] = typer.Option(["/ip4/127.0.0.1/tcp/0"], "--listen", help="Multiaddr to listen on (repeatable)."),
    bootstrap: list[str] = typer.Option([], "--bootstrap", help="Peer multiaddr with /p2p/ID (repeatable)."),
    network: str = typer.Option("devnet", "--network", help="Network name (topics plexus/<network>/...)."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    service: list[str] = typer.Option([], "--service", help="Run only these services (repeatable; default: all)."),
    opt: list[str] = typer.Option([], "--opt", help="Service option KEY=VALUE (repeatable), e.g. adversary=noise."),
    adversary: Optional[str] = typer.Option(None, "--adversary", help="Test adversary kind (same as --opt adversary=KIND)."),
    libp2p_defaults: bool = typer.Option(False, "--libp2p-defaults", hidden=True,
                                         help="Benchmark baseline: py-libp2p's default stack settings."),
) -> None:
    """Run the node daemon in the foreground until SIGINT/SIGTERM."""
    from node.daemon import run_daemon
    from node.settings import NodeSettings

    pairs = []
    for item in opt + ([f"adversary={adversary}"] if adversary else []):
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--opt {item!r} must be KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    settings = NodeSettings(
        home=resolve_home(home), listen=tuple(listen), bootstrap=tuple(bootstrap), network=network,
        log_level=log_level, libp2p_defaults=libp2p_defaults, options=tuple(pairs), services=tuple(service),
    )
    try:
        settings.validate()
    except ValueError as exc:
        fail(str(exc))
    run_daemon(settings)


@app.command()
def status(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """This node's status."""
    data = client(home).call("status")

    def render(d: dict) -> None:
        console.print(f"[bold cyan]{d['peer_id']}[/] on [bold]{d['network']}[/]  up {d['uptime_s']:.0f} s  pid {d['pid']}")
        console.print(f"connected {d['connected']}  known peers {d['known_peers']}")
        for addr in d["addrs"]:
            console.print(f"  listening {addr}")
        for topic, size in d["mesh"].items():
            console.print(f"  mesh {topic}: {size} peers")

    emit(data, as_json, render)


def _render_peers(rows: list[dict]) -> None:
    table = Table("peer id", "connected", "last seen", "addrs", "services")
    for row in rows:
        seen = f"{row['age_s']:.0f} s ago" if "age_s" in row else time.strftime("%H:%M:%S", time.localtime(row["last_seen"]))
        table.add_row(row["peer_id"], "yes" if row["connected"] else "no", seen,
                      "\n".join(row.get("addrs", [])), ",".join(row.get("services", [])))
    console.print(table)


@app.command()
def peers(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """The peer table: who this node knows, when it last saw them."""
    rows = client(home).call("peers")["peers"]
    emit(rows, as_json, _render_peers)


@app.command()
def query(
    peer_id: str = typer.Argument(..., help="The remote peer's id."),
    kind: str = typer.Argument(..., help="status, peers or services."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Ask a remote peer over the network (through the local daemon)."""
    data = client(home).call("query", peer=peer_id, kind=kind)

    def render(d: dict) -> None:
        if kind == "peers":
            _render_peers(d["peers"])
        else:
            for key, value in d.items():
                console.print(f"[bold]{key}[/]: {value}")

    emit(data, as_json, render)


@gossip_app.command("publish")
def gossip_publish(
    topic: str = typer.Argument(..., help="Topic name, e.g. news."),
    text: str = typer.Argument(..., help="The text to publish."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Publish a text note on a topic."""
    data = client(home).call("gossip.publish", topic=topic, text=text)
    emit(data, as_json, lambda d: console.print(f"published {d['bytes']} bytes on {d['topic']}"))


@gossip_app.command("tail")
def gossip_tail(
    topic: str = typer.Argument(..., help="Topic name, e.g. news."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
    count: int = typer.Option(0, "--count", help="Stop after this many messages (0: follow until Ctrl-C)."),
) -> None:
    """Follow a topic: the last few messages, then new ones as they arrive."""
    seen = 0
    try:
        for event in client(home).stream("gossip.tail", topic=topic):
            if as_json:
                print(json.dumps(event), flush=True)
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(event["received_at"]))
                console.print(f"[dim]{stamp}[/] [cyan]{event['author'][-8:]}[/] {event['text']}", highlight=False)
            seen += 1
            if count and seen >= count:
                return
    except KeyboardInterrupt:
        return


#: Modules of this package that add commands: each has ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = ("node.commands.reputation", "node.commands.search", "node.commands.train",
                                   "node.commands.pader", "node.commands.scores")


def _load_plugins() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        sub = entry.load()
        app.add_typer(sub, name=entry.name)


def main() -> None:
    """Console entry point: run the app, turning expected failures into one line and exit 1."""
    _load_plugins()
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except (ControlError, ValueError, OSError) as exc:
        print_error(str(exc))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - never a traceback: one line, the log has the rest
        if hasattr(exc, "format_message"):  # a usage error from typer's (vendored) click
            print_error(exc.format_message())
            sys.exit(getattr(exc, "exit_code", 2))
        print_error(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
