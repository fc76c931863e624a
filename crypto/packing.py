"""Slot packing of several fixed-point values per Paillier ciphertext, with bound and level tracking.

A packed plaintext is the integer ``P = Σ_i v_i·2^(i·B)`` (``B = slot_bits``, signed ``v_i``), encrypted as
``P mod n``. Additions and multiplications by one signed integer act on every slot at once and stay
exact as long as every slot keeps ``|v_i| < 2^(B−1)``. Each ``Packed`` carries a proven upper bound of
``|v_i|``, its scale (bits) and its multiplication level; an operation that could exceed the slot or
the level raises ``PackingOverflowError`` / ``LevelError`` — never a wrong number.

Slot sizes are derived (``PackingSettings``): value bits + scale bits + mask bits + log2(sum terms).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import gmpy2

from crypto.fixedpoint import SCALE_BITS, from_slot
from crypto.paillier import PublicKey, SecretKey, WrongKeyError

KEY_MARGIN_BITS = 2
"""Bits of ``n`` left unused so that a packed plaintext stays below ``n/2`` (signed decoding)."""
SMALL_MULTI_EXP = 24
"""Up to this many bases a weighted sum uses Straus' joint exponentiation; above it the bucket method."""


class PackingOverflowError(ValueError):
    """A slot could exceed its bits (or a packed value is malformed/oversized)."""


class LevelError(ValueError):
    """A multiplication beyond the layout's allowed level."""


@dataclass(frozen=True)
class PackingSettings:
    """Ranges that size the slots (all in bits)."""

    scale_bits: int = SCALE_BITS
    """Fixed-point scale 2^s."""
    value_bits: int = 4
    """|u|, |v|, |r|, |β·u_f|, |s_f| < 2^value_bits (z-scored ratings, regularised vectors)."""
    dim_bits: int = 6
    """Latent dimension d ≤ 2^dim_bits."""
    terms_bits: int = 12
    """Items per iteration, friends, users aggregated ≤ 2^terms_bits."""
    mask_bits: int = 40
    """Statistical hiding of masked values (mask exceeds the value by this many bits)."""
    guard_bits: int = 2
    """Sign bit plus one spare bit per slot."""

    def validate(self) -> "PackingSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        for name in ("scale_bits", "value_bits", "dim_bits", "terms_bits", "mask_bits", "guard_bits"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"PackingSettings.{name} must be a positive integer")
        if self.mask_bits < 40:
            raise ValueError("PackingSettings.mask_bits below 40 does not hide masked values")
        return self

    @property
    def x_bits(self) -> int:
        """Bits of an encoded value ``round(x·2^s)``."""
        return self.value_bits + self.scale_bits

    @property
    def error_bits(self) -> int:
        """Bits of ``e = uᵀv − r`` at scale 2^(2s)."""
        return 2 * self.x_bits + self.dim_bits + 1

    @property
    def masked_error_bits(self) -> int:
        """Bits of a masked error ``e + m``."""
        return self.error_bits + self.mask_bits + 1

    @property
    def reduced_mask_bits(self) -> int:
        """Bits of the mask part ``m'`` of ``(e + m) >> s`` (what multiplies ``v`` in step 2)."""
        return self.error_bits - self.scale_bits + self.mask_bits

    @property
    def gradient_bits(self) -> int:
        """Bits of the true user gradient ``Σ e_j v_j + social + λu`` at scale 2^(2s)."""
        return self.error_bits - self.scale_bits + self.x_bits + self.terms_bits + 1

    def item_layout_bits(self) -> int:
        """Slot bits of item-major blocks: masked errors (step 2) and item gradients ``e·u`` (step 5)."""
        item_grad = self.error_bits + self.x_bits + self.terms_bits
        return max(self.masked_error_bits, item_grad) + self.guard_bits

    def vector_layout_bits(self) -> int:
        """Slot bits of dim-major vectors: ``Σ (e+m)v``, its correction, social term and gradient mask."""
        product = self.reduced_mask_bits + 1 + self.x_bits + self.terms_bits
        masked_gradient = self.gradient_bits + self.mask_bits
        return max(product, masked_gradient) + 2 + self.guard_bits


