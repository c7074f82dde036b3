"""Capstone: lesson 4's flash attention, extended to grouped-query attention and a KV cache.

Two changes turn lesson 4's forward kernel into the one a Llama prefill needs; the inner loop,
:func:`~course.kernels.attention._fwd_inner`, is imported unchanged.

* **Grouped-query attention.** Query head ``h`` reads key/value head ``h // group``, where
  ``group = n_heads // n_kv_heads``: the ``group`` query heads that share a key/value head are
  *consecutive*. That is one line, where the kernel computes its key and value pointers.
* **A query offset.** With a KV cache, the ``T`` new queries sit at positions
  ``start .. start + T - 1`` and see ``start + T`` keys: the ones already in the cache, and their
  own. The causal rule "key ``j`` is visible to query ``i`` when ``j <= i``" holds for *absolute*
  positions, so the kernel adds ``start`` to its query rows before the loop, and the diagonal
  (masked) part of the loop begins at the last ``BLOCK_N`` boundary below the tile's first query.
  Lesson 4 is the case ``start = 0``.

Layouts: ``q`` and the output are ``(batch, T, n_heads, head_dim)``, which is how the Q projection
writes them and how the output projection reads them, so no transpose is needed on either side;
the cache is ``(batch, n_kv_heads, max_seq, head_dim)``, each head's keys contiguous.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .attention import LOG2E, _fwd_inner, default_fwd_config


# Kernel signatures and calls keep related arguments on one line, so the formatter is off here.
# fmt: off
@triton.jit
def gqa_attention_kernel(
    Q, K, V, Out, start, T,
    stride_qb, stride_qt, stride_ob, stride_ot, stride_kb, stride_kh,
    qk_scale,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, N_HEADS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """One program: BLOCK_M new queries of one (batch, query head), causal, after ``start``
    cached keys."""
    tile_m = tl.num_programs(0) - 1 - tl.program_id(0)  # the longest tiles first, as in lesson 4
    bh = tl.program_id(1)
    b = (bh // N_HEADS).to(tl.int64)
    h = bh % N_HEADS
    kv_head = h // GROUP  # grouped-query attention: consecutive query heads share a KV head
    k_base = K + b * stride_kb + kv_head * stride_kh
    v_base = V + b * stride_kb + kv_head * stride_kh

    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)  # indices among the T new queries
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + b * stride_qb + rows[:, None] * stride_qt + h * HEAD_DIM + offs_d[None, :],
                mask=rows[:, None] < T, other=0.0)  # fmt: skip
    offs_m = start + rows  # absolute positions: the causal mask compares these with key indices
    n_keys = start + T

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    first = start + tile_m * BLOCK_M  # every key before the tile's first query is visible to all
    unmasked_end = (first // BLOCK_N) * BLOCK_N
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, n_keys, qk_scale,
                               0, unmasked_end, BLOCK_N, HEAD_DIM, DIAGONAL=False, MASK_N=False)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, n_keys, qk_scale,
                               unmasked_end, tl.minimum(first + BLOCK_M, n_keys), BLOCK_N,
                               HEAD_DIM, DIAGONAL=True, MASK_N=True)  # fmt: skip
    out = (acc / l_i[:, None]).to(Out.dtype.element_ty)
    tl.store(Out + b * stride_ob + rows[:, None] * stride_ot + h * HEAD_DIM + offs_d[None, :],
             out, mask=rows[:, None] < T)  # fmt: skip
# fmt: on


def gqa_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    start: int,
    *,
    out: torch.Tensor | None = None,
    kernel=None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    """Causal attention of ``q`` ``(batch, T, n_heads, D)`` at positions ``start ..`` over the
    first ``start + T`` keys and values of the caches ``(batch, n_kv_heads, max_seq, D)``."""
    batch, t, n_heads, head_dim = q.shape
    n_kv_heads, max_seq = k_cache.shape[1], k_cache.shape[2]
    if n_heads % n_kv_heads or k_cache.shape != v_cache.shape or k_cache.shape[3] != head_dim:
        raise ValueError(
            f"gqa_attention: q {tuple(q.shape)} and caches {tuple(k_cache.shape)} / "
            f"{tuple(v_cache.shape)} do not fit: n_heads must be a multiple of n_kv_heads"
        )
    if start + t > max_seq:
        raise ValueError(f"gqa_attention: {start} + {t} tokens do not fit a cache of {max_seq}")
    if q.stride(-1) != 1 or q.stride(2) != head_dim or k_cache.stride(-1) != 1:
        raise ValueError("gqa_attention: q's heads and the caches' rows must be contiguous")
    cfg = default_fwd_config(head_dim, True)
    block_m, block_n = block_m or cfg.block_m, block_n or cfg.block_n
    if out is None:
        out = torch.empty_like(q)
    grid = (triton.cdiv(t, block_m), batch * n_heads)
    extra = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages} if kernel is None else {}
    (kernel or gqa_attention_kernel)[grid](
        q, k_cache, v_cache, out, start, t,
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        k_cache.stride(0), k_cache.stride(1),
        LOG2E / math.sqrt(head_dim),
        GROUP=n_heads // n_kv_heads, HEAD_DIM=head_dim, N_HEADS=n_heads,
        BLOCK_M=block_m, BLOCK_N=block_n, **extra,
    )  # fmt: skip
    return out
