"""`plexus search`, `plexus click` and `plexus items add|list`: G-Rank search from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from node.cli import HomeOption, JsonOption, client, console, emit, fail

DEFAULT_K = 10
DEFAULT_LIST_LIMIT = 100
SHORT_ID_CHARS = 10

items_app = typer.Typer(help="Publish and list item metadata.", no_args_is_help=True)


def _render_results(data: dict) -> None:
    mode = "reputation-weighted" if data["weighted"] else "vanilla"
    note = f" ({data['fallback']})" if data.get("fallback") else ""
    if not data["results"]:
        console.print(f"no results for {data['query']!r} ({mode} G-Rank{note}, {data['entries']} clicklog entries)")
        return
    table = Table("rank", "item", "title", "score", "meta", title=f"{mode} G-Rank for {data['query']!r}{note}")
    for row in data["results"]:
        table.add_row(str(row["rank"]), row["item_id"], row["title"] or "", f"{row['score']:.4f}",
                      str(row["metadata_match"]))
    console.print(table)


def search(
    query: str = typer.Argument(..., help="Free-text query (split into lower-case terms)."),
    k: int = typer.Option(DEFAULT_K, "--k", help="How many results."),
    vanilla: bool = typer.Option(False, "--vanilla", help="Plain G-Rank, without reputation weighting."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Search items with G-Rank over the clicklogs this node holds."""
    if k < 1:
        fail("--k must be >= 1")
    data = client(home).call("search", query=query, k=k, vanilla=vanilla)
    emit(data, as_json, _render_results)


def click(
    query: str = typer.Argument(..., help="The query the click answers."),
    item: str = typer.Argument(..., help="The item id clicked."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Record a click on ITEM for QUERY (a signed clicklog entry, pulled by peers)."""
    data = client(home).call("click", query=query, item=item)
    emit(data, as_json, lambda d: console.print(f"click #{d['seq']} on [bold]{d['clicked']}[/] for {' '.join(d['query'])}"))


@items_app.command("add")
def items_add(
    title: str = typer.Argument(..., help="The item's title."),
    tags: str = typer.Option("", "--tags", help="Comma-separated tags, e.g. jazz,live."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Publish metadata of one of this node's items (signed, gossiped, republished)."""
    tag_list = [t.strip() for t in tags.split(",") if t.strip()]
    data = client(home).call("items.add", title=title, tags=tag_list)
    emit(data, as_json, lambda d: console.print(f"item [bold]{d['item_id']}[/] {d['title']!r} tags {','.join(d['tags'])}"))


@items_app.command("list")
def items_list(
    mine: bool = typer.Option(False, "--mine", help="Only this node's items."),
    limit: int = typer.Option(DEFAULT_LIST_LIMIT, "--limit", help="Most rows."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Item metadata known to this node."""
    if limit < 1:
        fail("--limit must be >= 1")
    args = {"limit": limit}
    if mine:
        args["owner"] = client(home).call("status")["peer_id"]
    data = client(home).call("items.list", **args)

    def render(d: dict) -> None:
        table = Table("item", "title", "tags", "owner")
        for row in d["items"]:
            table.add_row(row["item_id"], row["title"], ",".join(row["tags"]), "…" + row["owner"][-SHORT_ID_CHARS:])
        console.print(table)

    emit(data, as_json, render)


def register(app: typer.Typer) -> None:
    """Add search, click and items to the `plexus` app."""
    app.command("search")(search)
    app.command("click")(click)
    app.add_typer(items_app, name="items")
