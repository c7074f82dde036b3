"""The KV cache: every layer's keys and values of the tokens seen so far.

Generating token ``t + 1`` needs the keys and values of tokens ``0 .. t`` at every layer. They do
not change once computed (a token's key depends only on the tokens before it), so a decoder keeps
them in a cache and computes only the new token's. The cache here is allocated once at its full
size, ``(batch, n_kv_heads, max_seq, head_dim)`` per layer for keys and again for values, and
filled from the front: that keeps every address fixed, which CUDA graphs require.

The number of tokens already cached is kept twice: ``length`` as a Python int, for the host code
that plans launches, and ``position`` as a one-element device tensor, for kernels launched from a
CUDA graph, which cannot be handed a new number at each replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import LlamaConfig


@dataclass
class KVCache:
    k: list[torch.Tensor]  # per layer: (batch, n_kv_heads, max_seq, head_dim)
    v: list[torch.Tensor]
    position: torch.Tensor  # int32, one element: tokens already cached
    length: int = 0

    @classmethod
    def allocate(cls, config: LlamaConfig, batch: int, *, device, dtype, max_seq=None) -> KVCache:
        max_seq = max_seq or config.max_seq
        shape = (batch, config.n_kv_heads, max_seq, config.head_dim)
        k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        return cls(k, v, torch.zeros(1, device=device, dtype=torch.int32))

    @property
    def max_seq(self) -> int:
        return self.k[0].shape[2]

    @property
    def batch(self) -> int:
        return self.k[0].shape[0]

    def reserve(self, n_new: int) -> int:
        """Check that ``n_new`` more tokens fit; return the position of the first."""
        if self.length + n_new > self.max_seq:
            raise ValueError(
                f"KV cache full: {self.length} tokens cached + {n_new} new > max_seq "
                f"{self.max_seq}. Allocate a longer cache (max_seq=...)."
            )
        return self.length

    def advance(self, n_new: int) -> None:
        self.length += n_new
        self.position.fill_(self.length)

    def reset(self) -> None:
        self.length = 0
        self.position.zero_()
