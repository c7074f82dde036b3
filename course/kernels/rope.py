"""Capstone: rotary position embeddings, fused with writing the KV cache.

RoPE rotates each pair of coordinates ``(x[i], x[i + D/2])`` of a query or key head by the angle
``position * freq[i]``::

    out[i]       = x[i] * cos - x[i + D/2] * sin
    out[i + D/2] = x[i + D/2] * cos + x[i] * sin

(Llama's "rotate half" pairing; the original RoFormer paper paired neighbours ``2i, 2i+1``
instead: a checkpoint is written for one pairing, and the other gives wrong answers.)

The fused Q, K, V projection writes one row of ``(n_heads + 2 * n_kv_heads) * head_dim`` values
per token. :func:`rope_qkv_kernel` reads that row once and does everything the attention needs
before it runs: it rotates the query heads into ``q``, rotates the key heads and stores them into
the KV cache at the token's position, and copies the value heads into the cache. Unfused, that is
three or four kernels and as many round trips through memory.

The position of the first new token is read from a one-element device tensor, not passed as a
number: a decode step launched from a CUDA graph replays the same arguments every time, so what
changes from step to step must live in memory.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def rope_qkv_kernel(
    qkv_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, k_cache_ptr, v_cache_ptr,
    n_tokens, seq_len, stride_qkv, stride_q_tok, stride_cache_b, stride_cache_h, stride_cache_s,
    N_HEADS: tl.constexpr, N_KV_HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_T: tl.constexpr,
):  # fmt: skip
    """Program ``(i, h)``: tokens ``[i*BLOCK_T, (i+1)*BLOCK_T)`` of head ``h`` of the qkv rows.

    ``h < N_HEADS``: a query head, rotated into ``q`` (rows ``b * seq_len + t``). Otherwise a key
    head ``h - N_HEADS``: rotated into the key cache, and the matching value head copied into the
    value cache, at position ``start + t`` of sequence ``b``.
    """
    HALF: tl.constexpr = HEAD_DIM // 2
    tok = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)  # flat index b * seq_len + t
    h = tl.program_id(1)
    live = tok < n_tokens
    tok = tl.where(live, tok, 0).to(tl.int64)
    pos = tl.load(pos_ptr) + tok % seq_len  # this token's position in its sequence
    d = tl.arange(0, HALF)
    angle = pos[:, None] * HALF + d[None, :]
    cos = tl.load(cos_ptr + angle, mask=live[:, None], other=1.0)
    sin = tl.load(sin_ptr + angle, mask=live[:, None], other=0.0)
    src = qkv_ptr + tok[:, None] * stride_qkv + h * HEAD_DIM + d[None, :]
    x1 = tl.load(src, mask=live[:, None], other=0.0).to(tl.float32)
    x2 = tl.load(src + HALF, mask=live[:, None], other=0.0).to(tl.float32)
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    if h < N_HEADS:
        dst = q_ptr + tok[:, None] * stride_q_tok + h * HEAD_DIM + d[None, :]
        tl.store(dst, out1.to(q_ptr.dtype.element_ty), mask=live[:, None])
        tl.store(dst + HALF, out2.to(q_ptr.dtype.element_ty), mask=live[:, None])
    else:
        kv_head = h - N_HEADS
        b = tok // seq_len
        row = b * stride_cache_b + kv_head * stride_cache_h + pos * stride_cache_s
        at = row[:, None] + d[None, :]
        tl.store(k_cache_ptr + at, out1.to(k_cache_ptr.dtype.element_ty), mask=live[:, None])
        tl.store(k_cache_ptr + at + HALF, out2.to(k_cache_ptr.dtype.element_ty),
                 mask=live[:, None])  # fmt: skip
        v_src = src + N_KV_HEADS * HEAD_DIM  # value head kv_head sits N_KV_HEADS heads later
        v1 = tl.load(v_src, mask=live[:, None], other=0.0)
        v2 = tl.load(v_src + HALF, mask=live[:, None], other=0.0)
        tl.store(v_cache_ptr + at, v1.to(v_cache_ptr.dtype.element_ty), mask=live[:, None])
        tl.store(v_cache_ptr + at + HALF, v2.to(v_cache_ptr.dtype.element_ty),
                 mask=live[:, None])  # fmt: skip


def rope_qkv(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    position: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    n_heads: int,
    *,
    q_out: torch.Tensor | None = None,
    start: int | None = None,
    kernel=None,
) -> torch.Tensor:
    """Rotate and scatter the fused projection ``qkv`` of shape ``(batch, seq, width)``.

    Returns ``q`` of shape ``(batch, seq, n_heads, head_dim)``; the rotated keys and the values
    go into ``k_cache`` / ``v_cache`` ``(batch, n_kv_heads, max_seq, head_dim)`` at positions
    ``position[0] + t``. The kernel cannot check that those positions fit in the cache (the
    position is on the device); pass ``start``, the same position as a number, to have it checked.
    """
    batch, seq, width = qkv.shape
    _, n_kv_heads, max_seq, head_dim = k_cache.shape
    if width != (n_heads + 2 * n_kv_heads) * head_dim or qkv.stride(-1) != 1:
        raise ValueError(
            f"rope_qkv: qkv rows have {width} values, but {n_heads} query and {n_kv_heads} "
            f"key/value heads of {head_dim} need {(n_heads + 2 * n_kv_heads) * head_dim}"
        )
    if k_cache.stride(-1) != 1 or k_cache.stride() != v_cache.stride():
        raise ValueError("rope_qkv: the caches must have rows of head_dim contiguous values")
    if position.dtype not in (torch.int32, torch.int64) or position.numel() != 1:
        raise TypeError("rope_qkv: position must be a one-element int32 or int64 tensor")
    if start is not None and not 0 <= start <= max_seq - seq:
        raise ValueError(
            f"rope_qkv: positions {start} .. {start + seq - 1} do not fit a cache of {max_seq}"
        )
    if q_out is None:
        q_out = torch.empty(batch, seq, n_heads, head_dim, device=qkv.device, dtype=qkv.dtype)
    rows = qkv.reshape(batch * seq, width)
    block_t = min(16, max(2, triton.next_power_of_2(batch * seq)))
    grid = (triton.cdiv(batch * seq, block_t), n_heads + n_kv_heads)
    (kernel or rope_qkv_kernel)[grid](
        rows, cos, sin, position, q_out, k_cache, v_cache,
        batch * seq, seq, rows.stride(0), n_heads * head_dim,
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        N_HEADS=n_heads, N_KV_HEADS=n_kv_heads, HEAD_DIM=head_dim, BLOCK_T=block_t,
    )  # fmt: skip
    return q_out


def rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE in torch for ``x`` of shape ``(..., seq, heads, head_dim)`` and tables ``(seq, D/2)``
    (the rows of the tables for the tokens' positions)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
