"""Scripted, bounded devnet scenarios from TOML.

A scenario names its node count and a list of steps; each step is run by a registered step
function that may add figures to the report. Every step is bounded in time by its own
``timeout_s`` (or the scenario's default), so a scenario always ends by itself.

    name = "default"
    nodes = 8
    [[steps]]
    action = "gossip"
    messages = 200
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet.launcher import Devnet

DEFAULT_STEP_TIMEOUT_S = 120.0
MAX_NODES = 64


class ScenarioError(ValueError):
    """The scenario file is invalid or a step failed; the message says which step."""


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario."""

    name: str
    """Shown in the report."""
    nodes: int
    """How many daemons to start."""
    steps: tuple[dict[str, Any], ...]
    """Each step's table from the TOML file; ``action`` picks the step function."""
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    """Upper bound on any one step unless the step sets its own ``timeout_s``."""
    node_args: dict[int, list[str]] = field(default_factory=dict)
    """Extra `plexus run` arguments per node index: the file's ``all_node_args`` (every node) followed
    by its ``[node_args]`` entry for that index (e.g. a role)."""

    def validate(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise ScenarioError(f"nodes must be in 1..{MAX_NODES}")
        for index, step in enumerate(self.steps):
            if step.get("action") not in STEPS:
                raise ScenarioError(f"step {index}: unknown action {step.get('action')!r}; known: {', '.join(sorted(STEPS))}")
        if self.step_timeout_s <= 0:
            raise ScenarioError("step_timeout_s must be > 0")


def load_scenario(path: Path) -> Scenario:
    """Parse and validate a scenario file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    shared_args = [str(a) for a in data.get("all_node_args", [])]
    node_args = {i: list(shared_args) for i in range(int(data.get("nodes", 0)))}
    for key, args in data.get("node_args", {}).items():
        node_args.setdefault(int(key), list(shared_args)).extend(str(a) for a in args)
    scenario = Scenario(
        name=str(data.get("name", path.stem)),
        nodes=int(data.get("nodes", 0)),
        steps=tuple(data.get("steps", [])),
        step_timeout_s=float(data.get("step_timeout_s", DEFAULT_STEP_TIMEOUT_S)),
        node_args=node_args,
    )
    scenario.validate()
    return scenario


@dataclass
class RunContext:
    """What steps share: the devnet, the report being built, progress output."""

    devnet: Devnet
    scenario: Scenario
    report: dict[str, Any]
    progress: Callable[[str], None]
    step_index: int = 0

    def deadline(self, step: dict[str, Any]) -> float:
        return time.monotonic() + float(step.get("timeout_s", self.scenario.step_timeout_s))

    def live_nodes(self):
        return [n for n in self.devnet.nodes if self.devnet.alive(n)]


StepFn = Callable[[RunContext, dict[str, Any]], dict[str, Any] | None]
STEPS: dict[str, StepFn] = {}


def step(action: str) -> Callable[[StepFn], StepFn]:
    """Register a step function under an action name."""

    def register(fn: StepFn) -> StepFn:
        STEPS[action] = fn
        return fn

    return register
