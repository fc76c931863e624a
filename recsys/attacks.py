"""Sybil attack graphs for MeritRank: an honest Barabasi-Albert trust graph plus a Sybil region behind one attacker.

Everything is returned as plain edge lists ``(src, dst, weight)`` over integer node ids (honest nodes are
0..honest-1, Sybils follow), so the same graph drives the in-process benchmark and devnet scenarios with
real nodes (map ids to peers there).

Shapes (every Sybil is reachable only through the attacker):

* ``serial``: a chain attacker -> s0 -> s1 -> ... -> s_last;
* ``parallel``: a fan-out attacker -> s_i with a back-edge s_i -> attacker for every Sybil;
* ``serial_cycle``: the chain, plus s_last -> attacker.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

Edge = tuple[int, int, float]

SHAPES = ("serial", "parallel", "serial_cycle")
"""The Sybil region shapes ``sybil_region`` builds."""


@dataclass(frozen=True)
class AttackSettings:
    """Size and weights of the honest graph and of the Sybil region."""

    honest: int = 1000
    """Honest nodes (ids 0..honest-1)."""
    ba_m: int = 3
    """Barabasi-Albert attachment edges per new node."""
    weight_low: float = 1.0
    """Lowest honest edge weight (uniform draw)."""
    weight_high: float = 5.0
    """Highest honest edge weight (uniform draw)."""
    sybils: int = 50
    """Sybil nodes behind the attacker."""
    attack_weight: float = 20.0
    """Weight of every edge the attacker or a Sybil adds."""
    attacker_distance: int = 2
    """Hop distance from the ego to the attacker in the honest graph."""

    def validate(self) -> None:
        """Raise ValueError for a setting out of range."""
        if self.ba_m < 1 or self.honest <= self.ba_m:
            raise ValueError(f"need honest > ba_m >= 1, got honest={self.honest}, ba_m={self.ba_m}")
        if not 0.0 < self.weight_low <= self.weight_high:
            raise ValueError(f"need 0 < weight_low <= weight_high, got {self.weight_low}, {self.weight_high}")
        if self.sybils < 1:
            raise ValueError(f"sybils must be >= 1, got {self.sybils}")
        if self.attack_weight <= 0.0:
            raise ValueError(f"attack_weight must be > 0, got {self.attack_weight}")
        if self.attacker_distance < 1:
            raise ValueError(f"attacker_distance must be >= 1, got {self.attacker_distance}")


@dataclass(frozen=True)
class AttackGraph:
    """One seeded attack scenario."""

    shape: str
    """One of SHAPES."""
    edges: tuple[Edge, ...]
    """Every directed edge, honest and Sybil."""
    ego: int
    """The honest node whose view is ranked."""
    attacker: int
    """The honest node that spawns the Sybil region."""
    honest: tuple[int, ...]
    """Honest node ids (attacker included)."""
    sybils: tuple[int, ...]
    """Sybil node ids."""


def honest_graph(n: int, m: int, rng: np.random.Generator, low: float, high: float) -> list[Edge]:
    """Barabasi-Albert graph with every edge made reciprocal; each direction gets its own uniform weight."""
    seed = int(rng.integers(2**31 - 1))
    g = nx.barabasi_albert_graph(n, m, seed=seed)
    pairs = sorted((min(u, v), max(u, v)) for u, v in g.edges())
    weights = rng.uniform(low, high, size=(len(pairs), 2))
    edges: list[Edge] = []
    for (u, v), (w_uv, w_vu) in zip(pairs, weights.tolist()):
        edges.append((u, v, w_uv))
        edges.append((v, u, w_vu))
    return edges


def sybil_region(shape: str, attacker: int, first_id: int, count: int, weight: float) -> list[Edge]:
    """Edges of a Sybil region of count nodes (ids first_id..) hanging off attacker."""
    sybils = list(range(first_id, first_id + count))
    if shape == "parallel":
        return [e for s in sybils for e in ((attacker, s, weight), (s, attacker, weight))]
    if shape not in SHAPES:
        raise ValueError(f"unknown Sybil shape {shape!r}; expected one of {SHAPES}")
    chain = [attacker, *sybils]
    edges = [(a, b, weight) for a, b in zip(chain, chain[1:])]
    if shape == "serial_cycle":
        edges.append((sybils[-1], attacker, weight))
    return edges


def pick_ego_and_attacker(edges: list[Edge], n: int, distance: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random ego and a random node exactly `distance` hops from it (ego redrawn until one exists)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((u, v) for u, v, _ in edges)
    for _ in range(n):
        ego = int(rng.integers(n))
        hops = nx.single_source_shortest_path_length(g, ego, cutoff=distance)
        ring = sorted(v for v, d in hops.items() if d == distance)
        if ring:
            return ego, ring[int(rng.integers(len(ring)))]
    raise ValueError(f"no node has another node at distance {distance}")


def attack_graph(shape: str, seed: int = 0, settings: AttackSettings | None = None) -> AttackGraph:
    """The seeded attack graph: same honest graph, ego and attacker for every shape under one seed."""
    settings = settings if settings is not None else AttackSettings()
    settings.validate()
    if shape not in SHAPES:
        raise ValueError(f"unknown Sybil shape {shape!r}; expected one of {SHAPES}")
    rng = np.random.default_rng(seed)
    honest = honest_graph(settings.honest, settings.ba_m, rng, settings.weight_low, settings.weight_high)
    ego, attacker = pick_ego_and_attacker(honest, settings.honest, settings.attacker_distance, rng)
    region = sybil_region(shape, attacker, settings.honest, settings.sybils, settings.attack_weight)
    return AttackGraph(
        shape=shape,
        edges=tuple(honest + region),
        ego=ego,
        attacker=attacker,
        honest=tuple(range(settings.honest)),
        sybils=tuple(range(settings.honest, settings.honest + settings.sybils)),
    )
