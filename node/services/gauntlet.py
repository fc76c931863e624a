"""Gauntlet-style contribution scoring in the node: validate, publish scores, weight the rounds.

The training service calls three hooks (each a no-op unless this service runs):

* :meth:`GauntletService.on_admitted` for every update admitted to the replica (arrival order and
  time: stage 1 needs both);
* :meth:`GauntletService.own_update` instead of its own update when scoring is on or the node is
  an adversary: honest nodes train on their assigned pool, adversaries misbehave on the wire;
* :meth:`GauntletService.on_close` before a round is applied: this node scores the round
  (:meth:`learning.gauntlet.Validator.score_round` in the training worker, on the replica the round
  was built on), publishes its signed :class:`protocols.gauntlet.ScoreMessage`, and returns the
  weights the round is applied with.

Weights must be the same on every replica or the replicas diverge, so they never depend on this
node's own view. The **weight rule** for round r: take the score records of round r − lag that
this node admitted from the validators who contributed an update to round r (the records of a
round are the same on every in-sync replica: the checksum proves it), combine them with equal
weight per validator (``combine_scores`` with reputation 1.0 each), turn them into
``aggregation_weights`` and ``round_weights`` over round r's peers. While no contributor has a
positive combined score (the first rounds) every update weighs 0, as in the core: nobody has earned
trust yet, so nothing moves the model (``--opt gauntlet.weigh=0`` applies every update with weight
1 instead: the unweighted baseline). In every case, updates whose
payload equals another update's in the same round weigh 0 (both: a copy cannot be told from its
original by data every replica shares). Limits: a node that missed one of those score records
computes other weights, diverges, and re-syncs from its peers (the update log carries the weights
used); a validator counts once per contributed update, so a Sybil swarm must also contribute a
valid update per identity per round to weigh in, and then it is scored like everyone else.

This node's own view (what ``plexus scores`` shows and what becomes contribution trust edges)
combines the validators' latest records weighted by their MeritRank reputation from here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from node.control import CommandError
from node.runtime import Node
from protocols import gauntlet as wire
from protocols.validation import Validation, ignore

log = logging.getLogger(__name__)

OPTION_PREFIX = "gauntlet."
"""Node options of this service are ``gauntlet.<field>`` (service and core settings alike)."""
ADVERSARY_OPTION = "adversary"
"""Node option naming an adversary kind (``plexus run --adversary KIND``)."""
SECRET_KEY = "gauntlet.secret"
"""Store key of this node's evaluator secret (random, never published)."""
SECRET_BYTES = 32
"""Length of the evaluator secret."""
SCHEMA = ("""CREATE TABLE IF NOT EXISTS gauntlet_state (
    run TEXT PRIMARY KEY, state TEXT NOT NULL, book TEXT NOT NULL, history TEXT NOT NULL)""",)
TRUE_WORDS = ("1", "true", "yes", "on")
"""Option values read as true."""
ADVERSARY_KINDS = ("freerider", "freerider_zeros", "noise", "copycat", "stale", "lazy")
"""Mirror of learning.adversaries' kinds (that module imports torch; the daemon starts without it)."""


