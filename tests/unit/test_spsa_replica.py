"""learning.spsa.Replica: the per-node round state machine, late join and refusal of bad input."""

import pytest
import torch

from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import Replica, SpsaSettings, UpdateLog, UpdateRecord, param_checksum

SMALL = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16)
SETTINGS = SpsaSettings(lr=1e-3)
RUN = "replica-run"
PEERS = [b"\x02" * 38, b"\x01" * 38, b"\x03" * 38]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _losses(peer: bytes, round_: int):
    batch = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(peer[0] * 1000 + round_))
    return [lambda m: loss(m, batch)]


def _play_round(nodes: list[Replica]) -> list[UpdateRecord]:
    records = [node.own_update(peer, _losses(peer, node.round)) for node, peer in zip(nodes, PEERS)]
    for node in nodes:
        for rec in records:
            node.admit(rec, raw=b"signed" + rec.peer)
    return records


def test_nodes_stay_identical_and_late_joiner_catches_up(tmp_path):
    # Arrange: three nodes play two rounds; node 0 checkpoints after round 0
    nodes = [Replica(build_tiny(SMALL), SETTINGS, RUN) for _ in PEERS]
    _play_round(nodes)
    sums = {node.close_round() for node in nodes}
    nodes[0].save(tmp_path / "ckpt.pt")
    _play_round(nodes)
    sums2 = {node.close_round() for node in nodes}

    # Act: a joiner starts from the checkpoint and node 0's serialised log
    log = UpdateLog.from_bytes(nodes[0].log.to_bytes(after_round=0))
    joiner = Replica.join(build_tiny(SMALL), SETTINGS, tmp_path / "ckpt.pt", log)

    # Assert
    assert len(sums) == 1 and len(sums2) == 1 and sums != sums2
    assert joiner.round == 2 and joiner.checksum == nodes[0].checksum == param_checksum(joiner.model)


def test_bad_records_are_refused_without_harming_the_replica():
    # Arrange
    node = Replica(build_tiny(SMALL), SETTINGS, RUN)
    good = node.own_update(PEERS[0], _losses(PEERS[0], 0))
    node.admit(good)
    bad = [
        UpdateRecord("other", 0, PEERS[1], b"\x05", good.base_checksum),
        UpdateRecord(RUN, 5, PEERS[1], b"\x05", good.base_checksum),
        UpdateRecord(RUN, 0, PEERS[0], b"\x06", good.base_checksum),
        UpdateRecord(RUN, 0, PEERS[1], b"\x80", good.base_checksum),
        UpdateRecord(RUN, 0, PEERS[1], b"\x05\x05", good.base_checksum),
    ]

    # Act
    reasons = []
    for rec in bad:
        with pytest.raises(ValueError) as err:
            node.admit(rec)
        reasons.append(str(err.value))

    # Assert: only the good record is applied
    reference = Replica(build_tiny(SMALL), SETTINGS, RUN)
    reference.admit(good)
    assert node.peers_this_round() == 1
    assert node.close_round() == reference.close_round()
    assert [r.split(":")[0] for r in reasons] == [
        "wrong run", "wrong round", "second update from the same peer in this round",
        "bad gradient byte", "wrong sample count",
    ]


def test_early_record_waits_for_its_round():
    node = Replica(build_tiny(SMALL), SETTINGS, RUN)
    early = UpdateRecord(RUN, 1, PEERS[0], b"\x05", b"\x00" * 8)
    node.admit(early)
    assert node.peers_this_round() == 0
    node.close_round()
    assert node.peers_this_round() == 1
    with pytest.raises(ValueError, match="wrong round"):
        node.admit(UpdateRecord(RUN, 0, PEERS[1], b"\x05", b"\x00" * 8))
