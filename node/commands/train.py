"""`plexus train start|status|stop`: shared-seed SPSA fine-tuning, one byte per sample and round."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from node.cli import HomeOption, JsonOption, client, console, emit, fail

train_app = typer.Typer(help="Fine-tune a shared model with one byte per step (shared-seed SPSA).",
                        no_args_is_help=True)

POLL_S = 1.0
"""Seconds between status polls of `train status --follow`."""


@train_app.command("start")
def start(
    run: str = typer.Option(..., "--run", help="Run name (joins the run if a peer announced it)."),
    model: str = typer.Option("tiny", "--model", help="'tiny' or a local Hugging Face model path."),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="Rounds of a new run."),
    samples_per_round: Optional[int] = typer.Option(None, "--samples-per-round", help="Bytes per peer and round."),
    round_s: Optional[float] = typer.Option(None, "--round-s", help="Round length (deadline) in seconds."),
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a run (or join the one peers announced under this name)."""
    if rounds is not None and rounds < 1:
        fail("--rounds must be >= 1")
    if samples_per_round is not None and samples_per_round < 1:
        fail("--samples-per-round must be >= 1")
    if model != "tiny" and not Path(model).exists():
        fail(f"no model at {model}")
    args = {"run": run, "model": model, "rounds": rounds, "samples_per_round": samples_per_round, "round_s": round_s}
    data = client(home).call("train.start", **{k: v for k, v in args.items() if v is not None})
    verb = "joined" if data.get("joined") else "created"
    emit(data, as_json, lambda d: console.print(
        f"{verb} run [bold]{d['run']}[/]: {d['rounds']} rounds of {d['round_s']} s, "
        f"round 0 opens in {max(0.0, d['starts_in_s']):.1f} s"))


def _render_status(d: dict) -> None:
    if d["run"] is None:
        console.print("no run")
        return
    console.print(f"run [bold]{d['run']}[/] {d['state']}  round {d['round']}/{d['rounds']}  "
                  f"shard {d.get('shard', '?')}  syncs {d.get('syncs', 0)}")
    console.print(f"train loss {d.get('train_loss', '-')}  eval loss {d.get('eval_loss', '-')}  "
                  f"peers this round {d.get('peers_this_round', '-')}")
    console.print(f"payload {d.get('payload_bytes', '-')} B per update, wire {d.get('wire_bytes', '-')} B  "
                  f"checksum {d.get('checksum', '-')}")


@train_app.command("status")
def status(
    home: Optional[Path] = HomeOption,
    as_json: bool = JsonOption,
    follow: bool = typer.Option(False, "--follow", help="Print the status every second until the run ends."),
) -> None:
    """Round, train and eval loss, peers this round, payload and wire bytes, checksum."""
    while True:
        data = client(home).call("train.status")
        emit(data, as_json, _render_status)
        if not follow or data["state"] in ("done", "stopped", "failed", "idle"):
            return
        time.sleep(POLL_S)


@train_app.command("stop")
def stop(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Stop contributing to the current run."""
    data = client(home).call("train.stop")
    emit(data, as_json, lambda d: console.print(f"stopped run {d['run']} at round {d['stopped_at_round']}"))


def register(app: typer.Typer) -> None:
    """Add `plexus train ...`."""
    app.add_typer(train_app, name="train")
