"""A tiny GPT-2-style causal language model in plain torch, built from a config.

Byte-level (vocab 256), pre-LayerNorm blocks, tied input/output embeddings. The
initialisation is drawn from an explicit ``torch.Generator`` seeded by the config, so
two processes building the same config get bit-identical parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

INIT_STD = 0.02
"""GPT-2's normal initialisation scale."""


@dataclass(frozen=True)
class TinyConfig:
    """Shape and seed of a GPT-2-style causal LM."""

    vocab_size: int = 256
    """Token ids 0..vocab_size-1 (256: one token per byte)."""

    d_model: int = 128
    """Width of the residual stream."""

    n_layers: int = 4
    """Transformer blocks."""

    n_heads: int = 4
    """Attention heads (must divide d_model)."""

    context: int = 128
    """Longest sequence (learned positional embeddings)."""

    mlp_ratio: int = 4
    """Hidden width of the MLP as a multiple of d_model."""

    seed: int = 0
    """Seed of the parameter initialisation."""

    def validate(self) -> None:
        """Raise ``ValueError`` on an impossible shape."""
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "context", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TinyConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"TinyConfig.n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TinyConfig.seed must be an int >= 0, got {self.seed!r}")


TINY = TinyConfig()
"""The default: ~0.8M parameters, byte-level."""

GPT2_SMALL = TinyConfig(vocab_size=50257, d_model=768, n_layers=12, n_heads=12, context=1024)
"""GPT-2 small's shape (124M parameters), used by the benchmark only."""


class Block(nn.Module):
    """Pre-LN transformer block: causal self-attention then MLP."""

    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.out = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.n_heads, d // self.n_heads)
        q, k, v = (a.view(shape).transpose(1, 2) for a in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyLM(nn.Module):
    """GPT-2-style causal LM; ``forward(ids) -> logits``."""

    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.shape[1] > self.cfg.context:
            raise ValueError(f"ids must be [batch, <= {self.cfg.context}], got {tuple(ids.shape)}")
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T


def _init(model: TinyLM, seed: int) -> None:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln" in name or name.startswith("ln_"):
                p.fill_(1.0)
            else:
                nn.init.normal_(p, 0.0, INIT_STD, generator=gen)


def build_tiny(cfg: TinyConfig = TINY) -> TinyLM:
    """Build and initialise a model from ``cfg`` without touching global RNG state."""
    cfg.validate()
    with torch.device("meta"):
        model = TinyLM(cfg)
    model = model.to_empty(device="cpu")
    _init(model, cfg.seed)
    model.eval()
    return model


def loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``batch`` ([B, T+1] token ids)."""
    if batch.dim() != 2 or batch.shape[1] < 2:
        raise ValueError(f"batch must be [B, T+1] with T >= 1, got {tuple(batch.shape)}")
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def count_params(model: nn.Module) -> int:
    """Distinct parameters (tied weights once)."""
    return sum(p.numel() for p in model.parameters())
