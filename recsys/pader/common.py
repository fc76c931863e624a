"""Settings, layouts and bounds shared by the PADER user and seller roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from crypto.packing import Layout, PackingSettings
from crypto.paillier import PublicKey
from crypto.randomness import RandomnessSettings
from recsys.pader.messages import SESSION_BYTES, PaderError, bytes_to_ct
from recsys.soreg import SoRegSettings

Mapper = Callable[..., Iterable]
"""``map``-like callable (``map``, ``executor.map``) the roles use for heavy batches."""

FLUSH_POLICIES = ("per_item", "per_owner")
"""``per_item``: a block is decrypted once every item in it has ``n_agg`` distinct users (strict privacy).
``per_owner``: once ``n_agg`` user iterations reached the seller (the plaintext reference's rule)."""


@dataclass(frozen=True)
class PaderSettings:
    """Settings of both PADER roles."""

    soreg: SoRegSettings = field(default_factory=SoRegSettings)
    """SoReg hyper-parameters (lr, λ_u, λ_v, β, d)."""
    packing: PackingSettings = field(default_factory=PackingSettings)
    """Fixed point and slot sizing."""
    randomness: RandomnessSettings = field(default_factory=RandomnessSettings)
    """How ``r^n`` values are precomputed."""
    n_agg: int = 2
    """Users whose item gradients a seller aggregates before decrypting (≥ 2)."""
    flush_policy: str = "per_item"
    """When pending item gradients are decrypted (see ``FLUSH_POLICIES``)."""
    split: int = 2
    """Tasks a long multi-exponentiation is cut into (one per core)."""
    max_items: int = 4096
    """Most items in one request (≤ 2^packing.terms_bits)."""
    max_slots: int | None = None
    """Cap on slots per ciphertext (``1`` = unpacked, the naive baseline); ``None``: as many as fit."""
    replay_window: int = 100_000
    """Finished (session, iteration) pairs a seller remembers to refuse replays."""
    max_open_sessions: int = 1024
    """Sessions a seller keeps open; beyond it the oldest is abandoned (its later messages are refused)."""

    def validate(self) -> "PaderSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        self.soreg.validate()
        self.packing.validate()
        self.randomness.validate()
        if not isinstance(self.n_agg, int) or self.n_agg < 2:
            raise ValueError("PaderSettings.n_agg must be an integer >= 2 (a seller never sees one user alone)")
        if self.flush_policy not in FLUSH_POLICIES:
            raise ValueError(f"PaderSettings.flush_policy must be one of {FLUSH_POLICIES}")
        if self.split < 1 or not 1 <= self.max_items <= 1 << self.packing.terms_bits:
            raise ValueError("PaderSettings.split must be >= 1 and max_items in 1..2^terms_bits")
        if self.soreg.dim > 1 << self.packing.dim_bits:
            raise ValueError("SoReg dim exceeds 2^packing.dim_bits")
        if self.max_slots is not None and self.max_slots < 1:
            raise ValueError("PaderSettings.max_slots must be >= 1 or None")
        if self.replay_window < 1 or self.max_open_sessions < 1:
            raise ValueError("PaderSettings.replay_window and max_open_sessions must be >= 1")
        return self


@dataclass(frozen=True)
class Layouts:
    """The two slot layouts of one key."""

    items: Layout
    """Item-major blocks (slot = item): item vectors per dimension, errors, item gradients."""
    vector: Layout
    """Dim-major (slot = dimension): one vector in ``chunks`` ciphertexts."""
    dim: int
    """Latent dimension d."""

    @property
    def chunks(self) -> int:
        """Ciphertexts per vector."""
        return self.vector.chunks(self.dim)

    def split_vector(self, values: list[int]) -> list[list[int]]:
        """A vector's ints cut into per-ciphertext chunks."""
        k = self.vector.slots
        return [values[i:i + k] for i in range(0, len(values), k)]


def layouts_for(public: PublicKey, settings: PaderSettings) -> Layouts:
    """Layouts derived from the key size and the packing settings."""
    p, cap = settings.packing, settings.max_slots

    def make(bits: int) -> Layout:
        layout = Layout.for_key(public.bits, bits)
        return layout if cap is None else Layout(layout.slot_bits, min(cap, layout.slots), layout.max_level)
    return Layouts(make(p.item_layout_bits()), make(p.vector_layout_bits()), settings.soreg.dim)


def n2_bytes(public: PublicKey) -> int:
    """Length of a serialised ciphertext."""
    return 2 * ((public.bits + 7) // 8)


def parse_cts(public: PublicKey, blobs: tuple[bytes, ...], expected: int) -> list[int]:
    """Ciphertexts of a message, checked for count and length."""
    if not isinstance(blobs, tuple) or len(blobs) != expected:
        raise PaderError(f"expected {expected} ciphertexts, got {len(blobs) if isinstance(blobs, tuple) else blobs!r}")
    size = n2_bytes(public)
    return [bytes_to_ct(b, size) for b in blobs]


def check_session(session: object, iteration: object) -> None:
    """Refuse malformed session ids and iteration counters."""
    if not isinstance(session, bytes) or len(session) != SESSION_BYTES:
        raise PaderError(f"session id must be {SESSION_BYTES} bytes")
    if not isinstance(iteration, int) or iteration < 0:
        raise PaderError("iteration must be a non-negative int")
