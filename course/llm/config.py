"""The shape of a Llama 3 decoder, and the rotary-embedding tables it needs.

A Llama 3 model is a stack of identical decoder layers between a token embedding and an output
head. Everything about its size is a handful of numbers, kept in :class:`LlamaConfig`:

* ``hidden``: the width of the residual stream (2048 in Llama-3.2-1B);
* ``n_heads`` query heads and ``n_kv_heads`` key/value heads of ``head_dim`` each: with fewer
  key/value heads than query heads (grouped-query attention, 32 and 8 in Llama-3.2-1B) each
  key/value head serves a *group* of ``n_heads // n_kv_heads`` query heads, so the KV cache is
  that many times smaller;
* ``ffn``: the width of the SwiGLU feed-forward block (8192);
* ``vocab``: the number of tokens (128256);
* ``rope_theta`` and ``rope_scaling``: the rotary embedding's frequencies (below).

Rotary embeddings (Su et al., "RoFormer", 2021) encode a token's position by *rotating* pairs of
query and key coordinates by an angle ``position * frequency``: the score of a query at position
``m`` and a key at position ``n`` then depends only on ``m - n``. Llama pairs coordinate ``i``
with ``i + head_dim / 2`` ("rotate half"). Llama 3 stretches the low frequencies so the model
handles long contexts (:func:`inverse_frequencies`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3's frequency scaling: wavelengths longer than ``original_context / low_freq_factor``
    are divided by ``factor``, shorter than ``original_context / high_freq_factor`` kept, and
    those in between blended smoothly."""

    factor: float = 32.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context: int = 8192


@dataclass(frozen=True)
class LlamaConfig:
    """The sizes of a Llama 3 decoder. ``head_dim`` defaults to ``hidden // n_heads``."""

    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn: int
    vocab: int
    head_dim: int = 0
    rope_theta: float = 500_000.0
    rope_scaling: RopeScaling | None = field(default_factory=RopeScaling)
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    max_seq: int = 4096

    def __post_init__(self):
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden // max(self.n_heads, 1))
        problems = []
        if self.n_heads % max(self.n_kv_heads, 1):
            problems.append(
                f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads}): "
                "each key/value head serves a whole group of query heads"
            )
        if self.head_dim < 16 or self.head_dim & (self.head_dim - 1):
            problems.append(
                f"head_dim ({self.head_dim}) must be a power of two of at least 16: a Triton "
                "tile's extent is a power of two, and tl.dot needs at least 16"
            )
        for name in ("hidden", "n_layers", "n_heads", "n_kv_heads", "ffn", "vocab", "max_seq"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, not {getattr(self, name)}")
        if problems:
            raise ValueError("LlamaConfig: " + "; ".join(problems))

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.n_heads // self.n_kv_heads

    @property
    def qkv_width(self) -> int:
        """Width of the fused Q, K, V projection's output."""
        return (self.n_heads + 2 * self.n_kv_heads) * self.head_dim

    def parameter_count(self) -> int:
        attn = self.hidden * self.qkv_width + self.n_heads * self.head_dim * self.hidden
        mlp = 3 * self.hidden * self.ffn
        per_layer = attn + mlp + 2 * self.hidden
        head = 0 if self.tie_embeddings else self.vocab * self.hidden
        return self.vocab * self.hidden + self.n_layers * per_layer + self.hidden + head

    def with_(self, **changes) -> LlamaConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


# Llama-3.2-1B's shapes (its config.json): the default on a GPU.
LLAMA_3_2_1B = LlamaConfig(
    hidden=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn=8192, vocab=128256, head_dim=64,
)  # fmt: skip

# Small enough for Triton's interpreter: two layers, every feature of the big one (GQA groups of 2,
# sizes that are not powers of two where the kernels allow it: ffn and vocab).
TINY = LlamaConfig(
    hidden=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn=96, vocab=300, head_dim=16,
    max_seq=64, rope_scaling=RopeScaling(factor=8.0, original_context=32),
)  # fmt: skip


def inverse_frequencies(config: LlamaConfig) -> torch.Tensor:
    """The rotation frequency of each coordinate pair, ``theta^(-2i / head_dim)``, with Llama 3's
    scaling applied (float64, ``head_dim / 2`` values)."""
    half = config.head_dim // 2
    inv = config.rope_theta ** (-torch.arange(half, dtype=torch.float64) * 2 / config.head_dim)
    s = config.rope_scaling
    if s is None:
        return inv
    wavelength = 2 * math.pi / inv
    low_wavelength = s.original_context / s.low_freq_factor  # longer than this: scale fully
    high_wavelength = s.original_context / s.high_freq_factor  # shorter than this: keep
    smooth = (s.original_context / wavelength - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    blended = (1 - smooth) * inv / s.factor + smooth * inv
    out = torch.where(wavelength > low_wavelength, inv / s.factor, inv)
    middle = (wavelength >= high_wavelength) & (wavelength <= low_wavelength)
    return torch.where(middle, blended, out)


def rope_tables(config: LlamaConfig, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of shape ``(max_seq, head_dim / 2)``, fp32: row ``p`` holds the angles of
    position ``p``. Computed in float64, stored in fp32 (the kernels compute rotations in fp32)."""
    positions = torch.arange(config.max_seq, dtype=torch.float64)
    angles = positions[:, None] * inverse_frequencies(config)[None, :]
    return angles.cos().float().to(device), angles.sin().float().to(device)
