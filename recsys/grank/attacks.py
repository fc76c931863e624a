"""Clicklog attacks on G-Rank by attackers with Sybil identities (sans-IO, seeded).

Shape of the attack (trust side): each attacker is a node a few honest users trust (it "obtained a few
honest edges"); its Sybils hang behind it, reachable from the honest network only through it (attacker
<-> Sybil and Sybil <-> Sybil edges of ``attack_weight``), like the MeritRank attack graph.

Two click attacks (clicklog side), by the attacker and all its Sybils:

- **flooding**: the attacker publishes spam items whose metadata carries every targeted query tag, and
  every identity writes many entries clicking a spam item under a targeted query;
- **targeted Sybil clicks**: every identity always clicks one chosen result for each targeted query.

Both also replay some honest entries (seen through gossip) under each identity, so that vanilla
G-Rank's similarity S_i(n) rates the Sybils like honest searchers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.grank.clicklog import ClickEntry
from recsys.grank.metadata import MAX_TAGS, ItemMetadata

ATTACKER_PREFIX = "attacker"
SYBIL_PREFIX = "sybil"
SPAM_PREFIX = "spam"


@dataclass(frozen=True)
class AttackSettings:
    """Size and strength of a Sybil clicklog attack."""

    n_attackers: int = 10
    """Attacker nodes, each with its own Sybil region."""
    sybils_per_attacker: int = 20
    """Sybil identities behind each attacker."""
    honest_edges_per_attacker: int = 2
    """Honest users that trust each attacker (edges honest -> attacker)."""
    honest_edge_weight: float = 3.0
    """Weight of those honest -> attacker edges (the middle of the honest 1-5 range)."""
    attack_weight: float = 20.0
    """Weight of attacker <-> Sybil and Sybil -> Sybil edges."""
    spam_items_per_attacker: int = 2
    """Flooding: spam items each attacker publishes."""
    entries_per_identity: int = 100
    """Fake clicks (on spam or chosen items) written by each attacker and each Sybil."""
    mimic_per_identity: int = 20
    """Honest entries each identity replays as its own, to look similar to honest searchers."""
    target_queries: int = 30
    """How many of the most searched query tags are attacked (at most MAX_TAGS)."""
    shown_k: int = 10
    """Results listed as shown in a fake entry (the clicked one plus honest padding)."""

    def validate(self) -> None:
        """Raise ``ValueError`` when a parameter is out of range."""
        for name in ("n_attackers", "honest_edges_per_attacker", "spam_items_per_attacker",
                     "entries_per_identity", "target_queries", "shown_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.sybils_per_attacker < 0 or self.mimic_per_identity < 0:
            raise ValueError("sybils_per_attacker and mimic_per_identity must be >= 0")
        if self.honest_edge_weight <= 0 or self.attack_weight <= 0:
            raise ValueError("edge weights must be > 0")
        if self.target_queries > MAX_TAGS:
            raise ValueError(f"target_queries must be <= {MAX_TAGS} (one spam item carries all targets)")


@dataclass(frozen=True)
class SybilRegion:
    """One attacker, its Sybils and the trust edges that connect them."""

    attacker: str
    """Attacker node id."""
    sybils: tuple[str, ...]
    """Sybil node ids."""
    edges: tuple[tuple[str, str, float], ...]
    """Trust edges (src, dst, weight): honest -> attacker, attacker <-> Sybils, Sybil ring."""

    @property
    def identities(self) -> tuple[str, ...]:
        """Every identity the attacker controls (itself first)."""
        return (self.attacker, *self.sybils)


def sybil_regions(
    honest: Sequence[str], settings: AttackSettings, rng: np.random.Generator
) -> list[SybilRegion]:
    """Attackers with Sybil regions, each trusted by ``honest_edges_per_attacker`` random honest users."""
    settings.validate()
    if len(honest) < settings.honest_edges_per_attacker:
        raise ValueError("fewer honest users than honest_edges_per_attacker")
    regions = []
    for a in range(settings.n_attackers):
        attacker = f"{ATTACKER_PREFIX}{a:03d}"
        sybils = tuple(f"{SYBIL_PREFIX}{a:03d}-{s:03d}" for s in range(settings.sybils_per_attacker))
        trusting = rng.choice(len(honest), size=settings.honest_edges_per_attacker, replace=False)
        edges = [(honest[int(h)], attacker, settings.honest_edge_weight) for h in sorted(trusting)]
        for i, sybil in enumerate(sybils):
            edges += [(attacker, sybil, settings.attack_weight), (sybil, attacker, settings.attack_weight)]
            edges.append((sybil, sybils[(i + 1) % len(sybils)], settings.attack_weight))
        regions.append(SybilRegion(attacker, sybils, tuple(e for e in edges if e[0] != e[1])))
    return regions


def spam_metadata(
    region: SybilRegion, target_tags: Sequence[str], settings: AttackSettings
) -> list[ItemMetadata]:
    """The attacker's spam items, each tagged with every targeted query tag."""
    tags = tuple(target_tags)
    if not 0 < len(tags) <= MAX_TAGS:
        raise ValueError(f"need 1..{MAX_TAGS} target tags, got {len(tags)}")
    return [
        ItemMetadata(f"{SPAM_PREFIX}-{region.attacker}-{i}", region.attacker, f"best deal {i}", tags)
        for i in range(settings.spam_items_per_attacker)
    ]


