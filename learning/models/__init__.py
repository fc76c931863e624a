"""Models for shared-seed SPSA: the tiny byte-level LM and an optional Hugging Face loader."""

from .hf import HfUnavailable, load_causal_lm
from .tiny import GPT2_SMALL, TINY, TinyConfig, TinyLM, build_tiny, count_params, loss

__all__ = [
    "GPT2_SMALL",
    "TINY",
    "HfUnavailable",
    "TinyConfig",
    "TinyLM",
    "build_tiny",
    "count_params",
    "load_causal_lm",
    "loss",
]
