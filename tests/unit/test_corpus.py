"""learning.corpus: stdlib docstrings, seeded shards, byte batches."""

import pytest
import torch

from learning.corpus import (
    CorpusSettings,
    docstrings,
    eval_batches,
    load_text_files,
    sample_batch,
    split_documents,
    stdlib_corpus,
    stdlib_files,
)

DOCS = [f"Document number {i} explains something useful." for i in range(50)]


def test_docstrings_found_in_module_class_and_function():
    source = '"""Module doc long enough."""\nclass A:\n    """Class doc long enough."""\n    def f(self):\n        """Method doc long enough."""\n'
    assert docstrings(source) == ["Module doc long enough.", "Class doc long enough.", "Method doc long enough."]


def test_split_is_deterministic_disjoint_and_complete():
    # Arrange
    settings = CorpusSettings(n_shards=4, eval_fraction=0.2, seed=3)

    # Act
    a, b = split_documents(DOCS, settings), split_documents(DOCS, settings)
    other = split_documents(DOCS, CorpusSettings(n_shards=4, eval_fraction=0.2, seed=4))

    # Assert
    assert a == b and a != other
    pieces = [d for shard in a.shards + (a.eval,) for d in shard.split(b"\n\n")]
    assert sorted(pieces) == sorted(d.encode() for d in DOCS)
    assert len(a.eval.split(b"\n\n")) == 10


def test_real_stdlib_corpus_shards_are_nonempty():
    files = stdlib_files()
    split = stdlib_corpus(CorpusSettings(n_shards=3, max_files=40))
    assert len(files) > 100 and files == sorted(files)
    assert all(len(s) > 1000 for s in split.shards) and len(split.eval) > 100


def test_sample_batch_is_seeded_and_in_byte_range():
    data = b"".join(d.encode() for d in DOCS)
    a, b = sample_batch(data, 4, 16, seed=1), sample_batch(data, 4, 16, seed=1)
    assert torch.equal(a, b) and a.shape == (4, 17) and a.dtype == torch.int64
    assert int(a.min()) >= 0 and int(a.max()) <= 255
    assert not torch.equal(a, sample_batch(data, 4, 16, seed=2))
    assert len(eval_batches(data, 3, 2, 8, seed=0)) == 3
    with pytest.raises(ValueError):
        sample_batch(b"short", 1, 16, seed=0)


def test_bad_settings_and_local_files(tmp_path):
    for bad in (CorpusSettings(n_shards=0), CorpusSettings(eval_fraction=1.0), CorpusSettings(max_files=0)):
        with pytest.raises(ValueError):
            bad.validate()
    with pytest.raises(ValueError):
        split_documents(DOCS[:2], CorpusSettings(n_shards=4))
    (tmp_path / "b.txt").write_bytes(b"two")
    (tmp_path / "a.txt").write_bytes(b"one")
    assert load_text_files([tmp_path / "b.txt", tmp_path / "a.txt"]) == b"one\n\ntwo"


def test_cache_gives_the_same_split(tmp_path):
    settings = CorpusSettings(n_shards=2, max_files=10)
    first = stdlib_corpus(settings, cache_dir=tmp_path)
    cached = list(tmp_path.glob("stdlib-docstrings-*.json"))
    second = stdlib_corpus(settings, cache_dir=tmp_path)
    assert len(cached) == 1 and first == second == stdlib_corpus(settings)
