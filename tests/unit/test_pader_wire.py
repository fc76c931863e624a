"""PADER wire: role messages survive the codec, the user id comes from the peer, caps and signatures hold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from crypto.paillier import generate_keypair
from protocols import pader as wire
from protocols.codec import DecodeError, decode, encode
from recsys.pader import FriendShare, PaderSettings, SellerRole, UserRole
from recsys.soreg import SoRegSettings

SETTINGS = PaderSettings(soreg=SoRegSettings(dim=4, lr=0.05))
KEY = generate_keypair(1024, insecure_test_only=True)


def _roles():
    rng = np.random.default_rng(0)
    seller = SellerRole(b"s", KEY, list(range(10)), 0.3 * rng.standard_normal((10, 4)), SETTINGS)
    user = UserRole(b"u", 0.3 * rng.standard_normal(4), SETTINGS, insecure_test_keys=True)
    fp = user.add_seller(seller.catalogue())
    return seller, user, fp


def _through_wire(msg, peer=b"peer-id-bytes"):
    wire_msg = wire.to_wire(msg)
    return wire.from_wire(decode(encode(wire_msg), expect=type(wire_msg)), peer)


def test_every_message_of_an_iteration_survives_the_codec_and_the_iteration_completes():
    seller, user, fp = _roles()
    request = user.start_training(fp, [1, 3, 7], [0.5, -1.0, 0.2], [])
    # Act: every message goes through encode/decode on its way
    items = _through_wire(seller.on_request(_through_wire(request, b"u")))
    product = _through_wire(seller.on_masked_errors(_through_wire(user.on_items(items))))
    revealed = _through_wire(seller.on_masked_gradient(_through_wire(user.on_product(product))))
    before = user.u.copy()
    user.on_revealed(revealed)
    # Assert
    assert isinstance(items, type(seller.on_request(user.start_scoring(fp, [2]))))
    assert not np.allclose(before, user.u)


def test_the_user_id_comes_from_the_authenticated_peer_never_the_request():
    _, user, fp = _roles()
    request = dataclasses.replace(user.start_training(fp, [1], [0.5], []), user=b"someone-else")
    # Act
    own = _through_wire(request, b"PEER")
    hosted = wire.from_wire(decode(encode(wire.to_wire(request, b"17"))), b"PEER")
    # Assert
    assert own.user == b"PEER"
    assert hosted.user == b"PEER/17"


@pytest.mark.parametrize("change", [
    {"columns": (b"\x01" * (wire.MAX_CT_BYTES + 1),)},
    {"columns": (b"\x01" * 8,) * (wire.MAX_CIPHERTEXTS + 1)},
    {"positions": (-1,)},
])
def test_oversized_or_malformed_fields_are_refused_by_the_decoder(change):
    msg = dataclasses.replace(wire.EncryptedItems.sample(), **change)
    # Act / Assert
    with pytest.raises(DecodeError, match=next(iter(change))):
        decode(_raw(msg), expect=wire.EncryptedItems)


def _raw(msg):
    import msgpack

    info = type(msg).__wire__
    return msgpack.packb({"v": info.version, "t": info.type_id, "b": dataclasses.asdict(msg)}, use_bin_type=True)


def test_a_label_with_a_separator_is_refused():
    msg = dataclasses.replace(wire.ItemRequest.sample(), label=b"a/b")
    with pytest.raises(DecodeError, match="label"):
        decode(_raw(msg), expect=wire.ItemRequest)


def test_a_catalogue_is_signed_by_the_seller_and_a_tampered_one_is_rejected():
    seller, _, _ = _roles()
    keys = create_new_key_pair()
    frame = wire.sign_catalogue(seller.catalogue(), 5, keys.private_key)
    # Act
    verdict, cat, seq = wire.check_catalogue(frame)
    bad_verdict, bad, _ = wire.check_catalogue(frame[:-3] + bytes(3))
    # Assert
    assert verdict.passes and seq == 5
    assert cat.seller == ID.from_pubkey(keys.public_key).to_bytes() and cat.key_fp == seller.public.fingerprint
    assert bad_verdict.penalises and bad is None


def test_friend_shares_must_belong_to_the_author_or_a_user_it_hosts():
    _, user, fp = _roles()
    keys = create_new_key_pair()
    author = ID.from_pubkey(keys.public_key).to_bytes()
    share = user.friend_share(fp)
    mine = [dataclasses.replace(share, owner=author), dataclasses.replace(share, owner=author + b"/3")]
    # Act
    ok, shares = wire.check_shares(wire.sign_shares(mine, keys.private_key))
    forged, none = wire.check_shares(wire.sign_shares([dataclasses.replace(share, owner=b"x" * 38)], keys.private_key))
    # Assert
    assert ok.passes and [s.owner for s in shares] == [author, author + b"/3"]
    assert isinstance(shares[0], FriendShare)
    assert forged.penalises and none == []
