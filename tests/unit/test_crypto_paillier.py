"""Paillier keys, CRT decryption, randomness pool and keystore."""

import os
import stat

import gmpy2
import phe.util
import pytest

from crypto import keystore
from crypto.paillier import (KeyFormatError, PublicKey, SecretKey, generate_keypair, gmpy2_in_use)
from crypto.randomness import RandomnessPool, RandomnessSettings


@pytest.fixture(scope="module")
def key() -> SecretKey:
    return generate_keypair(1024, insecure_test_only=True)


def test_phe_uses_gmpy2():
    assert gmpy2_in_use() and phe.util.HAVE_GMP
    assert phe.util.powmod is not None and phe.util.gmpy2 is gmpy2


def test_weak_and_odd_sizes_refused_outside_tests():
    with pytest.raises(KeyFormatError):
        generate_keypair(1024)
    with pytest.raises(KeyFormatError):
        generate_keypair(1536, insecure_test_only=True)


def test_crt_decryption_matches_phe(key):
    from phe.paillier import PaillierPrivateKey, PaillierPublicKey

    p, q = key.primes
    ref = PaillierPrivateKey(PaillierPublicKey(p * q), p, q)
    pool = RandomnessPool(key.public, RandomnessSettings(mode="fresh"))
    for m in (0, 1, 12345, int(key.public.n) - 1):
        c = pool.encrypt(m)
        assert key.decrypt(c) == m == ref.raw_decrypt(int(c))


def test_public_key_wire_roundtrip_and_fingerprint(key):
    data = key.public.to_bytes()
    back = PublicKey.from_bytes(data, insecure_test_only=True)
    assert back.n == key.public.n and back.fingerprint == key.public.fingerprint
    with pytest.raises(KeyFormatError):
        PublicKey.from_bytes(data)  # 1024 bits refused on the wire
    with pytest.raises(KeyFormatError):
        PublicKey.from_bytes(b"\x00" * 1000)


def test_homomorphic_ops_and_negative_scalar(key):
    pub, pool = key.public, RandomnessPool(key.public)
    a, b = pool.encrypt(40), pool.encrypt(2)
    assert key.decrypt(pub.add(a, b)) == 42
    assert key.decrypt(pub.add_plain(a, -50)) == int(pub.n) - 10
    assert key.decrypt(pub.mul_plain(a, -3)) == int(pub.n) - 120
    assert key.decrypt(pub.rerandomize(a, pool.take())) == 40


@pytest.mark.parametrize("mode", ["djn", "fresh"])
def test_pool_refill_and_take(key, mode):
    pool = RandomnessPool(key.public, RandomnessSettings(mode=mode, chunk=4))
    assert pool.refill(10) == 10 and len(pool) == 10
    rn = pool.take()
    # r^n is an n-th residue: it decrypts to 0
    assert key.decrypt(rn) == 0 and len(pool) == 9 and pool.misses == 0
    pool2 = RandomnessPool(key.public, RandomnessSettings(mode=mode))
    pool2.take()
    assert pool2.misses == 1
    assert pool.refill(budget_s=0.05) >= 0
    with pytest.raises(ValueError):
        pool.refill()


def test_secret_integers_not_in_repr(key):
    assert str(key.primes[0]) not in repr(key)


def test_keystore_plain_is_0600(tmp_path, key):
    path = tmp_path / "home" / "paillier.key"
    keystore.save(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keystore.load(path, insecure_test_only=True).primes == key.primes
    assert not keystore.is_sealed(path)


def test_keystore_sealed_wrong_passphrase_and_corruption(tmp_path, key):
    path = tmp_path / "paillier.key"
    fast = keystore.KeystoreSettings(scrypt_n=1 << 10)
    keystore.save(path, key, "correct horse", fast)
    assert keystore.is_sealed(path) and key.primes[0].to_bytes(64, "big").hex() not in path.read_text()
    assert keystore.load(path, "correct horse", insecure_test_only=True).primes == key.primes
    with pytest.raises(keystore.KeystoreError, match="wrong passphrase"):
        keystore.load(path, "wrong", insecure_test_only=True)
    with pytest.raises(keystore.KeystoreError, match="passphrase is needed"):
        keystore.load(path, insecure_test_only=True)
    text = path.read_text()
    i = text.index('"ct": "') + 10
    path.write_text(text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1:])
    os.chmod(path, 0o600)
    with pytest.raises(keystore.KeystoreError):
        keystore.load(path, "correct horse", insecure_test_only=True)
    path.write_text("garbage")
    os.chmod(path, 0o600)
    with pytest.raises(keystore.KeystoreError, match="corrupted"):
        keystore.load(path)


def test_keystore_refuses_group_readable(tmp_path, key):
    path = tmp_path / "k"
    keystore.save(path, key)
    os.chmod(path, 0o644)
    with pytest.raises(keystore.KeystoreError, match="0600"):
        keystore.load(path, insecure_test_only=True)
