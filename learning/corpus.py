"""Training text: docstrings of Python's standard library, split into per-node shards.

The corpus is already on every machine. Files are walked in sorted order, parsed with
``ast`` (never imported) and every module, class and function docstring is kept as one
document. A seeded permutation sends a held-out fraction of documents to the eval shard
and deals the rest round-robin to ``n_shards`` training shards. Tokens are bytes (0..255).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
import sysconfig
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})
"""Directories under the stdlib that are not the standard library's own documented code."""

DOC_SEPARATOR = b"\n\n"
"""Bytes placed between documents in a shard."""

MIN_DOC_CHARS = 20
"""Docstrings shorter than this carry no text worth training on."""

_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class CorpusSettings:
    """How the corpus is cut into shards."""

    n_shards: int = 4
    """Training shards (one per node)."""

    eval_fraction: float = 0.1
    """Fraction of documents held out for evaluation."""

    seed: int = 0
    """Seed of the document → shard assignment."""

    max_files: int | None = None
    """Read only the first N files in sorted order (None: all)."""

    def validate(self) -> None:
        """Raise ``ValueError`` on an impossible split."""
        if not isinstance(self.n_shards, int) or self.n_shards < 1:
            raise ValueError(f"CorpusSettings.n_shards must be an int >= 1, got {self.n_shards!r}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"CorpusSettings.eval_fraction must be in (0, 1), got {self.eval_fraction!r}")
        if self.max_files is not None and self.max_files < 1:
            raise ValueError(f"CorpusSettings.max_files must be None or >= 1, got {self.max_files!r}")


@dataclass(frozen=True)
class CorpusSplit:
    """Per-node training shards and the held-out evaluation shard, as bytes."""

    shards: tuple[bytes, ...]
    """Training text of each node."""

    eval: bytes
    """Held-out text every node evaluates on."""


def stdlib_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The ``.py`` files of the standard library (or ``root``) in sorted order, tests excluded."""
    base = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    return sorted(files)


def docstrings(source: str) -> list[str]:
    """Module, class and function docstrings of one Python source, in source order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        tree = ast.parse(source)
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, _DOC_NODES):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= MIN_DOC_CHARS:
                docs.append(doc)
    return docs


def load_documents(files: Iterable[Path]) -> list[str]:
    """All docstrings of ``files``; unreadable or unparsable files are skipped."""
    docs: list[str] = []
    for path in files:
        try:
            docs.extend(docstrings(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
    return docs


def split_documents(docs: list[str], settings: CorpusSettings) -> CorpusSplit:
    """Assign documents to the eval shard and ``n_shards`` training shards by a seeded permutation."""
    settings.validate()
    if len(docs) < settings.n_shards + 1:
        raise ValueError(f"{len(docs)} documents cannot fill {settings.n_shards} shards and an eval shard")
    order = np.random.default_rng(settings.seed).permutation(len(docs))
    n_eval = max(1, int(round(settings.eval_fraction * len(docs))))
    eval_docs = [docs[i] for i in sorted(order[:n_eval])]
    buckets: list[list[str]] = [[] for _ in range(settings.n_shards)]
    for rank, i in enumerate(order[n_eval:]):
        buckets[rank % settings.n_shards].append(i)
    shards = tuple(DOC_SEPARATOR.join(docs[i].encode("utf-8") for i in sorted(b)) for b in buckets)
    return CorpusSplit(shards=shards, eval=DOC_SEPARATOR.join(d.encode("utf-8") for d in eval_docs))


def _cached_documents(files: list[Path], cache_dir: Path) -> list[str]:
    """Documents of ``files``, read from / written to a JSON cache keyed by Python version and file list."""
    key = hashlib.blake2b(
        "\n".join([sys.version] + [str(f) for f in files]).encode(), digest_size=8
    ).hexdigest()
    cache = cache_dir / f"stdlib-docstrings-{sys.version_info.major}.{sys.version_info.minor}-{key}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    docs = load_documents(files)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(docs, fh)
    os.replace(tmp, cache)
    return docs


def stdlib_corpus(
    settings: CorpusSettings = CorpusSettings(),
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> CorpusSplit:
    """The standard library's docstrings split by ``settings`` (deterministic on one Python).

    Parsing the whole stdlib takes ~10 s of CPU; with ``cache_dir`` (e.g. ``~/.cache/plexus``)
    the extracted documents are kept in a JSON file and reused.
    """
    settings.validate()
    files = stdlib_files(root)
    if settings.max_files is not None:
        files = files[: settings.max_files]
    docs = load_documents(files) if cache_dir is None else _cached_documents(files, Path(cache_dir))
    return split_documents(docs, settings)


def load_text_files(paths: Iterable[str | os.PathLike]) -> bytes:
    """A node's own local training text: the given files' bytes, in sorted path order."""
    return DOC_SEPARATOR.join(Path(p).read_bytes() for p in sorted(map(str, paths)))


def sample_batch(data: bytes, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
    """``batch_size`` random windows of ``seq_len + 1`` bytes of ``data`` as a [B, T+1] int64 tensor."""
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    if len(data) < seq_len + 1:
        raise ValueError(f"text of {len(data)} bytes is shorter than a window of {seq_len + 1}")
    starts = np.random.default_rng(seed).integers(0, len(data) - seq_len, size=batch_size)
    buf = np.frombuffer(data, dtype=np.uint8)
    windows = np.stack([buf[s : s + seq_len + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(windows)


def eval_batches(data: bytes, n_batches: int, batch_size: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    """A fixed list of evaluation batches (the same for every node given the same seed)."""
    return [sample_batch(data, batch_size, seq_len, seed + i) for i in range(n_batches)]
