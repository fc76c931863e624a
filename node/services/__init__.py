"""Node services: each a small class that registers its topics, handlers, commands and tasks."""

from __future__ import annotations

from collections.abc import Callable

from node.runtime import Service
from node.services.gauntlet import GauntletService
from node.services.gossip import GossipService
from node.services.membership import MembershipService
from node.services.pader import PaderService
from node.services.query import QueryService
from node.services.search import SearchService
from node.services.train import TrainService
from node.services.trust import TrustService

FACTORIES: dict[str, Callable[[], Service]] = {
    "gossip": GossipService,
    "membership": MembershipService,
    "query": QueryService,
    "search": SearchService,
    "train": TrainService,
    "trust": TrustService,
    "pader": PaderService,
    "gauntlet": GauntletService,
}


def build_services(names: tuple[str, ...]) -> list[Service]:
    """Instantiate services by name (all registered ones when ``names`` is empty)."""
    names = names or tuple(FACTORIES)
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(FACTORIES)}")
    return [FACTORIES[n]() for n in names]