@dataclass(frozen=True)
class GauntletNodeSettings:
    """How this node takes part in scoring (``--opt gauntlet.<field>=<value>``)."""

    enabled: bool = False
    """Score rounds and weight them. Every node of a run must agree (the weights are part of the replica)."""
    weigh: bool = True
    """Apply rounds with the score-based weights (False: score, but apply every update with weight 1,
    the unweighted baseline). Every node of a run must agree."""
    lag: int = 2
    """Round r is weighted by the score records of round r − lag (they had lag − 1 rounds to spread)."""
    trust_every: int = 5
    """Rounds between updates of this node's contribution trust edges."""
    trust_min_change: float = 0.1
    """An edge is republished only if its weight moved at least this much."""
    trust_max_edges: int = 8
    """Most contribution edges published per update (one gossip message each)."""
    stale_lag: int = 3
    """Rounds the ``stale`` adversary's replica lags behind."""
    copycat_wait: float = 0.3
    """Fraction of the round a ``copycat`` waits for someone to copy."""
    history_rounds: int = 500
    """Rounds of score history kept (for plots and reports)."""

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        for name in ("lag", "trust_every", "trust_max_edges", "stale_lag", "history_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"gauntlet.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.trust_min_change <= 2:
            raise ValueError(f"gauntlet.trust_min_change must be in [0, 2], got {self.trust_min_change}")
        if not 0 < self.copycat_wait < 1:
            raise ValueError(f"gauntlet.copycat_wait must be in (0, 1), got {self.copycat_wait}")


def _parse(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in TRUE_WORDS
    return kind(raw)


def settings_from_options(option, core: bool = False) -> Any:
    """Service settings (or, with ``core``, the core's GauntletSettings: imports torch) from
    ``gauntlet.<field>`` options; ValueError if invalid."""
    if core:
        from learning.gauntlet import GauntletSettings as cls
    else:
        cls = GauntletNodeSettings
    values = {}
    for f in dataclasses.fields(cls):
        raw = option(OPTION_PREFIX + f.name)
        if raw is not None:
            try:
                values[f.name] = _parse(type(f.default), raw)
            except ValueError as exc:
                raise ValueError(f"--opt gauntlet.{f.name}={raw!r}: {exc}") from exc
    settings = cls(**values)
    settings.validate()
    return settings


def _b58(peer: bytes) -> str:
    return ID(peer).to_base58()


class GauntletService:
    """Validator role, score gossip, weights and contribution trust edges."""

    name = "gauntlet"

    def __init__(self) -> None:
        self.node: Node | None = None
        self.settings = GauntletNodeSettings()
        self.core = None
        self.adversary: str | None = None
        self.run: str | None = None
        self.round = -1
        self.validator = None
        self.book = None
        self.work = None
        self.history: list[dict] = []
        self.stats: dict[str, Any] = {"rejected": {}, "admitted": 0, "scored_rounds": 0}
        self._arrivals: dict[int, list] = {}
        self._records: dict[int, dict[bytes, Any]] = {}
        self._recent: dict[bytes, int] = {}
        self._known: set[bytes] = set()
        self._edges: dict[bytes, float] = {}
        self._last: dict[str, Any] = {}
        self._train = None
        self._applied: dict[int, dict[bytes, float] | None] = {}
        self._score_lock = anyio.Lock()
        self._ensure_lock = anyio.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, node: Node) -> None:
        self.node = node
        self.adversary = node.settings.option(ADVERSARY_OPTION)
        if self.adversary is not None and self.adversary not in ADVERSARY_KINDS:
            raise ValueError(f"--adversary {self.adversary!r}: choose one of {', '.join(ADVERSARY_KINDS)}")
        self.settings = settings_from_options(node.settings.option)
        node.store.migrate("gauntlet", 1, list(SCHEMA))
        await node.subscribe(wire.topic(node.settings.network), self._on_scores, self._validate)
        node.control.add("gauntlet.scores", self._cmd_scores)
        node.control.add("gauntlet.configure", self._cmd_configure)

    @property
    def scoring(self) -> bool:
        """True when this node scores rounds and weights them."""
        return self.settings.enabled

    def _secret(self) -> bytes:
        secret = self.node.store.get(SECRET_KEY)
        if not secret:
            secret = os.urandom(SECRET_BYTES)
            self.node.store.put(SECRET_KEY, secret)
        return bytes(secret)

    async def _ensure(self, train) -> bool:
        """Set up (or restore) the state of the training service's current run; False if there is none."""
        ann, trainer = train.ann, train.trainer
        if ann is None or trainer is None or trainer.replica is None:
            return False
        async with self._ensure_lock:
            if self.run != ann.run or self.work is None:
                await self._open_run(train)
        return True

    async def _open_run(self, train) -> None:
        """Load (or create) this node's scoring state and the run's dataset for ``train``'s run."""
        ann, trainer = train.ann, train.trainer
        from learning.gauntlet import ScoreBook, Validator
        from node.services.gauntlet_work import GauntletWork
        from node.services.train import CACHE_DIR

        me = self.node.peer_id.to_bytes()
        self._reset_run()
        if self.core is None:
            self.core = settings_from_options(self.node.settings.option, core=True)
        state, book, history = self.load(ann.run)
        self.validator = Validator(me, self._secret(), self.core, trainer.settings, state)
        self.book = book if book is not None else ScoreBook(self.core)
        self.history = history
        seed = int.from_bytes(self._secret()[:8], "big")
        self.work = await train._work(GauntletWork, trainer, self.core, CACHE_DIR, self.settings.stale_lag, seed)
        self.run = ann.run
        self._train = train
        self._known |= set(self.validator.state.peers)

    def _reset_run(self) -> None:
        """Forget the per-round bookkeeping of the previous run."""
        self._arrivals, self._records, self._recent, self._applied = {}, {}, {}, {}
        self._known, self._edges, self._last = set(), {}, {}
        self.stats = {"rejected": {}, "admitted": 0, "scored_rounds": 0}

    # -- persistence ---------------------------------------------------------------------
    def load(self, run: str):
        """(GauntletState, ScoreBook, history) of ``run`` from the store, or (None, None, []) if none."""
        from learning.gauntlet import GauntletState, ScoreBook

        if self.core is None:
            self.core = settings_from_options(self.node.settings.option, core=True)

        rows = self.node.store.query("SELECT state, book, history FROM gauntlet_state WHERE run=?", (run,))
        if not rows:
            return None, None, []
        state, book, history = rows[0]
        log.info("gauntlet: restored the scores of run %s", run)
        return (GauntletState.from_dict(json.loads(state), self.core),
                ScoreBook.from_dict(json.loads(book), self.core), json.loads(history))

    def _save(self) -> None:
        with self.node.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO gauntlet_state(run, state, book, history) VALUES(?, ?, ?, ?)",
                       (self.run, json.dumps(self.validator.state.to_dict()), json.dumps(self.book.to_dict()),
                        json.dumps(self.history[-self.settings.history_rounds:])))

    # -- score gossip --------------------------------------------------------------------
    def _validate(self, _author: str, msg: rpc_pb2.Message) -> Validation:
        if self.book is None:
            return ignore("not scoring a run")
        current = self._train.round if self._train is not None else self.round
        verdict, received = wire.check_score_frame(msg.data, self.run, current + 1, self.book)
        if received is None:
            reasons = self.stats["rejected"]
            key = verdict.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
            return verdict
        record = received.msg.to_record()
        self._records.setdefault(record.round, {})[record.validator] = record
        self._known.add(record.validator)
        self.stats["admitted"] += 1
        return verdict

    async def _on_scores(self, _msg: rpc_pb2.Message) -> None:
        """Accepted records were admitted by the validator already; nothing more to do."""

    # -- hooks called by the training service --------------------------------------------
    def on_admitted(self, record, arrived: float | None = None) -> None:
        """Remember an update admitted to the replica, in arrival order, with its arrival time."""
        self._arrivals.setdefault(record.round, []).append((record, time.time() if arrived is None else arrived))
        self._known.add(record.peer)

    def misbehaves(self) -> bool:
        """True when this node builds its own updates (scoring on, or an adversary)."""
        return self.scoring or self.adversary is not None

    async def own_update(self, train):
        """(record or None, train loss) this node publishes this round (honest or as its adversary kind)."""
        from learning.adversaries import COPYCAT
        from node.services.gauntlet_work import honest_kind

        if not await self._ensure(train):
            return None, float("nan")
        round_ = train.trainer.replica.round
        if self.adversary == COPYCAT:
            me = self.node.peer_id.to_bytes()
            until = train.ann.opens(round_) + self.settings.copycat_wait * train.ann.round_s
            while time.time() < until and not [r for r, _ in self._arrivals.get(round_, ()) if r.peer != me]:
                await anyio.sleep(min(0.05, max(0.0, until - time.time())))
        seen = [r for r, _ in self._arrivals.get(round_, ())]
        return await train._work(self.work.update, honest_kind(self.adversary), seen)

    async def on_close(self, train) -> Callable[[int, list], dict[bytes, float] | None] | None:
        """Start scoring the closing round in the background; return how to weigh it (or None: unweighted).

        The returned ``weigh(round, records)`` is called by the training worker right before it
        applies the round, with exactly the records it applies (no update can slip in between:
        admission runs in the same worker). The weights come from earlier rounds' score records
        (the weight rule), so the round is applied at once; this round is scored on a copy of its
        base model while the next one trains, and its record is published when ready.
        """
        if not self.misbehaves() or not await self._ensure(train):
            return None
        replica = train.trainer.replica
        round_ = replica.round
        self.round = round_
        if self.adversary == "stale":
            await train._work(self.work.snapshot)
        if not self.scoring:
            self._arrivals.pop(round_, None)
            return None
        base = await train._work(copy.deepcopy, replica.model)
        arrivals = self._arrivals.pop(round_, [])
        for old in [r for r in self._arrivals if r < round_]:
            self._arrivals.pop(old)
        ctx = self._context(train, round_, replica)
        self._recent[replica.checksum] = round_
        for checksum in [c for c, r in self._recent.items() if r < round_ - self.core.sync_max_behind]:
            self._recent.pop(checksum)
        self.node.spawn(f"gauntlet.score[{round_}]", self._score_round, base, ctx, arrivals)
        return self._weigh

    def _weigh(self, round_: int, records: list) -> dict[bytes, float] | None:
        """Worker thread, right before ``round_`` is applied: its weights by the weight rule."""
        weights = self._round_weights(round_, records)
        self._applied[round_] = weights
        for old in [r for r in self._applied if r < round_ - self.settings.lag]:
            self._applied.pop(old)
        log.info("gauntlet %s: round %d applied with weights %s", self.run, round_,
                 None if weights is None else {_b58(p)[-6:]: round(w, 3) for p, w in weights.items()})
        return weights

    def _context(self, train, round_: int, replica):
        from learning.gauntlet import RoundContext
        from learning.spsa import ByteCodec

        ann = train.ann
        return RoundContext(run=ann.run, round=round_, checksum=replica.checksum,
                            recent_checksums=dict(self._recent), expected_grads_len=ann.samples_per_round,
                            codec=ByteCodec.from_settings(replica.settings))

    async def _score_round(self, base, ctx, arrivals: list) -> None:
        """Score one round on its base model (worker thread), publish the record, update edges, persist."""
        async with self._score_lock:
            started = time.monotonic()
            report = await anyio.to_thread.run_sync(self._score, base, ctx, arrivals)
            self.stats["score_s"] = round(time.monotonic() - started, 3)
            await self._publish(report.record)
            self._account(ctx.round, report, self._applied.get(ctx.round))
            if ctx.round % self.settings.trust_every == 0:
                await self._publish_edges()
            self._save()

    # -- scoring -------------------------------------------------------------------------
    def _score(self, base, ctx, arrivals: list):
        """Worker thread: stage 1 and 2 of a round on (a copy of) the model it was built on."""
        from learning.gauntlet import Submission

        deadline = self._train.ann.opens(ctx.round + 1)
        subs = [Submission(rec, authenticated=True, on_time=at <= deadline) for rec, at in arrivals]
        report = self.validator.score_round(base, ctx, subs, self.work.make_loss, self.work.dataset_size,
                                            known_peers=self._known - {self.node.peer_id.to_bytes()})
        self.stats["scored_rounds"] += 1
        self.stats["forward_passes"] = report.forward_passes
        self.stats["evaluated"] = len(report.evaluations)
        self.stats["submissions"] = len(subs)
        self.stats["accepted"] = len(report.accepted)
        return report

    def _round_weights(self, round_: int, records) -> dict[bytes, float] | None:
        """The weight rule (module docstring): same inputs on every in-sync replica, same weights."""
        from learning.gauntlet import aggregation_weights, combine_scores, round_weights

        peers = sorted({r.peer for r in records})
        if not peers:
            return None
        contributors = set(peers)
        held = dict(self._records.get(round_ - self.settings.lag, {}))  # a copy: the event loop adds to it
        scored = [rec for v, rec in sorted(held.items())
                  if v in contributors]
        combined = combine_scores(scored, dict.fromkeys(contributors, 1.0), self.core)
        weights = round_weights(aggregation_weights(combined, self.core), peers) if combined else {}
        if not self.settings.weigh:
            weights = dict.fromkeys(peers, 1.0)
        weights = {p: weights.get(p, 0.0) for p in peers}
        for peer in _copied(records, self.core.dedup_min_bytes):
            weights[peer] = 0.0
        for old in [r for r in self._records if r < round_ - self.settings.lag - self.core.score_record_window]:
            self._records.pop(old)
        return weights

    def local_view(self) -> tuple[dict[bytes, float], dict[bytes, float]]:
        """(combined final scores, aggregation weights) from this node's MeritRank view of the validators."""
        from learning.gauntlet import aggregation_weights, combine_scores

        if self.book is None:
            return {}, {}
        reputation = self._reputation()
        combined = combine_scores(self.book.records(), reputation, self.core)
        return combined, aggregation_weights(combined, self.core)

    def _reputation(self) -> dict[bytes, float]:
        """Validators' MeritRank reputation from here; equal weights while the trust graph knows none of them."""
        validators = {rec.validator for rec in self.book.records()}
        me = self.node.peer_id.to_bytes()
        view: Mapping[str, float] = {}
        try:
            view = self.node.service("trust").reputation()
        except KeyError:
            pass
        rep = {}
        for v in validators:
            score = float(view.get(_b58(v), 0.0))
            if score > 0:
                rep[v] = score
        if not rep:
            return dict.fromkeys(validators, 1.0)
        rep[me] = max(rep.get(me, 0.0), max(rep.values()))
        return rep

    def _account(self, round_: int, report, weights) -> None:
        combined, _ = self.local_view()
        own = self.validator.state.final_scores()
        self.history.append({
            "round": round_,
            "own": {p.hex(): round(v, 6) for p, v in own.items()},
            "combined": {p.hex(): round(v, 6) for p, v in combined.items()},
            "weights": None if weights is None else {p.hex(): round(w, 6) for p, w in weights.items()},
            "ordinal": {p.hex(): round(self.validator.state.ordinal(p), 4) for p in own},
            "flags": {p.hex(): list(s.flags) for p, s in report.screenings.items() if s.flags},
        })
        del self.history[: -self.settings.history_rounds]
        self._last = {"round": round_, "weights": weights or {}}

    # -- publishing ----------------------------------------------------------------------
    async def _publish(self, record) -> None:
        frame = wire.sign_scores(wire.score_message(self.run, record), self.node.key_pair.private_key)
        try:
            await self.node.publish(wire.topic(self.node.settings.network), frame)
        except Exception as exc:  # noqa: BLE001 - no peers yet or publish budget: the next round publishes again
            log.info("gauntlet: scores of round %d not published: %s", record.round, exc)

    async def _publish_edges(self) -> None:
        """Contribution trust edges from this node's own scores (throttled: only changed ones, a few per call)."""
        from learning.gauntlet import trust_edges

        try:
            trust = self.node.service("trust")
        except KeyError:
            return
        me = self.node.peer_id.to_bytes()
        changed = [(p, w) for p, w in trust_edges(self.validator.state)
                   if p != me and abs(w - self._edges.get(p, 0.0)) >= self.settings.trust_min_change]
        changed.sort(key=lambda pw: -abs(pw[1] - self._edges.get(pw[0], 0.0)))
        for peer, weight in changed[: self.settings.trust_max_edges]:
            try:
                await trust.add_own_edge(_b58(peer), weight, kind="contribution")
            except ValueError as exc:
                log.info("gauntlet: contribution edge to %s refused: %s", _b58(peer), exc)
                continue
            self._edges[peer] = weight
            self.stats["edges_published"] = self.stats.get("edges_published", 0) + 1

    # -- control -------------------------------------------------------------------------
    async def _cmd_configure(self, args: dict) -> dict:
        """Change ``enabled`` / ``weigh`` between runs (every node of a run must agree on both)."""
        changes = {k: args[k] for k in ("enabled", "weigh") if k in args}
        if not changes or not all(isinstance(v, bool) for v in changes.values()):
            raise CommandError("give enabled and/or weigh as booleans")
        if self._train is not None and self._train.state in ("training", "waiting", "loading", "syncing"):
            raise CommandError("a run is in progress: configure between runs")
        self.settings = dataclasses.replace(self.settings, **changes)
        return {"enabled": self.settings.enabled, "weigh": self.settings.weigh}

    async def _cmd_scores(self, args: dict) -> dict:
        from learning.gauntlet import score_rows

        if self.validator is None:
            if args.get("strict"):
                raise CommandError("no run scored yet")
            return {"run": self.run, "round": self.round, "enabled": self.scoring, "adversary": self.adversary,
                    "peers": [], "stats": self.stats}
        combined, _ = self.local_view()
        weights = self._last.get("weights", {})
        rows = score_rows(self.validator.state, combined or None, weights)
        me = self.node.peer_id.to_bytes()
        for row in rows:
            peer = bytes.fromhex(row["peer"])
            row["peer_id"] = _b58(peer)
            row["own_final"] = self.validator.state.final_score(peer)
            row["self"] = peer == me
        out = {"run": self.run, "round": self.round, "enabled": self.scoring, "weigh": self.settings.weigh,
               "adversary": self.adversary, "validators": len(self.book.records()), "peers": rows, "stats": self.stats}
        if args.get("history"):
            out["history"] = self.history
        return out


def _copied(records, min_bytes: int) -> set[bytes]:
    """Peers whose payload equals another peer's in the same round (deterministic on every replica)."""
    owners: dict[bytes, list[bytes]] = {}
    for rec in records:
        if len(rec.grads) >= min_bytes:
            owners.setdefault(rec.grads, []).append(rec.peer)
    return {p for peers in owners.values() if len(peers) > 1 for p in peers}
