"""G-Rank wire messages: signatures of entries and items, frame caps, pull request/response round trips."""

from __future__ import annotations

import dataclasses

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from protocols import grank as wire
from protocols.codec import DecodeError, decode, encode
from protocols.validation import Verdict
from recsys.grank import ClickEntry, ClickLogStore, GRankEngine, ItemMetadata
from recsys.grank.gossip import GossipSettings, answer_pull, make_pull_request


def identity():
    keys = create_new_key_pair()
    return keys, ID.from_pubkey(keys.public_key).to_base58()


def signed_entry(keys, author, seq=0, shown=("a", "b"), clicked="b") -> ClickEntry:
    return wire.sign_click(ClickEntry(author, seq, ("jazz",), shown, clicked, 1), keys.private_key)


def test_a_signed_click_verifies_and_any_change_breaks_it():
    keys, author = identity()
    other_keys, _ = identity()
    entry = signed_entry(keys, author)
    # Act
    tampered = dataclasses.replace(entry, clicked="a")
    foreign = wire.sign_click(dataclasses.replace(entry, signature=b""), other_keys.private_key)
    # Assert
    assert wire.click_verifies(entry)
    assert not wire.click_verifies(tampered)
    assert not wire.click_verifies(foreign)


def test_a_click_round_trips_on_the_wire_with_its_signature():
    keys, author = identity()
    entry = signed_entry(keys, author, seq=7)
    # Act
    back = decode(encode(wire.WireClick.of(entry)), expect=wire.WireClick).entry()
    # Assert
    assert back == entry and back.signature == entry.signature and wire.click_verifies(back)


def test_a_click_the_core_refuses_does_not_decode():
    keys, author = identity()
    frame = encode(dataclasses.replace(wire.WireClick.of(signed_entry(keys, author)), clicked="zzz"))
    # Act / Assert: the clicked item was not among the shown ones
    with pytest.raises(DecodeError, match="not among the shown"):
        decode(frame, expect=wire.WireClick)


def test_split_verified_keeps_good_entries_and_counts_bad_ones():
    keys, author = identity()
    good = [signed_entry(keys, author, seq=s) for s in range(3)]
    forged = dataclasses.replace(good[0], seq=9)
    # Act
    kept, bad = wire.split_verified([wire.WireClick.of(e) for e in (*good, forged)])
    # Assert
    assert kept == good and bad == 1


def test_item_frames_are_accepted_ignored_when_held_and_rejected_when_forged():
    keys, owner = identity()
    meta = wire.sign_item(ItemMetadata.create(owner, "Blue Train", ["jazz", "Coltrane"]), keys.private_key)
    frame = wire.encode_item(meta)
    forged = wire.encode_item(dataclasses.replace(meta, signature=bytes(64)))
    # Act
    fresh, got = wire.check_item_frame(frame, lambda _id: None)
    held, _ = wire.check_item_frame(frame, lambda _id: meta)
    bad, _ = wire.check_item_frame(forged, lambda _id: None)
    huge, _ = wire.check_item_frame(b"x" * (wire.MAX_ITEM_FRAME + 1), lambda _id: None)
    # Assert
    assert fresh.verdict is Verdict.ACCEPT and got == meta and got.tags == ("jazz", "coltrane")
    assert held.verdict is Verdict.IGNORE
    assert bad.verdict is Verdict.REJECT and huge.verdict is Verdict.REJECT


def test_an_item_id_not_derived_from_owner_and_title_is_refused():
    keys, owner = identity()
    meta = wire.sign_item(ItemMetadata("someone-elses-id", owner, "t", ("x",)), keys.private_key)
    # Act
    verdict, _ = wire.check_item_frame(wire.encode_item(meta), lambda _id: None)
    # Assert
    assert verdict.verdict is Verdict.REJECT and "make_item_id" in verdict.reason


def test_a_pull_request_round_trips_and_a_duplicate_author_is_refused():
    keys, author = identity()
    engine = GRankEngine("me")
    engine.accept_entries([signed_entry(keys, author, seq=s) for s in (0, 1, 3)])
    request = engine.pull_request()
    msg = wire.PullRequestMsg.of(request)
    doubled = dataclasses.replace(msg, summaries=msg.summaries * 2)
    # Act
    back = decode(encode(msg), expect=wire.PullRequestMsg).request()
    # Assert
    assert back.summaries == request.summaries and back.summaries[0].extra_seqs == (3,)
    with pytest.raises(DecodeError, match="twice"):
        decode(encode(doubled), expect=wire.PullRequestMsg)


def test_a_full_answer_of_the_largest_entries_fits_the_response_frame():
    keys, author = identity()
    store = ClickLogStore()
    shown = tuple(f"{i:03d}" + "x" * 125 for i in range(100))
    store.add_all(signed_entry(keys, author, seq=s, shown=shown, clicked=shown[0]) for s in range(300))
    settings = GossipSettings(max_bytes_per_message=wire.MAX_ENTRY_BYTES)
    request = make_pull_request(ClickLogStore(), settings)
    # Act
    response = answer_pull(store, wire.PullRequestMsg.of(request).request(), settings)
    frame = encode(wire.PullResponseMsg.of(response))
    # Assert
    assert response.more and len(response.entries) > 1
    assert len(frame) <= wire.MAX_RESPONSE_BYTES
    assert decode(frame, expect=wire.PullResponseMsg).entries[0].entry() == response.entries[0]


def test_an_oversized_response_frame_is_refused_before_unpacking():
    # Act / Assert
    with pytest.raises(DecodeError):
        decode(b"\x00" * (wire.MAX_RESPONSE_BYTES + 1), expect=wire.PullResponseMsg)
