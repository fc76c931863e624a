"""PADER messages: frozen dataclasses of plain ints, bytes and tuples (msgpack-ready).

Ciphertexts travel as fixed-length big-endian bytes (``2·⌈bits/8⌉`` long); revealed values, which can
exceed 64 bits, as signed big-endian bytes. Every message that holds ciphertexts carries the key
fingerprint; every session message carries ``session`` (16 random bytes chosen by the user) and
``iteration`` (counter within the session) so that replays are refused.

Order of one training iteration (user U, seller S)::

    U → S  ItemRequest(purpose=TRAIN)      S → U  EncryptedItems (blocks + item vectors)
    U → S  MaskedErrors                    S → U  MaskedProduct
    U → S  MaskedGradient (+ item grads)   S → U  RevealedValues            (U updates u)

Inference: ItemRequest(purpose=SCORE) → EncryptedItems (blocks only) → MaskedErrors → RevealedValues.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAIN = 0
"""``ItemRequest.purpose``: one SoReg training iteration."""
SCORE = 1
"""``ItemRequest.purpose``: predicted scores (inference)."""
SESSION_BYTES = 16
"""Length of a session id."""
MAX_VALUE_BYTES = 64
"""Largest revealed value accepted (bytes)."""


class PaderError(ValueError):
    """A PADER message was refused (the role's state is unchanged)."""


class ReplayError(PaderError):
    """A message for a session/iteration already handled, or out of order."""


@dataclass(frozen=True)
class SellerCatalogue:
    """Published by a seller: its public key, items and slot layouts."""

    seller: bytes
    """Seller id (its peer id bytes)."""
    public_key: bytes
    """Paillier ``n`` big-endian."""
    key_fp: bytes
    """Fingerprint of ``public_key``."""
    items: tuple[int, ...]
    """Item ids in catalogue order (position = index)."""
    item_slot_bits: int
    """Slot bits of the item-major layout (blocks of items)."""
    vector_slot_bits: int
    """Slot bits of the dim-major layout (one vector)."""


@dataclass(frozen=True)
class FriendShare:
    """``Enc(−β u_f)`` of a user under one seller's key, for the user's friends' social term."""

    owner: bytes
    """The user whose vector it is."""
    key_fp: bytes
    """Seller key it is encrypted under."""
    version: int
    """Increases each time the owner's vector changes."""
    cts: tuple[bytes, ...]
    """Vector-layout chunks."""


@dataclass(frozen=True)
class ItemRequest:
    """U → S: start a session for these items."""

    session: bytes
    """Random session id."""
    iteration: int
    """Counter within the session."""
    user: bytes
    """User id (the seller counts distinct users per aggregate)."""
    key_fp: bytes
    """The seller key the user expects."""
    purpose: int
    """``TRAIN`` or ``SCORE``."""
    items: tuple[int, ...]
    """Item ids (from the seller's catalogue)."""


@dataclass(frozen=True)
class EncryptedItems:
    """S → U: item vectors, item-major blocks (``blocks``·d ciphertexts) and, for TRAIN, per-item vectors."""

    session: bytes
    """Session id."""
    iteration: int
    """Iteration."""
    key_fp: bytes
    """Seller key fingerprint."""
    positions: tuple[int, ...]
    """Catalogue position of each requested item (block = pos // slots, slot = pos % slots)."""
    blocks: tuple[int, ...]
    """Block indices touched, ascending."""
    columns: tuple[bytes, ...]
    """``columns[b·d + l]``: block ``blocks[b]``, dimension ``l``: slot = ``v_jl`` of the item there (0 if not requested)."""
    vectors: tuple[bytes, ...]
    """TRAIN only: ``vectors[i·chunks + c]`` = chunk ``c`` of item ``i``'s vector (dim-major layout)."""


@dataclass(frozen=True)
class MaskedErrors:
    """U → S: ``[e + M]`` per block (TRAIN) or ``[uᵀv + M]`` (SCORE)."""

    session: bytes
    """Session id."""
    iteration: int
    """Iteration."""
    key_fp: bytes
    """Seller key fingerprint."""
    cts: tuple[bytes, ...]
    """One ciphertext per block of ``EncryptedItems.blocks``."""


@dataclass(frozen=True)
class MaskedProduct:
    """S → U: ``[Σ_j (ê_j + m'_j) v_j]`` in vector-layout chunks."""

    session: bytes
    """Session id."""
    iteration: int
    """Iteration."""
    key_fp: bytes
    """Seller key fingerprint."""
    cts: tuple[bytes, ...]
    """Vector-layout chunks."""


@dataclass(frozen=True)
class MaskedGradient:
    """U → S: ``[g_u + R]`` and the item gradients ``[e_j u_l]`` per block and dimension."""

    session: bytes
    """Session id."""
    iteration: int
    """Iteration."""
    key_fp: bytes
    """Seller key fingerprint."""
    gradient: tuple[bytes, ...]
    """Vector-layout chunks of the masked user gradient."""
    item_gradients: tuple[bytes, ...]
    """``item_gradients[b·d + l]``: slot = ``e_j·u_l`` (scale 2^(3s)), same blocks as ``EncryptedItems``."""


@dataclass(frozen=True)
class RevealedValues:
    """S → U: masked decryptions (signed big-endian bytes): the gradient (TRAIN) or scores (SCORE)."""

    session: bytes
    """Session id."""
    iteration: int
    """Iteration."""
    values: tuple[bytes, ...]
    """Masked values, in the order the user sent them."""


def wire_size(msg: object) -> int:
    """Bytes of a message as a msgpack array of its fields (the protocol layer adds a small envelope)."""
    import dataclasses

    import msgpack

    return len(msgpack.packb(dataclasses.astuple(msg), use_bin_type=True))


def ciphertext_count(msg: object) -> int:
    """Ciphertexts carried by a message."""
    fields = ("columns", "vectors", "cts", "gradient", "item_gradients")
    return sum(len(getattr(msg, f)) for f in fields if hasattr(msg, f))


def int_to_bytes(v: int) -> bytes:
    """Signed big-endian bytes of ``v``."""
    return int(v).to_bytes((int(v).bit_length() + 8) // 8, "big", signed=True)


def bytes_to_int(b: bytes) -> int:
    """Inverse of :func:`int_to_bytes`; refuses oversized values."""
    if not isinstance(b, (bytes, bytearray)) or not 0 < len(b) <= MAX_VALUE_BYTES:
        raise PaderError("revealed value malformed or oversized")
    return int.from_bytes(b, "big", signed=True)


def ct_to_bytes(c: object, n2_bytes: int) -> bytes:
    """Fixed-length big-endian ciphertext."""
    return int(c).to_bytes(n2_bytes, "big")


def bytes_to_ct(b: bytes, n2_bytes: int) -> int:
    """Parse a ciphertext; refuses a wrong length."""
    if not isinstance(b, (bytes, bytearray)) or len(b) != n2_bytes:
        raise PaderError(f"ciphertext must be {n2_bytes} bytes, got {len(b) if isinstance(b, (bytes, bytearray)) else type(b)}")
    return int.from_bytes(b, "big")
