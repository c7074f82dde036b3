"""Capstone: attention for one new token against a long KV cache, split over the sequence.

In a decode step each sequence has *one* new query per head and a cache of thousands of keys. A
flash-attention program per (batch, head) would be far too few programs for the GPU: batch 1 with
8 key/value heads is 8 programs for 132 SMs. Flash-decoding (Dao, Haziza, Massa and Sizov, 2023)
splits the *keys* instead:

1. :func:`decode_attention_kernel`: program ``(s, b * n_kv_heads + g)`` streams its slice ``s`` of
   the keys past the queries of key/value head ``g``, with the online softmax of lessons 2 and 4,
   and writes an unnormalised partial output plus its running maximum and sum;
2. :func:`combine_kernel`: one program per (batch, query head) merges the slices' partial results,
   rescaling each by ``2^(m_s - m)`` exactly as the online softmax rescales its accumulator.

Grouped-query attention makes the first kernel denser: the ``group`` query heads that share a
key/value head are processed by *one* program, as the rows of a small ``(group, head_dim)`` query
tile (padded to 16 rows, the least ``tl.dot`` takes), so each key is loaded once per group instead
of once per query head, and the scores are a real matrix product.

The cache length is read from a device tensor (the position of the new token), so the same
launch, with the same grid, serves every step of a CUDA-graph-captured decode loop: slices past
the end simply find no keys.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from ..env import configure
from .attention import LOG2E


@triton.jit
def decode_attention_kernel(
    Q, K, V, PartOut, PartM, PartL, pos_ptr,
    keys_per_split, stride_qb, stride_kb, stride_kh,
    qk_scale,
    N_KV_HEADS: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr,
    HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Slice ``program_id(0)`` of the keys of one (batch, KV head), for its GROUP query heads."""
    split = tl.program_id(0)
    n_splits = tl.num_programs(0)
    bg = tl.program_id(1)
    b = (bg // N_KV_HEADS).to(tl.int64)
    g = bg % N_KV_HEADS
    n_keys = tl.load(pos_ptr) + 1  # the cache holds the new token's key too
    lo = split * keys_per_split
    hi = tl.minimum(lo + keys_per_split, n_keys)

    heads = g * GROUP + tl.arange(0, GROUP_PAD)  # the query heads of this KV head
    real = tl.arange(0, GROUP_PAD) < GROUP
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + b * stride_qb + heads[:, None] * HEAD_DIM + offs_d[None, :],
                mask=real[:, None], other=0.0)  # fmt: skip
    k_base = K + b * stride_kb + g * stride_kh
    v_base = V + b * stride_kb + g * stride_kh

    m_i = tl.full([GROUP_PAD], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([GROUP_PAD], dtype=tl.float32)
    acc = tl.zeros([GROUP_PAD, HEAD_DIM], dtype=tl.float32)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        keep = offs_n < hi
        kv = offs_n[:, None] * HEAD_DIM + offs_d[None, :]
        k = tl.load(k_base + kv, mask=keep[:, None], other=0.0)
        v = tl.load(v_base + kv, mask=keep[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale  # (GROUP_PAD, BLOCK_N), base-2 scaled scores
        s = tl.where(keep[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    # Partial results, one row per (batch, query head, split); an empty slice leaves m=-inf, l=0.
    row = (b * N_KV_HEADS * GROUP + heads) * n_splits + split
    tl.store(PartOut + row[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=real[:, None])
    tl.store(PartM + row, m_i, mask=real)
    tl.store(PartL + row, l_i, mask=real)


@triton.jit
def combine_kernel(
    PartOut, PartM, PartL, Out, stride_ob,
    N_HEADS: tl.constexpr, N_SPLITS: tl.constexpr, SPLITS_PAD: tl.constexpr,
    HEAD_DIM: tl.constexpr,
):  # fmt: skip
    """One (batch, query head): merge the splits' partial softmaxes into the output row."""
    bh = tl.program_id(0).to(tl.int64)
    splits = tl.arange(0, SPLITS_PAD)
    live = splits < N_SPLITS
    m = tl.load(PartM + bh * N_SPLITS + splits, mask=live, other=float("-inf"))
    l_s = tl.load(PartL + bh * N_SPLITS + splits, mask=live, other=0.0)
    m_max = tl.max(m, 0)
    weight = tl.where(m > float("-inf"), tl.math.exp2(m - m_max), 0.0)  # empty slices weigh 0
    offs_d = tl.arange(0, HEAD_DIM)
    part = tl.load(PartOut + (bh * N_SPLITS + splits)[:, None] * HEAD_DIM + offs_d[None, :],
                   mask=live[:, None], other=0.0)  # fmt: skip
    out = tl.sum(part * weight[:, None], 0) / tl.sum(l_s * weight, 0)
    b, h = bh // N_HEADS, bh % N_HEADS
    tl.store(Out + b * stride_ob + h * HEAD_DIM + offs_d, out.to(Out.dtype.element_ty))


@functools.cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def choose_splits(batch: int, n_kv_heads: int, max_seq: int, block_n: int, sms: int) -> int:
    """Enough key slices that ``batch * n_kv_heads * splits`` fills the GPU about twice, but no
    slice shorter than two tiles (each slice costs a partial row and its combination)."""
    want = max(1, (2 * sms) // (batch * n_kv_heads))
    most = max(1, max_seq // (2 * block_n))
    return min(want, most)


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    position: torch.Tensor,
    *,
    n_splits: int | None = None,
    block_n: int = 64,
    out: torch.Tensor | None = None,
    workspace: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    kernels: tuple | None = None,
) -> torch.Tensor:
    """Attention of one new query per head, ``q`` of shape ``(batch, n_heads, D)`` (or
    ``(batch, 1, n_heads, D)``), over keys ``0 .. position`` of the caches."""
    q3 = q.reshape(q.shape[0], -1, q.shape[-1])
    batch, n_heads, head_dim = q3.shape
    _, n_kv_heads, max_seq, _ = k_cache.shape
    if n_heads % n_kv_heads or k_cache.shape[-1] != head_dim or q3.stride(-1) != 1:
        raise ValueError(
            f"decode_attention: q {tuple(q.shape)} and cache {tuple(k_cache.shape)} do not fit"
        )
    if n_splits is None:
        sms = _sm_count(q.device.index or 0) if configure().on_gpu else 4
        n_splits = choose_splits(batch, n_kv_heads, max_seq, block_n, sms)
    keys_per_split = triton.cdiv(triton.cdiv(max_seq, n_splits), block_n) * block_n
    group = n_heads // n_kv_heads
    if workspace is None:
        rows = batch * n_heads * n_splits
        workspace = (
            torch.empty(rows, head_dim, device=q.device, dtype=torch.float32),
            torch.empty(rows, device=q.device, dtype=torch.float32),
            torch.empty(rows, device=q.device, dtype=torch.float32),
        )
    if out is None:
        out = torch.empty_like(q3)
    split_kernel, merge_kernel = kernels or (decode_attention_kernel, combine_kernel)
    part_out, part_m, part_l = workspace
    split_kernel[(n_splits, batch * n_kv_heads)](
        q3, k_cache, v_cache, part_out, part_m, part_l, position,
        keys_per_split, q3.stride(0), k_cache.stride(0), k_cache.stride(1),
        LOG2E / math.sqrt(head_dim),
        N_KV_HEADS=n_kv_heads, GROUP=group, GROUP_PAD=max(16, triton.next_power_of_2(group)),
        HEAD_DIM=head_dim, BLOCK_N=block_n,
    )  # fmt: skip
    out3 = out.reshape(batch, n_heads, head_dim)
    merge_kernel[(batch * n_heads,)](
        part_out, part_m, part_l, out3, out3.stride(0),
        N_HEADS=n_heads, N_SPLITS=n_splits, SPLITS_PAD=triton.next_power_of_2(n_splits),
        HEAD_DIM=head_dim,
    )  # fmt: skip
    return out.reshape(q.shape)