def _fake_entries(
    identity: str,
    clicks: Sequence[tuple[str, str]],
    tag_items: Mapping[str, Sequence[str]],
    honest: Sequence[ClickEntry],
    settings: AttackSettings,
    rng: np.random.Generator,
) -> list[ClickEntry]:
    entries = []
    for seq, (tag, clicked) in enumerate(clicks):
        pool = [i for i in tag_items.get(tag, ()) if i != clicked]
        pad = rng.permutation(len(pool))[: settings.shown_k - 1] if pool else []
        shown = (clicked, *(pool[int(p)] for p in pad))
        entries.append(ClickEntry(identity, seq, (tag,), shown, clicked, seq))
    if honest and settings.mimic_per_identity:
        for pick in rng.choice(len(honest), size=settings.mimic_per_identity):
            copy = honest[int(pick)]
            seq = len(entries)
            entries.append(ClickEntry(identity, seq, copy.query, copy.shown, copy.clicked, seq))
    return entries


def flood_entries(
    region: SybilRegion,
    spam_items: Sequence[str],
    target_tags: Sequence[str],
    tag_items: Mapping[str, Sequence[str]],
    settings: AttackSettings,
    rng: np.random.Generator,
    honest: Sequence[ClickEntry] = (),
) -> list[ClickEntry]:
    """Flooding: every identity of ``region`` clicks a spam item under random targeted queries.

    Each identity also replays ``mimic_per_identity`` random entries of ``honest`` (if given).
    """
    settings.validate()
    if not spam_items or not target_tags:
        raise ValueError("flooding needs spam items and target tags")
    out = []
    for identity in region.identities:
        tags = rng.choice(len(target_tags), size=settings.entries_per_identity)
        items = rng.choice(len(spam_items), size=settings.entries_per_identity)
        clicks = [(target_tags[int(t)], spam_items[int(i)]) for t, i in zip(tags, items)]
        out += _fake_entries(identity, clicks, tag_items, honest, settings, rng)
    return out


def targeted_entries(
    region: SybilRegion,
    chosen: Mapping[str, str],
    tag_items: Mapping[str, Sequence[str]],
    settings: AttackSettings,
    rng: np.random.Generator,
    honest: Sequence[ClickEntry] = (),
) -> list[ClickEntry]:
    """Targeted Sybil clicks: every identity always clicks ``chosen[tag]`` under targeted query ``tag``.

    Each identity also replays ``mimic_per_identity`` random entries of ``honest`` (if given).
    """
    settings.validate()
    if not chosen:
        raise ValueError("targeted clicks need at least one (query tag -> item) target")
    tags = sorted(chosen)
    out = []
    for identity in region.identities:
        picks = rng.choice(len(tags), size=settings.entries_per_identity)
        clicks = [(tags[int(t)], chosen[tags[int(t)]]) for t in picks]
        out += _fake_entries(identity, clicks, tag_items, honest, settings, rng)
    return out
