"""An in-process multi-peer harness: N real nodes (real py-libp2p hosts on 127.0.0.1) in one trio loop.

Used by the integration tests and the in-process benchmarks (in the spirit of py-ipv8's TestBase):

    async with running_nodes(4, tmp_path) as nodes:
        await connect(nodes, "ring")
        await wait_for_mesh(nodes, topic)
        ...

Waits never sleep blindly: :func:`wait_for` polls a condition until a deadline and fails with the
condition's description.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from node.daemon import open_node
from node.runtime import Node
from node.settings import NodeSettings

POLL_S = 0.02
DEFAULT_TIMEOUT_S = 20.0
TOPOLOGIES = ("line", "ring", "star", "random", "full")


async def wait_for(condition: Callable[[], bool], timeout_s: float = DEFAULT_TIMEOUT_S, what: str = "condition") -> None:
    """Poll ``condition`` until true; raise TimeoutError naming ``what`` after ``timeout_s``."""
    with trio.move_on_after(timeout_s):
        while not condition():
            await trio.sleep(POLL_S)
        return
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


@asynccontextmanager
async def running_nodes(
    count: int, root: Path, configure: Callable[[int, NodeSettings], NodeSettings] | None = None
) -> AsyncIterator[list[Node]]:
    """Start ``count`` nodes with homes under ``root``; stop them all on exit."""
    nodes = []
    for index in range(count):
        settings = NodeSettings(home=root / f"node{index}")
        if configure is not None:
            settings = configure(index, settings)
        nodes.append(open_node(settings))
    try:
        async with trio.open_nursery() as nursery:
            ready = [trio.Event() for _ in nodes]
            for node, event in zip(nodes, ready):
                nursery.start_soon(node.run, lambda _n, e=event: e.set())
            with trio.fail_after(DEFAULT_TIMEOUT_S):
                for event in ready:
                    await event.wait()
            try:
                yield nodes
            finally:
                for node in nodes:
                    node.stop()
    finally:
        for node in nodes:
            node.store.close()


def with_services(*names: str) -> Callable[[int, NodeSettings], NodeSettings]:
    """A ``configure`` hook selecting services."""
    return lambda _i, s: dataclasses.replace(s, services=names)


def edges_for(count: int, topology: str, degree: int = 3, seed: int = 0) -> list[tuple[int, int]]:
    """Index pairs to connect for a named topology."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {TOPOLOGIES}")
    if topology == "line":
        return [(i, i + 1) for i in range(count - 1)]
    if topology == "ring":
        return [(i, (i + 1) % count) for i in range(count)] if count > 2 else edges_for(count, "line")
    if topology == "star":
        return [(0, i) for i in range(1, count)]
    if topology == "full":
        return [(i, j) for i in range(count) for j in range(i + 1, count)]
    rng = random.Random(seed)
    edges = set(edges_for(count, "ring"))
    for i in range(count):
        for j in rng.sample(range(count), min(degree, count)):
            if i != j and (j, i) not in edges:
                edges.add((i, j))
    return sorted(edges)


async def connect(nodes: list[Node], topology: str = "line", degree: int = 3, seed: int = 0) -> None:
    """Dial the edges of ``topology`` and wait until every link is up."""
    for a, b in edges_for(len(nodes), topology, degree, seed):
        if not await nodes[a].dial(nodes[b].addrs()[0]):
            raise ConnectionError(f"node{a} could not dial node{b}")
    for a, b in edges_for(len(nodes), topology, degree, seed):
        await wait_for(lambda a=a, b=b: nodes[b].peer_id in nodes[a].connected_peers(), what=f"link node{a}-node{b}")


async def wait_for_mesh(nodes: list[Node], topic: str, min_peers: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Wait until every node has at least ``min_peers`` in the topic's GossipSub mesh."""

    def formed() -> bool:
        return all(len(n.stack.router.mesh.get(topic, ())) >= min_peers for n in nodes)

    await wait_for(formed, timeout_s, what=f"mesh of {topic} with >= {min_peers} peers on every node")
