"""Fixed point and slot packing: property tests; overflow and level errors are raised, never wrong numbers."""

import pytest
from hypothesis import given, settings, strategies as st

from crypto import packing
from crypto.fixedpoint import FixedPointOverflowError, decode, encode, from_slot, to_slot
from crypto.packing import Layout, LevelError, PackingOverflowError, PackingSettings
from crypto.paillier import generate_keypair
from crypto.randomness import RandomnessPool

KEY = generate_keypair(1024, insecure_test_only=True)
POOL = RandomnessPool(KEY.public)
LAYOUT = Layout.for_key(1024, 100, max_level=2)


@given(st.floats(-1e3, 1e3, allow_nan=False))
def test_fixedpoint_roundtrip(x):
    assert abs(decode(encode(x)) - x) <= 2.0 ** -24


@given(st.integers(-(2 ** 99) + 1, 2 ** 99 - 1))
def test_slot_complement_roundtrip(v):
    assert from_slot(to_slot(v, 100), 100) == v


def test_fixedpoint_refuses_out_of_range():
    with pytest.raises(FixedPointOverflowError):
        encode(float("nan"))
    with pytest.raises(FixedPointOverflowError):
        encode(17.0, value_bits=4)
    with pytest.raises(FixedPointOverflowError):
        to_slot(2 ** 99, 100)


@given(st.lists(st.integers(-(2 ** 60), 2 ** 60), min_size=1, max_size=LAYOUT.slots))
def test_pack_unpack_plain(values):
    m = packing.pack(values, LAYOUT) % int(KEY.public.n)
    assert packing.unpack(m, int(KEY.public.n), LAYOUT, len(values)) == values


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(-(2 ** 40), 2 ** 40), min_size=LAYOUT.slots, max_size=LAYOUT.slots),
       st.lists(st.integers(-(2 ** 40), 2 ** 40), min_size=LAYOUT.slots, max_size=LAYOUT.slots),
       st.integers(-(2 ** 30), 2 ** 30), st.integers(-(2 ** 30), 2 ** 30))
def test_encrypted_linear_ops_exact(a, b, ka, kb):
    pub = KEY.public
    ca = packing.encrypt(pub, POOL.take, a, LAYOUT, 0)
    cb = packing.encrypt(pub, POOL.take, b, LAYOUT, 0)
    out = packing.weighted_sum(pub, [ca, cb], [ka, kb], 0)
    out = packing.add_plain(pub, out, a)
    expected = [ka * x + kb * y + x for x, y in zip(a, b)]
    assert packing.decrypt(KEY, out) == expected


def test_bucket_method_matches_powmod():
    pub = KEY.public
    items = [packing.encrypt(pub, POOL.take, [i, -i], LAYOUT, 0) for i in range(40)]
    ks = [(-1) ** i * (2 ** 70 + 7 * i) for i in range(40)]
    out = packing.weighted_sum(pub, items, ks, 0, split=3)
    assert packing.decrypt(KEY, out) == [sum(k * i for k, i in zip(ks, range(40))), -sum(k * i for k, i in zip(ks, range(40)))]


def test_overflow_is_refused_not_wrapped():
    pub = KEY.public
    big = packing.encrypt(pub, POOL.take, [2 ** 90], LAYOUT, 0)
    with pytest.raises(PackingOverflowError):
        packing.weighted_sum(pub, [big], [2 ** 20], 0)
    with pytest.raises(PackingOverflowError):
        packing.pack([2 ** 99], LAYOUT)
    with pytest.raises(PackingOverflowError):
        packing.pack([0] * (LAYOUT.slots + 1), LAYOUT)


def test_level_is_refused_beyond_layout():
    pub = KEY.public
    c = packing.encrypt(pub, POOL.take, [3], LAYOUT, 0)
    c = packing.weighted_sum(pub, [c], [2], 0)
    c = packing.weighted_sum(pub, [c], [2], 0)
    with pytest.raises(LevelError):
        packing.weighted_sum(pub, [c], [2], 0)


def test_decrypt_refuses_oversized_and_malformed():
    pub = KEY.public
    c = packing.encrypt(pub, POOL.take, [5, 2 ** 80], LAYOUT, 0)
    with pytest.raises(PackingOverflowError):
        packing.decrypt(KEY, c, max_abs=2 ** 40)
    short = packing.wrap(pub, c.c, LAYOUT, 1, 0, 2 ** 90)  # data beyond the declared slots
    with pytest.raises(PackingOverflowError):
        packing.decrypt(KEY, short)


def test_layout_derivation_2048():
    s = PackingSettings().validate()
    items = Layout.for_key(2048, s.item_layout_bits())
    vector = Layout.for_key(2048, s.vector_layout_bits())
    assert items.slots * items.slot_bits <= 2046 and items.slots >= 16
    assert vector.slots >= 10
    assert s.item_layout_bits() == 2 * 27 + 6 + 1 + 40 + 1 + 2
