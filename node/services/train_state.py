"""The training service's worker-thread side: model, data, the replica and its persistence.

Everything here is synchronous and imports torch: the service imports this module only when a
run starts and calls every :class:`Trainer` method through ``anyio.to_thread`` under one lock,
so the event loop never runs torch and the replica is never touched by two threads at once.

Persistence under the node home: ``train/<run>/checkpoint.pt`` (atomic, every few rounds and after
every sync) and two SQLite tables with the update log after that checkpoint (every admitted
record as the signed GossipSub message it came in, every closed round's checksum). A restarted
node rebuilds its replica from both (:meth:`Trainer.resume`) and then catches up from a peer.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from learning.corpus import CorpusSettings, CorpusSplit, eval_batches, stdlib_corpus
from learning.models import TINY, build_tiny, loss
from learning.consensus import resync_sources
from learning.spsa import Replica, UpdateLog, UpdateRecord, derive_seed
from node.store import Store
from protocols.spsa import NO_CHECKPOINT, RunAnnouncement, SyncAnswer, record_from_raw

log = logging.getLogger(__name__)

TINY_MODEL = "tiny"
"""Model name of the built-in tiny byte-level LM."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS spsa_log (
        run TEXT NOT NULL, round INTEGER NOT NULL, peer BLOB NOT NULL, raw BLOB NOT NULL,
        PRIMARY KEY (run, round, peer))""",
    """CREATE TABLE IF NOT EXISTS spsa_rounds (
        run TEXT NOT NULL, round INTEGER NOT NULL, checksum BLOB NOT NULL, PRIMARY KEY (run, round))""",
)
RECENT_CHECKSUMS = 16
"""Own earlier base checksums remembered to tell a lagging peer's record from a split."""
DATA_DOMAIN = "/data"
"""Suffix of the run name in the seed of training batches (distinct from perturbation seeds)."""


@dataclass(frozen=True)
class EvalSpec:
    """How a node measures eval loss (local choice; the batches come from the run's data seed)."""

    batches: int = 2
    """Evaluation batches."""
    batch_size: int = 8
    """Sequences per evaluation batch."""


@dataclass(frozen=True)
class RoundResult:
    """What closing a round tells the service."""

    round: int
    """The round closed."""
    checksum: bytes
    """Parameter checksum after it."""
    peers: int
    """Records applied."""
    diverged_from: tuple[bytes, ...]
    """Authors of the records built on the checksum that won the round's vote, if not ours (else empty)."""


def shard_of(peer: bytes, n_shards: int) -> int:
    """Default training shard of a peer: a hash of its id."""
    return int.from_bytes(hashlib.blake2b(peer, digest_size=8).digest(), "big") % n_shards


def build_model(name: str) -> tuple[torch.nn.Module, Callable | None]:
    """The run's initial model (identical on every peer) and its tokenizer (None: bytes)."""
    if name == TINY_MODEL:
        return build_tiny(TINY), None
    from learning.models import load_causal_lm

    return load_causal_lm(name)


def run_corpus(ann: RunAnnouncement, cache_dir: Path) -> CorpusSplit:
    """The run's corpus split (the stdlib docstrings, cut by the run's shard count and seed)."""
    return stdlib_corpus(CorpusSettings(n_shards=ann.n_shards, seed=ann.data_seed), cache_dir=cache_dir)


