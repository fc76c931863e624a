"""Paillier keys on ``phe`` with ``gmpy2``: generation, wire form of public keys, raw CRT decryption.

Everything above this module works on *raw* Paillier integers (ciphertexts ``c`` in ``[1, n²)``,
plaintexts in ``[0, n)``) with gmpy2 arithmetic, never on phe's float encoding: packing and
fixed-point scaling are ours (``crypto.fixedpoint``, ``crypto.packing``). ``phe`` generates the primes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import gmpy2
import phe.util
from phe import paillier

KEY_BITS_ALLOWED = (2048, 3072)
"""Key sizes a node may generate or accept (DESIGN.md §4: 2048 default, 3072 allowed)."""
TEST_KEY_BITS = 1024
"""Weak size accepted only with ``insecure_test_only=True`` (unit tests, for speed)."""
FINGERPRINT_BYTES = 16
"""Length of a public-key fingerprint (truncated SHA-256 of ``n``)."""
MAX_KEY_BYTES = 3072 // 8
"""Largest serialised modulus accepted from the wire."""


class KeyFormatError(ValueError):
    """A key is malformed, of a refused size or does not match."""


class WrongKeyError(ValueError):
    """A ciphertext or message was made under another key than expected."""


def gmpy2_in_use() -> bool:
    """True when phe computes with gmpy2 (a hard dependency: ~10x faster)."""
    return bool(getattr(phe.util, "HAVE_GMP", False))


def _check_bits(bits: int, insecure_test_only: bool) -> None:
    allowed = KEY_BITS_ALLOWED + ((TEST_KEY_BITS,) if insecure_test_only else ())
    if bits not in allowed:
        raise KeyFormatError(f"Paillier key size {bits} refused; allowed: {allowed}")


@dataclass(frozen=True)
class PublicKey:
    """A Paillier public key ``n`` (``g = n + 1``) with the values every operation needs."""

    n: int
    """The modulus."""
    n2: object = field(init=False, repr=False, compare=False)
    """``n²`` as gmpy2 mpz."""
    nm: object = field(init=False, repr=False, compare=False)
    """``n`` as gmpy2 mpz."""
    fingerprint: bytes = field(init=False, compare=False)
    """``sha256(n)[:16]``: carried by every message holding ciphertexts under this key."""

    def __post_init__(self) -> None:
        n = gmpy2.mpz(self.n)
        object.__setattr__(self, "nm", n)
        object.__setattr__(self, "n2", n * n)
        object.__setattr__(self, "fingerprint", fingerprint_of(int(self.n)))

    @property
    def bits(self) -> int:
        """Size of ``n`` in bits."""
        return int(self.nm.bit_length())

    def to_bytes(self) -> bytes:
        """Wire form: ``n`` big-endian (``g = n + 1`` is implied)."""
        return int(self.n).to_bytes((self.bits + 7) // 8, "big")

    @classmethod
    def from_bytes(cls, data: bytes, *, insecure_test_only: bool = False) -> "PublicKey":
        """Parse the wire form; refuse sizes outside ``KEY_BITS_ALLOWED`` and even moduli."""
        if not isinstance(data, (bytes, bytearray)) or not data or len(data) > MAX_KEY_BYTES:
            raise KeyFormatError("public key must be 1..384 bytes")
        n = int.from_bytes(data, "big")
        _check_bits(n.bit_length(), insecure_test_only)
        if n % 2 == 0:
            raise KeyFormatError("Paillier modulus must be odd")
        return cls(n)

    def check(self, c: int) -> object:
        """``c`` as mpz after checking it is a ciphertext of this key (``0 < c < n²``)."""
        c = gmpy2.mpz(c)
        if not 0 < c < self.n2:
            raise ValueError("ciphertext out of range for this key")
        return c

    def encrypt_with(self, m: int, rn: object) -> object:
        """``(1 + m·n)·r^n mod n²`` for a plaintext ``m`` (any int, taken mod n) and pooled ``r^n``."""
        return (1 + (gmpy2.mpz(m) % self.nm) * self.nm) * rn % self.n2

    def add(self, a: object, b: object) -> object:
        """Homomorphic addition of two ciphertexts."""
        return a * b % self.n2

    def add_plain(self, c: object, m: int) -> object:
        """Add a plaintext ``m`` (negative allowed) to ciphertext ``c``."""
        return c * (1 + (gmpy2.mpz(m) % self.nm) * self.nm) % self.n2

    def mul_plain(self, c: object, k: int) -> object:
        """Multiply the plaintext under ``c`` by a signed integer ``k`` (inversion for negative k)."""
        if k >= 0:
            return gmpy2.powmod(c, k, self.n2)
        return gmpy2.powmod(gmpy2.invert(c, self.n2), -k, self.n2)

    def rerandomize(self, c: object, rn: object) -> object:
        """The same plaintext under fresh randomness ``r^n``."""
        return c * rn % self.n2


def fingerprint_of(n: int) -> bytes:
    """Truncated SHA-256 of the modulus, big-endian."""
    return hashlib.sha256(int(n).to_bytes((int(n).bit_length() + 7) // 8, "big")).digest()[:FINGERPRINT_BYTES]


class SecretKey:
    """A Paillier secret key (primes ``p, q``): CRT decryption with gmpy2. Never serialised to the wire."""

    def __init__(self, p: int, q: int, *, insecure_test_only: bool = False) -> None:
        if p == q:
            raise KeyFormatError("p and q must differ")
        self.public = PublicKey(int(p) * int(q))
        _check_bits(self.public.bits, insecure_test_only)
        self._p, self._q = gmpy2.mpz(p), gmpy2.mpz(q)
        self._p2, self._q2 = self._p * self._p, self._q * self._q
        g = self.public.nm + 1
        self._hp = gmpy2.invert(self._l(gmpy2.powmod(g, self._p - 1, self._p2), self._p), self._p)
        self._hq = gmpy2.invert(self._l(gmpy2.powmod(g, self._q - 1, self._q2), self._q), self._q)
        self._p_inv_q = gmpy2.invert(self._p, self._q)

    @staticmethod
    def _l(x: object, m: object) -> object:
        return (x - 1) // m

    @property
    def primes(self) -> tuple[int, int]:
        """``(p, q)`` — for the keystore only."""
        return int(self._p), int(self._q)

    def decrypt(self, c: int) -> int:
        """Raw plaintext in ``[0, n)`` via CRT (two half-size exponentiations)."""
        c = self.public.check(c)
        mp = self._l(gmpy2.powmod(c, self._p - 1, self._p2), self._p) * self._hp % self._p
        mq = self._l(gmpy2.powmod(c, self._q - 1, self._q2), self._q) * self._hq % self._q
        return int(mp + ((mq - mp) * self._p_inv_q % self._q) * self._p)

    def secret_integers(self) -> tuple[int, ...]:
        """``p, q, λ``: what must never appear in a message (for the privacy test)."""
        p, q = self.primes
        return p, q, (p - 1) * (q - 1) // int(gmpy2.gcd(p - 1, q - 1))

    def __repr__(self) -> str:  # never print the primes
        return f"SecretKey(fingerprint={self.public.fingerprint.hex()})"


def generate_keypair(bits: int = KEY_BITS_ALLOWED[0], *, insecure_test_only: bool = False) -> SecretKey:
    """A fresh key pair (phe picks the primes). ``bits`` in ``KEY_BITS_ALLOWED``."""
    if not gmpy2_in_use():
        raise RuntimeError("phe is not using gmpy2; install gmpy2 (hard dependency)")
    _check_bits(bits, insecure_test_only)
    _, priv = paillier.generate_paillier_keypair(n_length=bits)
    return SecretKey(priv.p, priv.q, insecure_test_only=insecure_test_only)
