"""The trust graph: signed trust edges on gossip, kept in SQLite, ranked by MeritRank from this node's view.

Edges (``protocols.trust.TrustEdge``) are signed by their source. Every node keeps every valid edge it
hears (one per ``(src, dst, kind)``, newest ``seq`` wins) with the signed frame, so its view survives
restarts and can be re-served. The kinds of one pair combine into one MeritRank weight:

    w(src, dst) = clip(sum over kinds of weight_kind * factor_kind, -combined_cap, +combined_cap)

where ``factor`` is the epoch decay held by that row (theta per epoch since the row arrived). A
combined weight of 0 (all kinds withdrawn) or under ``prune_below`` removes the edge; a negative one
is distrust. MeritRank runs in worker threads (an ego edge change costs 40-140 ms); the event loop only
reads the cached scores. ``node.scores.reputation`` gets ``clip(scale * score, -cap, cap)`` so that
reputation feeds GossipSub's application score.

API for other services: ``await trust.add_own_edge(dst, weight, kind)``, ``trust.reputation()``
(cached ``{peer id: score}``), ``trust.top_k(k)`` and ``await trust.refresh()``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import anyio
import trio
from libp2p.pubsub.pb import rpc_pb2

from node.control import CommandError
from node.runtime import Node
from node.options import settings_from_options
from node.settings import NodeSettings
from protocols import trust as wire
from protocols.validation import Validation, accept, ignore
from recsys.meritrank import MeritRank, MeritRankSettings

log = logging.getLogger(__name__)

MILLIS = 1000
OPTION_PREFIX = "trust."
#: Edges verified by the validator and waiting for the handler (bounded; a miss only costs a re-check).
VERIFIED_CACHE = 1024
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS trust_edges (
        src TEXT NOT NULL,
        dst TEXT NOT NULL,
        kind TEXT NOT NULL,
        weight REAL NOT NULL,
        seq INTEGER NOT NULL,
        factor REAL NOT NULL DEFAULT 1.0,
        received_at REAL NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (src, dst, kind)
    )""",
    "CREATE INDEX IF NOT EXISTS trust_edges_by_src ON trust_edges(src)",
)
Pair = tuple[str, str]


@dataclass(frozen=True)
class TrustSettings:
    """MeritRank parameters and the trust service's timers; override with ``--opt trust.<field>=<value>``."""

    walks: int = 10_000
    """Random walks from this node (the Monte-Carlo budget of its reputation view)."""
    alpha: float = 0.15
    """Stop probability per walk step (transitivity decay; DESIGN.md §4)."""
    beta: float = 0.9
    """Connectivity decay: a peer reached only through one bridge keeps (1 - beta) of its score."""
    tau: float = 1.0
    """rho threshold for connectivity decay (0.95 also cuts honest friends-of-friends of a low-degree ego)."""
    epoch_decay: float = 0.9
    """theta: every edge weight is multiplied by this once per epoch."""
    prune_below: float = 0.05
    """Combined edge weights with |w| under this leave the graph (after decay, or when declared so small)."""
    combined_cap: float = wire.MAX_WEIGHT
    """Bound on |w(src, dst)| once the kinds of one pair are summed."""
    seed: int = 0
    """Seed of the walk sampler (the view is deterministic for a given sequence of edges)."""
    recompute_interval_s: float = 2.0
    """Cached reputation is recomputed (off the event loop) at most this often, and only after edges changed."""
    republish_interval_s: float = 30.0
    """Seconds between re-publications of this node's own edges (late joiners learn them)."""
    republish_max_edges: int = 64
    """Own edges re-published per round at most (newest first): bounds the republish rate."""
    epoch_interval_s: float = 3600.0
    """Seconds between epoch decays of every edge weight."""
    reputation_scale: float = 10.0
    """GossipSub application score of a peer = clip(scale * MeritRank score, -cap, cap)."""
    reputation_cap: float = 5.0
    """Bound on the absolute application score reputation may contribute."""
    max_rows: int = 1000
    """Most rows a control command (trust.rank, trust.edges) answers with."""
    max_edges_per_src: int = 10_000
    """Edge records kept per source; further new (dst, kind) edges of that source are ignored (a flood
    of edges to made-up peers cannot fill the store). Updates of held edges always pass."""

    def validate(self) -> None:
        """Raise ValueError naming the first field out of range."""
        self.meritrank().validate()
        positive = ("recompute_interval_s", "republish_interval_s", "epoch_interval_s", "reputation_scale",
                    "reputation_cap", "combined_cap")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"trust.{name} must be a finite number > 0, got {value!r}")
        if min(self.republish_max_edges, self.max_rows, self.max_edges_per_src) < 1:
            raise ValueError("trust.republish_max_edges, max_rows and max_edges_per_src must be >= 1")
        if self.prune_below >= self.combined_cap:
            raise ValueError("trust.prune_below must be below trust.combined_cap")

    def meritrank(self) -> MeritRankSettings:
        """The core's settings."""
        return MeritRankSettings(walks=self.walks, alpha=self.alpha, beta=self.beta, tau=self.tau,
                                 epoch_decay=self.epoch_decay, prune_below=self.prune_below)

    @classmethod
    def from_options(cls, settings: NodeSettings) -> "TrustSettings":
        """Defaults overridden by ``--opt trust.<field>=<value>``; ValueError on unknown or bad values."""
        return settings_from_options(cls, settings, OPTION_PREFIX)


