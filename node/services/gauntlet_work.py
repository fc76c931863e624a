"""The gauntlet service's worker-thread side: the run's shared dataset, updates honest or not, stale snapshots.

Everything here is synchronous and imports torch; the service calls it through the training
service's worker (one call at a time, under its lock), so the replica is never touched by two
threads at once.

The dataset every node indexes identically: the run's training text (all shards of the run's
corpus split, in shard order) cut into consecutive windows of ``seq_len + 1`` tokens. Index i is
window i. A peer's assigned pool for a round is a seeded draw of indices
(:func:`learning.gauntlet.assigned_pool`); an honest node trains on exactly that pool, and a
validator evaluates on a secret part of it.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from learning.adversaries import COPYCAT, HONEST, LAZY, STALE, PeerInputs, make_update
from learning.corpus import CorpusSettings, stdlib_corpus
from learning.gauntlet import GauntletSettings, assigned_pool
from learning.spsa import UpdateRecord

BYTE_TOKENS = np.uint8
"""Storage type of byte-level tokens (the tiny model): 8× smaller than int64."""


class GauntletWork:
    """One run's dataset windows, loss closures and per-round updates for one node."""

    def __init__(self, trainer, settings: GauntletSettings, cache_dir: Path, stale_lag: int, seed: int) -> None:
        if stale_lag < 1:
            raise ValueError(f"stale_lag must be >= 1, got {stale_lag}")
        self.trainer = trainer
        self.settings = settings
        ann = trainer.ann
        split = stdlib_corpus(CorpusSettings(n_shards=ann.n_shards, seed=ann.data_seed), cache_dir=cache_dir)
        text = b"".join(split.shards)
        tokenizer = trainer.data.tokenizer
        if tokenizer is None:
            tokens = np.frombuffer(text, dtype=BYTE_TOKENS)
            width = ann.seq_len + 1
        else:
            tokens = np.asarray(tokenizer(text.decode("utf-8", errors="replace"))["input_ids"], dtype=np.int64)
            width = ann.seq_len
        count = len(tokens) // width
        if count < settings.assigned_pool_size:
            raise ValueError(f"run corpus has {count} windows, fewer than a pool of {settings.assigned_pool_size}")
        self.windows = tokens[: count * width].reshape(count, width)
        self.stale_lag = stale_lag
        self._snapshots: deque[dict[str, torch.Tensor]] = deque(maxlen=stale_lag + 1)
        self._rng = np.random.default_rng(seed)

    @property
    def dataset_size(self) -> int:
        """Windows in the shared dataset."""
        return len(self.windows)

    def make_loss(self, indices: Sequence[int] | np.ndarray) -> Callable[[torch.nn.Module], torch.Tensor]:
        """Loss closure on the windows ``indices`` (the same on every node)."""
        batch = torch.from_numpy(self.windows[np.asarray(indices, dtype=np.int64)].astype(np.int64))
        data = self.trainer.data
        return lambda model: data.loss(model, batch)

    def assigned_loss(self, peer: bytes, round_: int) -> Callable[[torch.nn.Module], torch.Tensor]:
        """Loss on ``peer``'s assigned pool of ``round_`` (what it must train on)."""
        ann = self.trainer.ann
        return self.make_loss(assigned_pool(ann.run, peer, round_, self.settings.assigned_pool_size,
                                            self.dataset_size))

    # -- this node's update --------------------------------------------------------------
    def update(self, kind: str, seen: Sequence[UpdateRecord]) -> tuple[UpdateRecord | None, float]:
        """The record this node publishes this round as behaviour ``kind``, and its loss on its pool."""
        replica = self.trainer.replica
        peer, round_ = self.trainer.peer, replica.round
        own = self.assigned_loss(peer, round_)
        with torch.no_grad():
            train_loss = float(own(replica.model))
        inputs = PeerInputs(
            model=replica.model, run=replica.run, round=round_, peer=peer, spsa=replica.settings,
            assigned_loss=own,
            random_loss=self._random_loss() if kind == LAZY else None,
            seen=tuple(seen) if kind == COPYCAT else (),
            stale_model=self._stale_model() if kind == STALE else None,
            rng=self._rng,
        )
        with torch.no_grad():
            record = make_update(kind, inputs)
        return record, train_loss

    def _random_loss(self) -> Callable[[torch.nn.Module], torch.Tensor]:
        picks = self._rng.choice(self.dataset_size, size=self.settings.assigned_pool_size, replace=False)
        return self.make_loss(np.sort(picks))

    def _stale_model(self) -> torch.nn.Module:
        """A copy of the replica as it was ``stale_lag`` rounds ago (the current one early in a run)."""
        model = copy.deepcopy(self.trainer.replica.model)
        if self._snapshots:
            model.load_state_dict(self._snapshots[0])
        return model

    def snapshot(self) -> None:
        """Remember the replica's parameters at a round's base (the stale behaviour lags on these)."""
        state = {k: v.detach().clone() for k, v in self.trainer.replica.model.state_dict().items()}
        self._snapshots.append(state)


def honest_kind(adversary: str | None) -> str:
    """The behaviour name for ``make_update`` (honest unless an adversary kind is set)."""
    return adversary or HONEST
