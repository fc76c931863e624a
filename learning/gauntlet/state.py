"""One node's scoring state: per-peer ratings, EMAs, uptime and slashes, and the per-round updates.

Final score (templar's, with our clipping):
    final = max(0, ordinal) × max(0, binary EMA) × sync × activity × reliability
A negative ordinal (μ − 3σ below zero) means the rating system is confident the peer is worse than a
fresh one, so it earns nothing rather than flipping sign with a negative EMA. `activity` decays ×0.75
per silent round and `reliability` ×0.75 per slash; both recover a fraction per clean round.
Everything serialises to a plain dict (`to_dict` / `from_dict`) for the node's SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from openskill.models import PlackettLuce

from learning.gauntlet.evaluate import PeerEval
from learning.gauntlet.filters import DuplicateGuard, Screening
from learning.gauntlet.settings import GauntletSettings

STATE_VERSION = 1
"""Version of the dict layout written by `GauntletState.to_dict`."""
NEVER = -1
"""Round marker for 'never happened'."""
FLAG_INACTIVE = "inactive"
"""Raised for a known peer that published nothing this round."""


@dataclass
class PeerState:
    """What one node believes about one peer."""

    mu: float
    """OpenSkill mean skill."""
    sigma: float
    """OpenSkill skill uncertainty."""
    binary_ema: float = 0.0
    """EMA of the own-versus-random indicator (+1 / −1)."""
    sync: float = 0.0
    """Sync score of the peer's last accepted record (0 until one is seen)."""
    activity: float = 1.0
    """Uptime multiplier: ×inactive_decay per silent round, recovers on active rounds."""
    reliability: float = 1.0
    """Reliability multiplier: ×slash_factor per slash, recovers on clean rounds."""
    active_rounds: list[int] = field(default_factory=list)
    """Recent rounds (within the uptime window) with an accepted update."""
    last_evaluated: int = NEVER
    """Last round this node ran stage 2 (or scored a rejected record) for the peer."""
    slashes: int = 0
    """Slashes so far."""
    evaluations: int = 0
    """Matches the peer took part in."""
    flags: list[str] = field(default_factory=list)
    """Flags raised in the last round the peer was screened."""


class GauntletState:
    """Per-peer scoring state of one validating node; updated once per round."""

    def __init__(self, settings: GauntletSettings) -> None:
        settings.validate()
        self.settings = settings
        self.model = PlackettLuce(beta=settings.openskill_beta, tau=settings.openskill_tau)
        self.peers: dict[bytes, PeerState] = {}
        self.guard = DuplicateGuard(settings)
        self.last_round = NEVER

    def peer(self, peer: bytes) -> PeerState:
        """The state of `peer`, created with the OpenSkill prior on first sight."""
        if peer not in self.peers:
            self.peers[peer] = PeerState(mu=self.model.mu, sigma=self.model.sigma)
        return self.peers[peer]

    def uptime(self, peer: bytes) -> float:
        """Fraction of the last `uptime_window` rounds with an accepted update from `peer`."""
        state = self.peers.get(peer)
        if state is None or self.last_round == NEVER:
            return 0.0
        window = self.settings.uptime_window
        recent = [r for r in state.active_rounds if r > self.last_round - window]
        return len(recent) / window

    def apply_screenings(self, round_: int, screenings: Mapping[bytes, Screening],
                         known_peers: Iterable[bytes] = ()) -> None:
        """Stage-1 bookkeeping: decay the silent, slash the unreliable, credit the accepted."""
        if round_ < self.last_round:
            raise ValueError(f"round {round_} is before the last scored round {self.last_round}")
        s = self.settings
        for peer in set(known_peers) - set(screenings):
            state = self.peer(peer)
            state.activity *= s.inactive_decay
            state.flags = [FLAG_INACTIVE]
        for peer, verdict in screenings.items():
            state = self.peer(peer)
            state.flags = list(verdict.flags)
            if not verdict.accepted:
                state.reliability *= s.slash_factor
                state.slashes += 1
                continue
            state.reliability += s.standing_recovery * (1.0 - state.reliability)
            state.activity += s.standing_recovery * (1.0 - state.activity)
            state.sync = verdict.sync
            state.active_rounds = [r for r in state.active_rounds
                                   if r > round_ - s.uptime_window] + [round_]
        self.last_round = round_

    def apply_evaluations(self, round_: int, evaluations: Mapping[bytes, PeerEval],
                          rejected: Iterable[bytes] = ()) -> None:
        """Stage-2 bookkeeping: binary EMA per evaluated peer and one OpenSkill match for the round.

        Peers in `rejected` (their record failed stage 1) join the match with the lowest score and
        a −1 indicator, at no forward-pass cost.
        """
        s = self.settings
        players: dict[bytes, tuple[float, int]] = {}
        for peer in sorted(set(rejected) - set(evaluations)):
            players[peer] = (s.rejected_match_score, -1)
        for peer, ev in evaluations.items():
            gain = min(1.0, max(s.gain_floor, ev.random_gain))
            players[peer] = (gain, ev.indicator)
        for peer, (_, indicator) in players.items():
            state = self.peer(peer)
            state.binary_ema = (1 - s.binary_ema_alpha) * state.binary_ema + s.binary_ema_alpha * indicator
            state.last_evaluated = round_
            state.evaluations += 1
        if len(players) >= 2:
            self.rate_match({peer: score for peer, (score, _) in players.items()})

    def rate_match(self, scores: Mapping[bytes, float]) -> None:
        """One OpenSkill PlackettLuce match: every peer a one-player team, higher score wins."""
        if len(scores) < 2:
            raise ValueError(f"a match needs at least 2 players, got {len(scores)}")
        order = sorted(scores)
        teams = [[self.model.rating(mu=self.peer(p).mu, sigma=self.peer(p).sigma)] for p in order]
        rated = self.model.rate(teams, scores=[float(scores[p]) for p in order])
        for peer, (rating,) in zip(order, rated):
            self.peers[peer].mu = rating.mu
            self.peers[peer].sigma = rating.sigma

    def ordinal(self, peer: bytes) -> float:
        """μ − z·σ of `peer` (the prior's ordinal for an unknown peer)."""
        state = self.peers.get(peer) or PeerState(mu=self.model.mu, sigma=self.model.sigma)
        return state.mu - self.settings.ordinal_z * state.sigma

    def final_score(self, peer: bytes) -> float:
        """max(0, ordinal) × max(0, binary EMA) × sync × activity × reliability (0 if unknown)."""
        state = self.peers.get(peer)
        if state is None:
            return 0.0
        return (max(0.0, self.ordinal(peer)) * max(0.0, state.binary_ema) * state.sync
                * state.activity * state.reliability)

    def final_scores(self) -> dict[bytes, float]:
        """Final score of every known peer."""
        return {peer: self.final_score(peer) for peer in sorted(self.peers)}

    def to_dict(self) -> dict:
        """Plain-dict snapshot (hex peer ids) that `from_dict` restores exactly."""
        return {
            "version": STATE_VERSION,
            "last_round": self.last_round,
            "peers": {peer.hex(): asdict(state) for peer, state in sorted(self.peers.items())},
            "guard": self.guard.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping, settings: GauntletSettings) -> GauntletState:
        """Rebuild the state `to_dict` wrote; raise ValueError on another layout version."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported gauntlet state version {data.get('version')!r}")
        state = cls(settings)
        state.last_round = int(data["last_round"])
        for hex_id, fields in data["peers"].items():
            state.peers[bytes.fromhex(hex_id)] = PeerState(**fields)
        state.guard = DuplicateGuard.from_dict(data["guard"], settings)
        return state