def combine(weights: Mapping[str, float], cap: float) -> float:
    """One MeritRank weight from a pair's per-kind effective weights: their sum, clipped to [-cap, cap]."""
    return max(-cap, min(cap, math.fsum(weights.values())))


class TrustService:
    """Signed trust edges on gossip + SQLite, one MeritRank with this node as ego."""

    name = "trust"

    def __init__(self, settings: TrustSettings | None = None) -> None:
        self._given = settings
        self.settings = settings or TrustSettings()
        self.node: Node | None = None
        self.me = ""
        self.rank: MeritRank | None = None
        self._seq: dict[tuple[str, str, str], int] = {}
        self._per_src: dict[str, int] = {}
        self._verified: OrderedDict[bytes, wire.ReceivedEdge] = OrderedDict()
        self._kinds: dict[Pair, dict[str, float]] = {}
        self._in_graph: dict[Pair, float] = {}
        self._pending: dict[Pair, float] = {}
        self._dirty = True
        self._scores: Mapping[str, float] = MappingProxyType({})
        self._computed_at = 0.0
        self._lock: anyio.Lock | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, node: Node) -> None:
        self.node = node
        self.me = str(node.peer_id)
        self._lock = anyio.Lock()
        if self._given is None:
            self.settings = TrustSettings.from_options(node.settings)
        self.rank = MeritRank(self.settings.meritrank(), self.settings.seed)
        node.store.migrate("trust", 1, SCHEMA)
        self._load()
        await self.refresh()
        node.scores.reputation = self._app_score
        await node.subscribe(wire.topic(node.settings.network), self._on_edge, self._validate)
        node.spawn("trust.refresh", self._refresh_loop)
        node.spawn("trust.republish", self._republish_loop)
        node.spawn("trust.epoch", self._epoch_loop)
        node.control.add("trust.add", self._cmd_add)
        node.control.add("trust.rank", self._cmd_rank)
        node.control.add("trust.edges", self._cmd_edges)

    def _load(self) -> None:
        rows = self.node.store.query("SELECT src, dst, kind, weight, seq, factor FROM trust_edges")
        for src, dst, kind, weight, seq, factor in rows:
            self._seq[(src, dst, kind)] = seq
            self._per_src[src] = self._per_src.get(src, 0) + 1
            self._kinds.setdefault((src, dst), {})[kind] = weight * factor
        for pair, kinds in self._kinds.items():
            self._pending[pair] = combine(kinds, self.settings.combined_cap)
        log.info("trust: loaded %d edge records over %d pairs", len(rows), len(self._kinds))

    # -- public API ----------------------------------------------------------------------
    async def add_own_edge(self, dst: str, weight: float, kind: str = "declared") -> wire.TrustEdge:
        """Sign, store, publish and rank an edge from this node to ``dst`` (replaces our (dst, kind) edge).

        ``weight`` in [-MAX_WEIGHT, MAX_WEIGHT]: > 0 trust, < 0 distrust, 0 withdraws. Interaction
        sources (clicks, ratings) should pass their running total: each call replaces the edge.
        Raises ValueError on a bad peer id, weight or kind, or an edge to ourselves.
        """
        if dst == self.me:
            raise ValueError("a node cannot trust itself")
        held = self._seq.get((self.me, dst, kind), -1)
        edge = wire.TrustEdge(dst=dst, weight=float(weight), seq=max(int(time.time() * MILLIS), held + 1), kind=kind)
        try:
            edge.check()
            frame = wire.sign_edge(edge, self.node.key_pair.private_key)
        except ValueError as exc:  # EncodeError names the field that is out of its limits
            raise ValueError(str(exc)) from exc
        self._ingest(wire.ReceivedEdge(src=self.me, edge=edge, frame=frame))
        try:
            await self.node.publish(wire.topic(self.node.settings.network), frame)
        except Exception as exc:  # noqa: BLE001 - stored anyway; the republish loop retries
            log.info("trust: publish of edge to %s failed (%s); will republish", dst, exc)
        return edge

    def reputation(self) -> Mapping[str, float]:
        """Cached MeritRank scores from this node's view, {peer id: score} (read-only; may be seconds old)."""
        return self._scores

    def top_k(self, k: int) -> list[tuple[str, float]]:
        """The k best-reputed peers from the cached scores, best first."""
        ranked = sorted(self._scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[: max(0, k)]

    async def refresh(self) -> None:
        """Apply pending edge changes to MeritRank and recompute the cached scores if anything changed."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            if pending:
                await anyio.to_thread.run_sync(self._apply, pending)
                self._dirty = True
            if self._dirty:
                self._dirty = False
                scores = await anyio.to_thread.run_sync(self._compute)
                self._scores = MappingProxyType(scores)
                self._computed_at = time.monotonic()

    # -- inbound -------------------------------------------------------------------------
    def _stored_seq(self, src: str, dst: str, kind: str) -> int | None:
        return self._seq.get((src, dst, kind))

    def _validate(self, author: str, msg: rpc_pb2.Message) -> Validation:
        verdict, received = wire.check_edge_frame(msg.data, self._stored_seq)
        if received is None:
            return verdict
        if author == self.me and received.src == self.me:
            return accept()  # our own publish: already stored, must still go out
        if verdict.passes and self._over_quota(received):
            return ignore(f"source holds {self.settings.max_edges_per_src} edges already")
        if verdict.passes:
            self._verified[msg.data] = received  # the handler skips decoding and verifying again
            while len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        return verdict

    def _over_quota(self, received: wire.ReceivedEdge) -> bool:
        key = (received.src, received.edge.dst, received.edge.kind)
        return key not in self._seq and self._per_src.get(received.src, 0) >= self.settings.max_edges_per_src

    async def _on_edge(self, msg: rpc_pb2.Message) -> None:
        received = self._verified.pop(msg.data, None)
        if received is None:
            verdict, received = wire.check_edge_frame(msg.data, self._stored_seq)
        else:
            verdict = wire.check_edge(received, self._stored_seq)  # another copy may have landed since
        if verdict.passes and received.src != self.me and not self._over_quota(received):
            self._ingest(received)

    def _ingest(self, received: wire.ReceivedEdge) -> None:
        edge, src = received.edge, received.src
        key = (src, edge.dst, edge.kind)
        with self.node.store.transaction() as db:
            db.execute(
                "INSERT INTO trust_edges(src, dst, kind, weight, seq, factor, received_at, record) "
                "VALUES(?, ?, ?, ?, ?, 1.0, ?, ?) ON CONFLICT(src, dst, kind) DO UPDATE SET "
                "weight=excluded.weight, seq=excluded.seq, factor=1.0, received_at=excluded.received_at, "
                "record=excluded.record WHERE excluded.seq > trust_edges.seq",
                (src, edge.dst, edge.kind, edge.weight, edge.seq, time.time(), received.frame),
            )
        if key not in self._seq:
            self._per_src[src] = self._per_src.get(src, 0) + 1
        self._seq[key] = edge.seq
        kinds = self._kinds.setdefault((src, edge.dst), {})
        kinds[edge.kind] = edge.weight
        self._pending[(src, edge.dst)] = combine(kinds, self.settings.combined_cap)

    # -- MeritRank (worker threads, under self._lock) -----------------------------------
    def _apply(self, pending: dict[Pair, float]) -> None:
        floor = self.settings.prune_below
        for (src, dst), weight in pending.items():
            current = self._in_graph.get((src, dst))
            if abs(weight) < floor or weight == 0.0:
                if current is not None:
                    self.rank.remove_edge(src, dst)
                    del self._in_graph[(src, dst)]
            elif current != weight:
                self.rank.add_edge(src, dst, weight)
                self._in_graph[(src, dst)] = weight

    def _compute(self) -> dict[str, float]:
        return {str(peer): score for peer, score in self.rank.scores(self.me).items()}

    def _walks_reaching(self, peers: list[str]) -> list[int]:
        return [self.rank.walks_reaching(self.me, peer) for peer in peers]

    def _advance_epoch(self) -> None:
        self.rank.advance_epoch()
        self._in_graph = {(str(s), str(d)): w for s, d, w in self.rank.edges()}

    def _app_score(self, peer: str) -> float:
        cap = self.settings.reputation_cap
        return max(-cap, min(cap, self.settings.reputation_scale * self._scores.get(peer, 0.0)))

    # -- background tasks ----------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        while True:
            await trio.sleep(self.settings.recompute_interval_s)
            if self._pending or self._dirty:
                try:
                    await self.refresh()
                except Exception:  # noqa: BLE001 - one bad batch must not stop the ranking for good
                    log.exception("trust: refresh failed")

    async def _republish_loop(self) -> None:
        topic = wire.topic(self.node.settings.network)
        while True:
            await trio.sleep(self.settings.republish_interval_s)
            rows = self.node.store.query(
                "SELECT record FROM trust_edges WHERE src=? ORDER BY seq DESC LIMIT ?",
                (self.me, self.settings.republish_max_edges),
            )
            for (record,) in rows:
                try:
                    await self.node.publish(topic, bytes(record))
                except Exception as exc:  # noqa: BLE001 - no peers yet or budget exhausted: next round
                    log.debug("trust: republish failed: %s", exc)
                    break

    async def _epoch_loop(self) -> None:
        while True:
            await trio.sleep(self.settings.epoch_interval_s)
            try:
                await self.advance_epoch()
            except Exception:  # noqa: BLE001 - the next epoch tries again
                log.exception("trust: epoch decay failed")

    async def advance_epoch(self) -> None:
        """Decay every edge weight by theta (store, memory and MeritRank) and prune the faint ones."""
        theta = self.settings.epoch_decay
        async with self._lock:
            pending, self._pending = self._pending, {}
            await anyio.to_thread.run_sync(self._apply, pending)
            with self.node.store.transaction() as db:
                db.execute("UPDATE trust_edges SET factor = factor * ?", (theta,))
            for kinds in self._kinds.values():
                for kind in kinds:
                    kinds[kind] *= theta
            await anyio.to_thread.run_sync(self._advance_epoch)
            self._dirty = True
        await self.refresh()

    # -- control -------------------------------------------------------------------------
    async def _cmd_add(self, args: dict) -> dict:
        peer, weight, kind = args.get("peer"), args.get("weight", 1.0), args.get("kind", "declared")
        if not isinstance(peer, str) or not isinstance(kind, str):
            raise CommandError("trust.add needs 'peer' (a peer id) and an optional 'kind' string")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise CommandError("trust.add 'weight' must be a number")
        try:
            edge = await self.add_own_edge(peer, float(weight), kind)
        except ValueError as exc:
            raise CommandError(f"cannot add edge: {exc}") from exc
        return {"src": self.me, "dst": edge.dst, "weight": edge.weight, "kind": edge.kind, "seq": edge.seq}

    async def _cmd_rank(self, args: dict) -> dict:
        k = args.get("k", 20)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= self.settings.max_rows:
            raise CommandError(f"trust.rank 'k' must be an int in 1..{self.settings.max_rows}")
        await self.refresh()
        top = self.top_k(k)
        async with self._lock:
            walks = await anyio.to_thread.run_sync(self._walks_reaching, [peer for peer, _ in top])
        rows = [
            {"rank": i + 1, "peer": peer, "score": score, "walks": n}
            for i, ((peer, score), n) in enumerate(zip(top, walks))
        ]
        return {"ego": self.me, "walks": self.settings.walks, "peers": len(self._scores), "rows": rows}

    async def _cmd_edges(self, args: dict) -> dict:
        src = args.get("src")
        where, params = ("WHERE src=?", [src]) if isinstance(src, str) else ("", [])
        rows = self.node.store.query(
            f"SELECT src, dst, kind, weight, factor, seq FROM trust_edges {where} ORDER BY seq DESC LIMIT ?",
            (*params, self.settings.max_rows),
        )
        return {
            "edges": [
                {"src": s, "dst": d, "kind": k, "weight": w, "effective": w * f, "seq": q} for s, d, k, w, f, q in rows
            ]
        }
