"""The decoder on the course's own kernels: every operation of the forward pass is a Triton kernel
from the lessons or from their extensions in this capstone.

One layer of a prefill or a decode step runs these launches::

    rmsnorm            h = RMSNorm(x)                          kernels/rmsnorm.py (lesson 2's row)
    linear             qkv = h @ [Wq; Wk; Wv]^T                kernels/linear.py (lesson 3)
    rope_qkv           q = rope(q); cache <- rope(k), v         kernels/rope.py
    attention          prefill: gqa_attention                  kernels/gqa_attention.py (lesson 4)
                       decode:  decode_attention + combine     kernels/decode_attention.py
    linear, residual   x = x + attn @ Wo^T   (in place)        kernels/linear.py
    rmsnorm            h = RMSNorm(x)
    linear, swiglu     f = silu(h @ Wg^T) * (h @ Wu^T)         kernels/linear.py
    linear, residual   x = x + f @ Wd^T      (in place)        kernels/linear.py

plus the embedding lookup before the first layer and a last RMSNorm and the output head after the
last: 9 launches per layer in a prefill, 10 in a decode step, 16 layers, about 150 launches per
step for Llama-3.2-1B. The weights of Q, K and V, and of the gate and up projections, are stacked
once at load time, so each pair or triple is one product.

``compile=mini_compiler.jit`` runs every kernel that ``mini_compiler`` compiles as its x86 code
(on a CPU) and the rest through Triton; :attr:`CourseLlama.compiled_by` says which ran where.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..kernels import decode_attention as decode_mod
from ..kernels import gqa_attention as gqa_mod
from ..kernels import linear as linear_mod
from ..kernels import rmsnorm as rmsnorm_mod
from ..kernels import rope as rope_mod
from .cache import KVCache
from .config import LlamaConfig, rope_tables
from .weights import check_weights, layer_names, output_head

KERNELS = {
    "embedding": rmsnorm_mod.embedding_kernel,
    "rmsnorm": rmsnorm_mod.rmsnorm_kernel,
    "linear": linear_mod.linear_kernel,
    "rope_qkv": rope_mod.rope_qkv_kernel,
    "gqa_attention": gqa_mod.gqa_attention_kernel,
    "decode_attention": decode_mod.decode_attention_kernel,
    "combine": decode_mod.combine_kernel,
}


class _FirstThatCompiles:
    """Launch ``compiled[grid](...)``; if its first launch fails to compile (a construct the
    compiler does not support), launch Triton's ``kernel`` from then on. ``record[name]`` says
    which one ran."""

    def __init__(self, name, compiled, kernel, label, record):
        self.name, self.compiled, self.kernel, self.label, self.record = (
            name, compiled, kernel, label, record)  # fmt: skip

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            if self.compiled is not None:
                try:
                    result = self.compiled[grid](*args, **kwargs)
                    self.record[self.name] = self.label
                    return result
                except Exception as error:  # noqa: BLE001 - checked just below
                    if type(error).__name__ != "CompilationError":
                        raise
                    self.compiled = None
                    self.record[self.name] = f"Triton ({self.label}: {str(error).splitlines()[0]})"
            return self.kernel[grid](*args, **kwargs)

        return launch


class CourseLlama:
    """A Llama 3 decoder whose forward pass runs only the course's Triton kernels."""

    def __init__(
        self,
        weights: dict[str, torch.Tensor],
        config: LlamaConfig,
        *,
        dtype=None,
        compile: Callable | None = None,
    ):
        check_weights(weights, config)
        self.config = config
        w = {n: (t.to(dtype) if dtype else t).contiguous() for n, t in weights.items()}
        first = next(iter(w.values()))
        self.dtype, self.device = first.dtype, first.device
        self.embed = w["model.embed_tokens.weight"]
        self.head = output_head(w, config)
        self.final_norm = w["model.norm.weight"]
        self.layers = []
        for i in range(config.n_layers):
            n = layer_names(i)
            self.layers.append({
                "attn_norm": w[n["attn_norm"]], "mlp_norm": w[n["mlp_norm"]],
                "qkv": torch.cat([w[n["q"]], w[n["k"]], w[n["v"]]]).contiguous(),
                "o": w[n["o"]],
                "gate_up": torch.cat([w[n["gate"]], w[n["up"]]]).contiguous(),
                "down": w[n["down"]],
            })  # fmt: skip
        self.cos, self.sin = rope_tables(config, self.device)
        self.kernels, self.compiled_by = self._compile(compile)

    @staticmethod
    def _compile(compile):
        """Each kernel as launched: Triton's, or ``compile(kernel)`` where that compiles."""
        by = {name: "Triton" for name in KERNELS}
        if compile is None:
            return {}, by
        label = getattr(compile, "__module__", "compiled").split(".")[0]
        return {name: _FirstThatCompiles(name, compile(k), k, label, by)
                for name, k in KERNELS.items()}, by  # fmt: skip

    def new_cache(self, batch: int, max_seq: int | None = None) -> KVCache:
        return KVCache.allocate(
            self.config, batch, device=self.device, dtype=self.dtype, max_seq=max_seq
        )

    def _linear(self, x, weight, epilogue="none", **kw):
        kernel = self.kernels.get("linear")
        return linear_mod.linear(x, weight, epilogue, kernel=kernel, **kw)

    def _rmsnorm(self, x, weight):
        return rmsnorm_mod.rmsnorm(
            x, weight, self.config.norm_eps, kernel=self.kernels.get("rmsnorm")
        )

    def _attention(self, q, cache: KVCache, i: int, start: int, t: int):
        if t == 1 and start > 0:  # a decode step: flash-decoding over the cache
            kernels = None
            if "decode_attention" in self.kernels and "combine" in self.kernels:
                kernels = (self.kernels["decode_attention"], self.kernels["combine"])
            return decode_mod.decode_attention(q, cache.k[i], cache.v[i], cache.position,
                                               kernels=kernels)  # fmt: skip
        return gqa_mod.gqa_attention(q, cache.k[i], cache.v[i], start,
                                     kernel=self.kernels.get("gqa_attention"))  # fmt: skip

    def forward(self, tokens: torch.Tensor, cache: KVCache, *, last_only: bool = False):
        """Logits ``(batch, seq, vocab)`` (``seq`` = 1 with ``last_only``) for the new ``tokens``
        ``(batch, seq)``; their keys and values join ``cache``."""
        batch, t = tokens.shape
        if cache.batch != batch:
            raise ValueError(f"the cache holds {cache.batch} sequences, tokens has {batch}")
        logits = self.forward_launches(tokens, cache, cache.reserve(t), last_only=last_only)
        cache.advance(t)
        return logits

    def forward_launches(self, tokens, cache: KVCache, start: int, *, last_only: bool = False):
        """The kernel launches of :meth:`forward` alone, without the cache's bookkeeping: the part
        a CUDA graph captures (see :class:`~course.llm.generate.GraphedDecodeStep`)."""
        c = self.config
        batch, t = tokens.shape
        x = rmsnorm_mod.embedding(tokens, self.embed, kernel=self.kernels.get("embedding"))
        for i, layer in enumerate(self.layers):
            h = self._rmsnorm(x, layer["attn_norm"])
            qkv = self._linear(h, layer["qkv"])
            rope_kernel = self.kernels.get("rope_qkv")
            q = rope_mod.rope_qkv(qkv, self.cos, self.sin, cache.position, cache.k[i], cache.v[i],
                                  c.n_heads, start=start, kernel=rope_kernel)  # fmt: skip
            a = self._attention(q, cache, i, start, t)
            self._linear(a.reshape(batch, t, -1), layer["o"], "residual", residual=x, out=x)
            h = self._rmsnorm(x, layer["mlp_norm"])
            f = self._linear(h, layer["gate_up"], "swiglu")
            self._linear(f, layer["down"], "residual", residual=x, out=x)
        if last_only:
            x = x[:, -1:]  # a strided view: the norm reads each sequence's last row in place
        return self._linear(self._rmsnorm(x, self.final_norm), self.head)

    __call__ = forward