@dataclass(frozen=True)
class Layout:
    """``slots`` slots of ``slot_bits`` bits per ciphertext; at most ``max_level`` multiplications."""

    slot_bits: int
    """Bits per slot."""
    slots: int
    """Slots per ciphertext."""
    max_level: int = 2
    """Plaintext multiplications allowed on a fresh encryption."""

    @classmethod
    def for_key(cls, key_bits: int, slot_bits: int, max_level: int = 2) -> "Layout":
        """As many ``slot_bits`` slots as fit below ``n/2`` for a ``key_bits`` modulus."""
        slots = (key_bits - KEY_MARGIN_BITS) // slot_bits
        if slots < 1:
            raise PackingOverflowError(f"a {slot_bits}-bit slot does not fit a {key_bits}-bit key")
        return cls(slot_bits, slots, max_level)

    @property
    def limit(self) -> int:
        """Exclusive bound on ``|v|`` per slot."""
        return 1 << (self.slot_bits - 1)

    def chunks(self, count: int) -> int:
        """Ciphertexts needed for ``count`` values."""
        return -(-count // self.slots)


def pack(values: Sequence[int], layout: Layout) -> int:
    """``Σ v_i 2^(i·B)`` (a signed int); refuses too many values or ``|v| ≥ 2^(B−1)``."""
    if len(values) > layout.slots:
        raise PackingOverflowError(f"{len(values)} values do not fit {layout.slots} slots")
    total = 0
    for v in reversed(values):
        v = int(v)
        if abs(v) >= layout.limit:
            raise PackingOverflowError(f"value of {v.bit_length()} bits exceeds a {layout.slot_bits}-bit slot")
        total = (total << layout.slot_bits) + v
    return total


def unpack(m: int, n: int, layout: Layout, count: int) -> list[int]:
    """Signed slot values of a raw plaintext ``m`` in ``[0, n)``; refuses garbage above ``count`` slots."""
    if count > layout.slots or count < 0:
        raise PackingOverflowError("slot count out of range")
    m = int(m)
    if m > n // 2:
        m -= n
    out, width, mod = [], layout.slot_bits, (1 << layout.slot_bits)
    for _ in range(count):
        v = from_slot(m & (mod - 1), width)
        out.append(v)
        m = (m - v) >> width
    if m != 0:
        raise PackingOverflowError("packed plaintext has data beyond its slots (malformed or overflowed)")
    return out


@dataclass(frozen=True)
class Packed:
    """A ciphertext holding ``count`` slots; ``bound`` is a proven bound on every ``|slot|``."""

    c: object
    """The raw ciphertext (gmpy2 mpz)."""
    layout: Layout
    """Slot layout."""
    count: int
    """Slots in use."""
    scale_bits: int
    """Fixed-point scale of every slot (2^scale_bits)."""
    bound: int
    """Upper bound on ``|slot value|``."""
    level: int
    """Multiplications applied since encryption."""
    key_fp: bytes
    """Fingerprint of the key it is encrypted under."""

    def __post_init__(self) -> None:
        if self.bound >= self.layout.limit:
            raise PackingOverflowError(
                f"slot bound of {int(self.bound).bit_length()} bits exceeds {self.layout.slot_bits}-bit slots")
        if self.level > self.layout.max_level:
            raise LevelError(f"level {self.level} exceeds the layout's {self.layout.max_level}")


def wrap(public: PublicKey, c: int, layout: Layout, count: int, scale_bits: int, bound: int,
         level: int = 0) -> Packed:
    """A received ciphertext as ``Packed`` (range-checked); ``bound`` is the receiver's expectation."""
    return Packed(public.check(c), layout, count, scale_bits, bound, level, public.fingerprint)


def encrypt(public: PublicKey, take_rn: Callable[[], object], values: Sequence[int], layout: Layout,
            scale_bits: int, bound: int | None = None) -> Packed:
    """Pack signed ints and encrypt them with a pooled ``r^n`` from ``take_rn``."""
    bound = max((abs(int(v)) for v in values), default=0) if bound is None else bound
    c = public.encrypt_with(pack(values, layout), take_rn())
    return Packed(c, layout, len(values), scale_bits, bound, 0, public.fingerprint)


def _same_key(public: PublicKey, *items: Packed) -> None:
    for item in items:
        if item.key_fp != public.fingerprint:
            raise WrongKeyError("ciphertext is under another key")


def add(public: PublicKey, a: Packed, b: Packed) -> Packed:
    """Slot-wise ``a + b`` (same layout and scale)."""
    _same_key(public, a, b)
    if a.layout != b.layout or a.scale_bits != b.scale_bits:
        raise PackingOverflowError("cannot add packed values of different layout or scale")
    return replace(a, c=public.add(a.c, b.c), count=max(a.count, b.count), bound=a.bound + b.bound,
                   level=max(a.level, b.level))


def add_plain(public: PublicKey, a: Packed, values: Sequence[int]) -> Packed:
    """Slot-wise ``a + values`` (plaintext ints at ``a``'s scale)."""
    _same_key(public, a)
    extra = max((abs(int(v)) for v in values), default=0)
    bound = a.bound + extra
    if bound >= a.layout.limit:
        raise PackingOverflowError("adding these values could overflow a slot")
    return replace(a, c=public.add_plain(a.c, pack(values, a.layout)), count=max(a.count, len(values)), bound=bound)


def rerandomize(public: PublicKey, a: Packed, rn: object) -> Packed:
    """The same slots under fresh randomness (before a ciphertext leaves its holder)."""
    return replace(a, c=public.rerandomize(a.c, rn))


def _check_sum(items: Sequence[Packed], ks: Sequence[int]) -> tuple[Layout, int, int, int]:
    if not items or len(items) != len(ks):
        raise ValueError("weighted sum needs one coefficient per ciphertext")
    layout, scale = items[0].layout, items[0].scale_bits
    if any(p.layout != layout or p.scale_bits != scale for p in items):
        raise PackingOverflowError("weighted sum over packed values of different layout or scale")
    bound = sum(abs(int(k)) * p.bound for p, k in zip(items, ks))
    if bound >= layout.limit:
        raise PackingOverflowError(f"weighted sum could reach {bound.bit_length()} bits in "
                                   f"{layout.slot_bits}-bit slots")
    level = max(p.level for p in items) + 1
    if level > layout.max_level:
        raise LevelError(f"multiplication to level {level} exceeds the layout's {layout.max_level}")
    return layout, scale, bound, level


def _bucket_product(n2: object, bases: Sequence[object], exps: Sequence[int]) -> object:
    """``Π b_i^(e_i) mod n²`` for non-negative ``e_i`` (Pippenger's bucket method)."""
    top = max((e.bit_length() for e in exps), default=0)
    if top == 0:
        return gmpy2.mpz(1)
    width = max(2, min(8, len(bases).bit_length() - 2))
    mask, result = (1 << width) - 1, gmpy2.mpz(1)
    for w in reversed(range(-(-top // width))):
        if result != 1:
            for _ in range(width):
                result = result * result % n2
        buckets: dict[int, object] = {}
        shift = w * width
        for b, e in zip(bases, exps):
            digit = (e >> shift) & mask
            if digit:
                buckets[digit] = buckets[digit] * b % n2 if digit in buckets else b
        running, acc = gmpy2.mpz(1), gmpy2.mpz(1)
        for digit in range(mask, 0, -1):
            if digit in buckets:
                running = running * buckets[digit] % n2
            if running != 1:
                acc = acc * running % n2
        result = result * acc % n2
    return result


def _joint_product(n2: object, bases: Sequence[object], exps: Sequence[int]) -> object:
    """``Π b_i^(e_i) mod n²`` for few bases with non-negative ``e_i``: Straus' method, 2-bit windows.

    Shares the squarings between bases; ~3x faster than one ``powmod`` per base for short exponents
    (``powmod`` pays a Montgomery set-up per call).
    """
    tables = []
    for b in bases:
        b2 = b * b % n2
        tables.append((None, b, b2, b2 * b % n2))
    top = max((e.bit_length() for e in exps), default=0)
    top += top & 1
    result = gmpy2.mpz(1)
    for shift in range(top - 2, -1, -2):
        if result != 1:
            result = result * result % n2
            result = result * result % n2
        for table, e in zip(tables, exps):
            digit = (e >> shift) & 3
            if digit:
                result = result * table[digit] % n2
    return result


def signed_product(n2: int, bases: Sequence[int], exps: Sequence[int]) -> int:
    """``Π b_i^(e_i) mod n²`` for signed ``e_i`` (one inversion for the negative part). Picklable task."""
    n2 = gmpy2.mpz(n2)
    pos = [(gmpy2.mpz(b), e) for b, e in zip(bases, exps) if e > 0]
    neg = [(gmpy2.mpz(b), -e) for b, e in zip(bases, exps) if e < 0]
    parts = []
    for group in (pos, neg):
        if len(group) <= SMALL_MULTI_EXP:
            acc = _joint_product(n2, [b for b, _ in group], [e for _, e in group])
        else:
            acc = _bucket_product(n2, [b for b, _ in group], [e for _, e in group])
        parts.append(acc)
    if parts[1] != 1:
        return int(parts[0] * gmpy2.invert(parts[1], n2) % n2)
    return int(parts[0])


def weighted_sum(public: PublicKey, items: Sequence[Packed], ks: Sequence[int], k_scale_bits: int,
                 mapper: Callable[..., Iterable] = map, split: int = 1) -> Packed:
    """``Σ k_i·items_i`` slot-wise (one multiplication level; scale adds ``k_scale_bits``).

    ``split > 1`` cuts a long sum into that many tasks for ``mapper`` (e.g. a process pool's ``map``).
    """
    _same_key(public, *items)
    layout, scale, bound, level = _check_sum(items, ks)
    ks = [int(k) for k in ks]
    step = -(-len(items) // max(1, split))
    starts = range(0, len(items), step)
    n2 = int(public.n2)
    parts = mapper(signed_product, [n2] * len(starts), [[int(p.c) for p in items[s:s + step]] for s in starts],
                   [ks[s:s + step] for s in starts])
    c = gmpy2.mpz(1)
    for part in parts:
        c = c * part % public.n2
    return Packed(c, layout, max(p.count for p in items), scale + k_scale_bits, bound, level, public.fingerprint)


def scale_mul_many(public: PublicKey, items: Sequence[Packed], ks: Sequence[int], k_scale_bits: int,
                   mapper: Callable[..., Iterable] = map) -> list[list[Packed]]:
    """``[[k·p for k in ks] for p in items]``: every ciphertext times every coefficient (step 5)."""
    _same_key(public, *items)
    n2 = int(public.n2)
    tasks = [(n2, int(p.c), [int(k) for k in ks]) for p in items]
    results = mapper(_powers_task, *zip(*tasks)) if tasks else []
    out = []
    for p, cs in zip(items, results):
        row = []
        for k, c in zip(ks, cs):
            _, scale, bound, level = _check_sum([p], [k])
            row.append(Packed(gmpy2.mpz(c), p.layout, p.count, scale + k_scale_bits, bound, level, p.key_fp))
        out.append(row)
    return out


def _powers_task(n2: int, c: int, ks: list[int]) -> list[int]:
    """``c^k mod n²`` for each signed ``k``: one shared chain of squarings ``c^(2^i)`` (fixed base)."""
    n2 = gmpy2.mpz(n2)
    powers = [gmpy2.mpz(c)]
    for _ in range(max(abs(k).bit_length() for k in ks) - 1 if ks else 0):
        powers.append(powers[-1] * powers[-1] % n2)
    out = []
    for k in ks:
        acc, e, i = gmpy2.mpz(1), abs(k), 0
        while e:
            if e & 1:
                acc = acc * powers[i] % n2
            e >>= 1
            i += 1
        out.append(int(gmpy2.invert(acc, n2) if k < 0 else acc))
    return out


def decrypt(secret: SecretKey, p: Packed, max_abs: int | None = None) -> list[int]:
    """Signed slot values; with ``max_abs`` refuse any slot beyond it (malformed or oversized input)."""
    if p.key_fp != secret.public.fingerprint:
        raise WrongKeyError("ciphertext is under another key")
    values = unpack(secret.decrypt(p.c), int(secret.public.n), p.layout, p.count)
    if max_abs is not None and any(abs(v) > max_abs for v in values):
        raise PackingOverflowError("decrypted slot exceeds the expected range (malformed or oversized value)")
    return values
