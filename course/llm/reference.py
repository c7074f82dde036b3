"""The same decoder in plain PyTorch: the reference the course's kernels are checked against.

Eager PyTorch runs each line as one or more library kernels (cuBLAS for the products, SDPA's flash
or cuDNN kernel for attention, small element-wise kernels for the rest). It is the model a learner
would write first and the peer the capstone races. Run in float64 or float32 it is also the
reference for correctness.

``static=True`` is the form ``torch.compile`` and CUDA graphs want: every decode step has the same
shapes (attention runs over the whole cache, with the positions not yet written masked off) and
the position comes from a device tensor, so nothing recompiles from one step to the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cache import KVCache
from .config import LlamaConfig, rope_tables
from .weights import check_weights, layer_names, output_head


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float() if x.dtype != torch.float64 else x
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * w.to(x32.dtype)
    return y.to(x.dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` (batch, seq, heads, D); ``cos``, ``sin`` (seq, D/2) for the tokens' positions."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class TorchLlama:
    """A Llama 3 decoder in eager PyTorch, over a weight dict (see :mod:`course.llm.weights`)."""

    def __init__(self, weights: dict[str, torch.Tensor], config: LlamaConfig, *, dtype=None):
        check_weights(weights, config)
        self.config = config
        self.w = {n: (t.to(dtype) if dtype else t) for n, t in weights.items()}
        first = next(iter(self.w.values()))
        self.dtype, self.device = first.dtype, first.device
        self.cos, self.sin = rope_tables(config, self.device)
        self.head = output_head(self.w, config)

    def new_cache(self, batch: int, max_seq: int | None = None) -> KVCache:
        return KVCache.allocate(
            self.config, batch, device=self.device, dtype=self.dtype, max_seq=max_seq
        )

    def _attention(self, q, k_cache, v_cache, start: int, t: int, static: bool, position):
        c = self.config
        q = q.transpose(1, 2)  # (batch, heads, t, D)
        if static:  # the whole cache, future positions masked: the same shapes at every step
            keys = torch.arange(k_cache.shape[2], device=q.device)
            queries = position + torch.arange(t, device=q.device)
            mask = keys[None, :] <= queries[:, None]
            return F.scaled_dot_product_attention(
                q, k_cache, v_cache, attn_mask=mask, enable_gqa=c.group > 1
            )
        keys, values = k_cache[:, :, : start + t], v_cache[:, :, : start + t]
        if start == 0 or t == 1:  # a prompt (causal), or one new token (sees every key): no mask
            return F.scaled_dot_product_attention(q, keys, values, is_causal=start == 0 and t > 1,
                                                  enable_gqa=c.group > 1)  # fmt: skip
        # queries at positions start .. start + t - 1 see keys up to their own position
        mask = torch.ones(t, start + t, dtype=torch.bool, device=q.device).tril(start)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask,
                                              enable_gqa=c.group > 1)  # fmt: skip

    def forward(self, tokens: torch.Tensor, cache: KVCache, *, last_only: bool = False,
                static: bool = False) -> torch.Tensor:  # fmt: skip
        """Logits ``(batch, seq, vocab)`` (``seq`` = 1 with ``last_only``) for new ``tokens``
        ``(batch, seq)``, whose keys and values join ``cache``. ``static``: see the module."""
        if static:  # the position lives on the device and moves on inside the launches
            return self.forward_launches(tokens, cache, None, last_only=last_only, static=True)
        logits = self.forward_launches(tokens, cache, cache.reserve(tokens.shape[1]),
                                       last_only=last_only)  # fmt: skip
        cache.advance(tokens.shape[1])
        return logits

    def forward_launches(self, tokens, cache: KVCache, start, *, last_only=False, static=False):
        """:meth:`forward` without the host's bookkeeping: what ``torch.compile`` compiles and a
        CUDA graph captures. ``start`` is the position of the first token (``None`` when
        ``static``, which reads and advances ``cache.position`` on the device instead)."""
        c, w = self.config, self.w
        batch, t = tokens.shape
        if static:
            pos = cache.position.long()
            idx = pos + torch.arange(t, device=tokens.device)
            cos, sin = self.cos[idx], self.sin[idx]
        else:
            cos, sin, pos = self.cos[start : start + t], self.sin[start : start + t], None
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(c.n_layers):
            n = layer_names(i)
            h = rms_norm(x, w[n["attn_norm"]], c.norm_eps)
            q = (h @ w[n["q"]].T).view(batch, t, c.n_heads, c.head_dim)
            k = (h @ w[n["k"]].T).view(batch, t, c.n_kv_heads, c.head_dim)
            v = (h @ w[n["v"]].T).view(batch, t, c.n_kv_heads, c.head_dim)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if static:
                cache.k[i].index_copy_(2, idx, k.transpose(1, 2))
                cache.v[i].index_copy_(2, idx, v.transpose(1, 2))
            else:
                cache.k[i][:, :, start : start + t] = k.transpose(1, 2)
                cache.v[i][:, :, start : start + t] = v.transpose(1, 2)
            a = self._attention(q, cache.k[i], cache.v[i], start, t, static, pos)
            x = x + a.transpose(1, 2).reshape(batch, t, -1) @ w[n["o"]].T
            h = rms_norm(x, w[n["mlp_norm"]], c.norm_eps)
            x = x + (F.silu(h @ w[n["gate"]].T) * (h @ w[n["up"]].T)) @ w[n["down"]].T
        if last_only:
            x = x[:, -1:]
        logits = rms_norm(x, w["model.norm.weight"], c.norm_eps) @ self.head.T
        if static:
            cache.position.add_(t)
        return logits

    __call__ = forward
