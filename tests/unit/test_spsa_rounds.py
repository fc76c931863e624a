"""Rounds, validation, the update log and checkpoints of learning.spsa."""

import dataclasses
import random

import pytest
import torch

from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import (
    ByteCodec,
    RoundValidator,
    SpsaSettings,
    UpdateLog,
    UpdateRecord,
    apply_round,
    load_checkpoint,
    local_update,
    param_checksum,
    record_fields,
    record_from_fields,
    save_checkpoint,
    validate_update,
)

SMALL = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread (and the test machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
SETTINGS = SpsaSettings(lr=1e-3, samples_per_round=2)
RUN = "test-run"
PEERS = [bytes([i]) * 38 for i in (3, 1, 7, 5)]


def _losses(peer: bytes, round_: int):
    out = []
    for sample in range(SETTINGS.samples_per_round):
        gen = torch.Generator().manual_seed(hash((peer, round_, sample)) & 0xFFFF)
        batch = torch.randint(0, 256, (2, 9), generator=gen)
        out.append(lambda m, b=batch: loss(m, b))
    return out


def _round_records(model, round_: int, settings: SpsaSettings = SETTINGS) -> list[UpdateRecord]:
    return [
        local_update(model, _losses(p, round_), run=RUN, round_=round_, peer=p, settings=settings) for p in PEERS
    ]


def _record(**overrides) -> UpdateRecord:
    fields = {"run": RUN, "round": 4, "peer": PEERS[0], "grads": b"\x05\x85", "base_checksum": b"\x00" * 8}
    fields.update(overrides)
    return UpdateRecord(**fields)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_replicas_stay_bit_identical_and_arrival_order_does_not_matter(kind):
    # Arrange: three replicas of the same initial model
    a, b, c = build_tiny(SMALL), build_tiny(SMALL), build_tiny(SMALL)
    start = param_checksum(a)
    settings = dataclasses.replace(SETTINGS, perturbation=kind)

    for round_ in range(3):
        records = _round_records(a, round_, settings)
        shuffled = records[:]
        random.Random(round_).shuffle(shuffled)

        # Act
        apply_round(a, records, settings)
        apply_round(b, shuffled, settings)
        apply_round(c, list(reversed(records)), settings)

        # Assert
        assert param_checksum(a) == param_checksum(b) == param_checksum(c)
    assert param_checksum(a) != start


def test_local_update_leaves_replica_untouched_and_records_base():
    model = build_tiny(SMALL)
    before = param_checksum(model)
    record = local_update(model, _losses(PEERS[0], 0), run=RUN, round_=0, peer=PEERS[0], settings=SETTINGS)
    assert param_checksum(model) == before == record.base_checksum
    assert record.samples == SETTINGS.samples_per_round


def test_weights_scale_updates_and_zero_weight_skips():
    # Arrange
    base = build_tiny(SMALL)
    records = _round_records(base, 0)[:1]
    full, half, none = build_tiny(SMALL), build_tiny(SMALL), build_tiny(SMALL)

    # Act
    apply_round(full, records, SETTINGS)
    apply_round(half, records, SETTINGS, weights={records[0].peer: 0.5})
    apply_round(none, records, SETTINGS, weights={records[0].peer: 0.0})

    # Assert
    for pb, pf, ph, pn in zip(base.parameters(), full.parameters(), half.parameters(), none.parameters()):
        assert torch.allclose(ph - pb, 0.5 * (pf - pb), atol=1e-6)
        assert torch.equal(pn, pb)
    with pytest.raises(ValueError):
        apply_round(half, records, SETTINGS, weights={records[0].peer: float("nan")})


def test_apply_round_refuses_mixed_or_duplicate_records_without_touching_model():
    model = build_tiny(SMALL)
    before = param_checksum(model)
    for bad in (
        [_record(), _record()],
        [_record(), _record(peer=PEERS[1], round=5)],
        [_record(grads=b"\x80")],
    ):
        with pytest.raises(ValueError):
            apply_round(model, bad, SETTINGS)
        assert param_checksum(model) == before


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_record(run="other"), "wrong run"),
        (_record(round=3), "wrong round"),
        (_record(grads=b"\x05\x80"), "bad gradient byte"),
        (_record(grads=b"\x05"), "sample count"),
    ],
)
def test_validation_refuses_bad_updates(record, reason):
    with pytest.raises(ValueError, match=reason):
        validate_update(record, run=RUN, round_=4, seen_peers=set(), codec=ByteCodec(), samples=2)