class RunData:
    """A peer's training shard and the run's shared evaluation batches, as token arrays."""

    def __init__(self, ann: RunAnnouncement, shard: int, cache_dir: Path, tokenizer, spec: EvalSpec,
                 split: CorpusSplit | None = None) -> None:
        if split is None:
            split = run_corpus(ann, cache_dir)
        self.ann = ann
        self.tokenizer = tokenizer
        self.train = self._tokens(split.shards[shard % ann.n_shards])
        eval_tokens = self._tokens(split.eval)
        if tokenizer is None:
            self.eval = eval_batches(split.eval, spec.batches, spec.batch_size, ann.seq_len, ann.data_seed)
        else:
            self.eval = [self._window(eval_tokens, spec.batch_size, ann.data_seed + i) for i in range(spec.batches)]

    def _tokens(self, text: bytes) -> np.ndarray:
        if self.tokenizer is None:
            return np.frombuffer(text, dtype=np.uint8).astype(np.int64)
        return np.asarray(self.tokenizer(text.decode("utf-8", errors="replace"))["input_ids"], dtype=np.int64)

    def _window(self, tokens: np.ndarray, batch_size: int, seed: int) -> torch.Tensor:
        width = self.ann.seq_len + (1 if self.tokenizer is None else 0)
        starts = np.random.default_rng(seed).integers(0, len(tokens) - width, size=batch_size)
        return torch.from_numpy(np.stack([tokens[s : s + width] for s in starts]))

    def batch(self, run: str, round_: int, peer: bytes, sample: int) -> torch.Tensor:
        """The training batch of one sample (seeded by run, round, peer and sample)."""
        seed = derive_seed(run + DATA_DOMAIN, round_, peer, sample)
        return self._window(self.train, self.ann.batch_size, seed)

    def loss(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Mean next-token loss of ``batch``."""
        if self.tokenizer is None:
            return loss(model, batch)
        from learning.models.hf import causal_lm_loss

        return causal_lm_loss(model, batch)


class Trainer:
    """One run's replica on this node, with its data and persistence. Call from one worker thread at a time."""

    def __init__(self, ann: RunAnnouncement, peer: bytes, shard: int, root: Path, store: Store, cache_dir: Path,
                 spec: EvalSpec = EvalSpec()) -> None:
        torch.set_num_threads(1)
        self.ann = ann
        self.settings = ann.spsa_settings()
        self.peer = peer
        self.root = root
        self.store = store
        self.model, tokenizer = build_model(ann.model)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.data = RunData(ann, shard, cache_dir, tokenizer, spec)
        self.replica: Replica | None = None
        self.log_base = NO_CHECKPOINT
        self.ckpt_round = NO_CHECKPOINT
        self.bases: dict[int, dict[bytes, bytes]] = {}
        self.recent_checksums: deque[bytes] = deque(maxlen=RECENT_CHECKSUMS)
        """Our base checksums of the last rounds: a record built on one of them lags, it is no split."""
        store.migrate("spsa", 1, SCHEMA)

    @property
    def checkpoint_path(self) -> Path:
        return self.root / "checkpoint.pt"

    # -- lifecycle ---------------------------------------------------------------------------
    def fresh(self) -> None:
        """Start at round 0 from the initial model (a peer present before the run starts)."""
        self.replica = Replica(self.model, self.settings, self.ann.run)
        self._forget_log()
        self.save()
        self.log_base = self.ckpt_round

    def resume(self) -> bool:
        """Rebuild the replica from the checkpoint and logged rounds on disk; False if there are none."""
        if not self.checkpoint_path.exists():
            return False
        run = self.ann.run
        history = UpdateLog(run)
        closed = dict(self.store.query("SELECT round, checksum FROM spsa_rounds WHERE run=?", (run,)))
        rows = self.store.query("SELECT round, raw FROM spsa_log WHERE run=? ORDER BY round", (run,))
        for round_ in sorted({r for r, _ in rows} | set(closed)):
            for r, raw in rows:
                if r == round_:
                    history.append(record_from_raw(bytes(raw)), bytes(raw))
            if round_ in closed:
                history.close_round(round_, bytes(closed[round_]))
        self.ckpt_round = self._checkpoint_round()
        self.replica = Replica.join(self.model, self.settings, self.checkpoint_path, history)
        self.log_base = self.ckpt_round
        self.bases = self._open_bases(history)
        return True

    def _checkpoint_round(self) -> int:
        payload = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        return int(payload["round"])

    def save(self) -> None:
        """Checkpoint the replica as of its last closed round (atomic)."""
        self.replica.save(self.checkpoint_path)
        self.ckpt_round = self.replica.round - 1

    # -- a round -----------------------------------------------------------------------------
    def own_update(self) -> tuple[UpdateRecord, float]:
        """This peer's record of the current round and its mean training loss (ℓ+ and ℓ−)."""
        replica = self.replica
        seen: list[float] = []

        def loss_of(batch: torch.Tensor) -> Callable[[torch.nn.Module], torch.Tensor]:
            def fn(model: torch.nn.Module) -> torch.Tensor:
                value = self.data.loss(model, batch)
                seen.append(float(value))
                return value

            return fn

        losses = [loss_of(self.data.batch(self.ann.run, replica.round, self.peer, s))
                  for s in range(self.settings.samples_per_round)]
        with torch.no_grad():
            record = replica.own_update(self.peer, losses)
        return record, sum(seen) / len(seen)

    def admit(self, record: UpdateRecord, raw: bytes) -> None:
        """Admit a record (ValueError(reason) if refused; the replica is then untouched) and log it."""
        self.replica.admit(record, raw)
        self.bases.setdefault(record.round, {})[record.peer] = record.base_checksum
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO spsa_log(run, round, peer, raw) VALUES(?, ?, ?, ?)",
                       (record.run, record.round, record.peer, raw))

    def close_round(self, checkpoint_every: int, weigh: Callable | None = None) -> RoundResult:
        """Apply the current round, persist its checksum, and say whether we disagreed with most peers.

        ``weigh(round, records) -> weights | None`` (the gauntlet service's) gives the weights the
        round's records are applied with; called here, so no record is admitted in between.
        """
        replica = self.replica
        round_, mine = replica.round, replica.checksum
        bases = self.bases.pop(round_, {})
        diverged = resync_sources(bases, mine, self.recent_checksums)
        weights = None if weigh is None else weigh(round_, replica.log.records(round_))
        with torch.no_grad():
            checksum = replica.close_round(weights)
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO spsa_rounds(run, round, checksum) VALUES(?, ?, ?)",
                       (self.ann.run, round_, checksum))
        if (round_ + 1) % checkpoint_every == 0:
            self.save()
        self.recent_checksums.append(mine)
        return RoundResult(round_, checksum, len(bases), diverged)

    def evaluate(self) -> float:
        """Mean loss on the run's shared evaluation batches."""
        with torch.no_grad():
            return sum(float(self.data.loss(self.replica.model, b)) for b in self.data.eval) / len(self.data.eval)

    # -- sync --------------------------------------------------------------------------------
    def answer(self, after_round: int) -> tuple[int, bytes, bytes, int, bytes]:
        """What a peer whose last closed round is ``after_round`` needs.

        Returns (checkpoint round, checkpoint bytes, log bytes, our last closed round, our checksum).
        """
        replica = self.replica
        closed = (replica.round - 1, replica.checksum)
        if 0 <= after_round and self.log_base <= after_round:
            return (NO_CHECKPOINT, b"", replica.log.to_bytes(after_round)) + closed
        return (self.ckpt_round, self.checkpoint_path.read_bytes(), replica.log.to_bytes(self.ckpt_round)) + closed

    def install(self, answer: SyncAnswer, max_bytes: int) -> None:
        """Adopt a peer's checkpoint (or our own, for a log-only answer) plus its log; every entry's signature is re-checked.

        Raises ``ValueError`` if an entry does not verify or the replay disagrees with a logged checksum.
        """
        history = UpdateLog.from_bytes(answer.log, max_bytes=max_bytes)
        if history.run != self.ann.run:
            raise ValueError(f"log of run {history.run!r}")
        for round_ in history.rounds():
            for entry in history.entries(round_):
                if record_from_raw(entry.raw) != entry.record:
                    raise ValueError(f"round {round_}: a logged record does not match its signed message")
        if answer.header.checkpoint_round == NO_CHECKPOINT:
            if self.replica is None:
                raise ValueError("a log-only answer needs a replica to build on")
            self.save()
            source = self.checkpoint_path
        else:
            source = self.root / "sync.pt.part"
            source.write_bytes(answer.checkpoint)
        model = copy.deepcopy(self.model)  # a failed replay must leave our own replica intact
        try:
            replica = Replica.join(model, self.settings, source, history)
        except BaseException:
            if source != self.checkpoint_path:
                source.unlink(missing_ok=True)
            raise
        if source != self.checkpoint_path:
            os.replace(source, self.checkpoint_path)
        self.model, self.replica = model, replica
        self.ckpt_round = self.log_base = self._checkpoint_round()
        self._rewrite_log(history)
        self.bases = self._open_bases(history)

    @staticmethod
    def _open_bases(history: UpdateLog) -> dict[int, dict[bytes, bytes]]:
        return {r: {e.record.peer: e.record.base_checksum for e in history.entries(r)}
                for r in history.rounds() if history.checksum(r) is None}

    def _rewrite_log(self, history: UpdateLog) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM spsa_log WHERE run=?", (self.ann.run,))
            db.execute("DELETE FROM spsa_rounds WHERE run=?", (self.ann.run,))
            for round_ in history.rounds():
                for entry in history.entries(round_):
                    db.execute("INSERT INTO spsa_log(run, round, peer, raw) VALUES(?, ?, ?, ?)",
                               (self.ann.run, round_, entry.record.peer, entry.raw))
                checksum = history.checksum(round_)
                if checksum is not None:
                    db.execute("INSERT INTO spsa_rounds(run, round, checksum) VALUES(?, ?, ?)",
                               (self.ann.run, round_, checksum))

    def _forget_log(self) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM spsa_log WHERE run=?", (self.ann.run,))
            db.execute("DELETE FROM spsa_rounds WHERE run=?", (self.ann.run,))

