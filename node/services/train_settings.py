"""Settings of the training service (node options ``--opt train.KEY=VALUE``) and new-run defaults."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from protocols.spsa import RunAnnouncement

OPTION_PREFIX = "train."
"""Node options of this service are ``train.<field>``."""


@dataclass(frozen=True)
class TrainSettings:
    """Local tuning of the training service plus the defaults of runs this node creates."""

    round_s: float = 3.0
    """Default round length of a new run (seconds): its deadline."""
    start_delay_s: float = 5.0
    """A new run opens round 0 this long after `train.start`, so that peers can join from the start."""
    rounds: int = 30
    """Default number of rounds of a new run."""
    samples_per_round: int = 1
    """Default bytes (samples) per peer and round of a new run."""
    lr: float = 1e-3
    """Default learning rate of a new run (1e-3 is MeZO's stable choice on the tiny model here)."""
    hf_lr: float = 1e-6
    """Default learning rate of a new run on a pretrained (Hugging Face) model: MeZO fine-tunes those at
    1e-6..1e-7; the tiny model's 1e-3 makes a 135M model's loss explode within one round."""
    eps: float = 1e-3
    """Default MeZO perturbation scale of a new run."""
    batch_size: int = 8
    """Default training batch (sequences) of a new run."""
    seq_len: int = 64
    """Default training sequence length of a new run."""
    n_shards: int = 4
    """Default number of corpus shards of a new run."""
    data_seed: int = 0
    """Default seed of the corpus split and evaluation batches of a new run."""
    shard: int = -1
    """This node's training shard (-1: derived from the peer id)."""
    publish_cutoff: float = 0.5
    """A node publishes its update only in the first part of a round (fraction): the rest is for propagation."""
    checkpoint_every: int = 5
    """Rounds between checkpoints on disk (the log covers the rounds in between)."""
    eval_every: int = 1
    """Rounds between evaluations."""
    eval_batches: int = 2
    """Evaluation batches."""
    eval_batch_size: int = 8
    """Sequences per evaluation batch."""
    announce_every: int = 5
    """Rounds between re-announcements of the run (late joiners learn it from them)."""
    settle_peers: int = 4
    """Peers asked for their final checksum when a run ends (a minority replica then re-syncs)."""
    sync_timeout_s: float = 60.0
    """Bound on one catch-up exchange (dial, checkpoint and log)."""
    max_sync_bytes: int = 1 << 30
    """Largest checkpoint + log this node accepts from a peer."""

    def validate(self) -> None:
        """Raise ValueError on values no run can use."""
        for name in ("round_s", "start_delay_s", "lr", "hf_lr", "eps", "sync_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"train.{name} must be > 0")
        for name in ("rounds", "samples_per_round", "batch_size", "seq_len", "n_shards", "checkpoint_every",
                     "eval_every", "eval_batches", "eval_batch_size", "announce_every", "max_sync_bytes",
                     "settle_peers"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1")
        if not 0 < self.publish_cutoff < 1:
            raise ValueError("train.publish_cutoff must be in (0, 1)")

    @classmethod
    def from_options(cls, option: Callable[[str], str | None]) -> "TrainSettings":
        """Defaults overridden by ``--opt train.<field>=<value>``."""
        values = {}
        for f in dataclasses.fields(cls):
            raw = option(OPTION_PREFIX + f.name)
            if raw is not None:
                kind = type(f.default)
                try:
                    values[f.name] = kind(raw)
                except ValueError as exc:
                    raise ValueError(f"--opt train.{f.name}={raw!r}: {exc}") from exc
        settings = cls(**values)
        settings.validate()
        return settings

    def eval_spec(self):
        """The evaluation shape (imported lazily: it lives with the torch code)."""
        from node.services.train_state import EvalSpec

        return EvalSpec(batches=self.eval_batches, batch_size=self.eval_batch_size)


def announcement_for(args: dict, settings: TrainSettings, now: float | None = None) -> RunAnnouncement:
    """A new run from `train.start` arguments and this node's defaults; ValueError if invalid."""
    now = time.time() if now is None else now

    def arg(name: str, default):
        value = args.get(name)
        return default if value is None else type(default)(value)

    ann = RunAnnouncement(
        run=str(args["run"]),
        model=arg("model", "tiny"),
        rounds=arg("rounds", settings.rounds),
        round_s=arg("round_s", settings.round_s),
        start_time=now + arg("start_delay_s", settings.start_delay_s),
        samples_per_round=arg("samples_per_round", settings.samples_per_round),
        eps=arg("eps", settings.eps),
        lr=arg("lr", settings.lr if args.get("model", "tiny") == "tiny" else settings.hf_lr),
        weight_decay=0.0,
        codec_min=1e-3,
        codec_max=1e4,
        perturbation="gaussian",
        batch_size=arg("batch_size", settings.batch_size),
        seq_len=arg("seq_len", settings.seq_len),
        n_shards=arg("n_shards", settings.n_shards),
        data_seed=settings.data_seed,
    )
    from protocols.codec import decode, encode

    return decode(encode(ann), expect=RunAnnouncement)  # the wire limits and check() validate it