def test_round_validator_refuses_second_update_and_orders_by_peer():
    # Arrange
    validator = RoundValidator(RUN, 4, ByteCodec(), samples=2)
    for peer in PEERS:
        validator.admit(_record(peer=peer))

    # Act / Assert
    with pytest.raises(ValueError, match="same peer"):
        validator.admit(_record(peer=PEERS[2], grads=b"\x01\x01"))
    assert [r.peer for r in validator.records()] == sorted(PEERS)
    assert len(validator) == len(PEERS)


@pytest.mark.parametrize(
    "overrides",
    [{"run": ""}, {"round": -1}, {"peer": b""}, {"grads": b""}, {"grads": b"\x01" * 65}, {"base_checksum": b"x"}, {"run": "r" * 17}, {"round": 2**32}],
)
def test_malformed_records_cannot_be_built(overrides):
    with pytest.raises(ValueError):
        _record(**overrides)


def test_wire_fields_round_trip_without_peer():
    record = _record()
    fields = record_fields(record)
    assert record.peer not in fields
    assert record_from_fields(fields, record.peer) == record
    with pytest.raises(ValueError):
        record_from_fields(fields[:3], record.peer)


def test_log_replay_from_checkpoint_reaches_same_checksum(tmp_path):
    # Arrange: a replica runs 4 rounds, checkpoints after round 1, logs everything
    live = build_tiny(SMALL)
    log = UpdateLog(RUN)
    ckpt = tmp_path / "ckpt.pt"
    for round_ in range(4):
        records = _round_records(live, round_)
        for r in records:
            log.append(r, raw=b"signed:" + r.peer)
        apply_round(live, records, SETTINGS)
        log.close_round(round_, param_checksum(live))
        if round_ == 1:
            save_checkpoint(live, ckpt, round_, param_checksum(live))

    # Act: a joiner loads the checkpoint and replays the (serialised) log
    joiner = build_tiny(TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16, seed=99))
    round_loaded, _ = load_checkpoint(joiner, ckpt)
    received = UpdateLog.from_bytes(log.to_bytes(after_round=round_loaded))
    last = received.replay(joiner, SETTINGS, after_round=round_loaded)

    # Assert
    assert last == 3
    assert param_checksum(joiner) == param_checksum(live) == log.checksum(3)
    assert received.entries(2)[0].raw.startswith(b"signed:")


def test_log_refuses_duplicates_closed_rounds_and_detects_divergence():
    log = UpdateLog(RUN)
    log.append(_record())
    with pytest.raises(ValueError):
        log.append(_record())
    with pytest.raises(ValueError):
        log.append(_record(run="other", peer=PEERS[1]))
    log.close_round(4, b"\x00" * 8)
    with pytest.raises(ValueError, match="closed"):
        log.append(_record(peer=PEERS[1]))
    with pytest.raises(ValueError, match="diverged"):
        log.replay(build_tiny(SMALL), SETTINGS, after_round=-1)
    with pytest.raises(ValueError, match="malformed"):
        UpdateLog.from_bytes(b"\x93\x01")


def test_checkpoint_refuses_wrong_checksum(tmp_path):
    model = build_tiny(SMALL)
    with pytest.raises(ValueError):
        save_checkpoint(model, tmp_path / "c.pt", 0, b"\x00" * 8)
    save_checkpoint(model, tmp_path / "c.pt", 0, param_checksum(model))
    assert load_checkpoint(build_tiny(SMALL), tmp_path / "c.pt") == (0, param_checksum(model))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
