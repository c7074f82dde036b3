"""Lesson 4: flash attention, forward and backward, in Triton.

Attention is ``O = softmax(scale * Q K^T) V`` for each batch entry and head. Written naively it
builds the N x N score matrix in GPU memory, which costs O(N^2) memory and traffic. FlashAttention
(Dao et al., NeurIPS 2022) computes the same result tile by tile:

* one program owns a tile of ``BLOCK_M`` query rows and keeps it, and its output accumulator, on
  chip; tiles of ``BLOCK_N`` keys and values stream past it;
* the softmax is computed *online* (Milakov & Gimelshein 2018): a running maximum ``m`` and running
  sum ``l`` per row; when a new tile raises the maximum, the accumulator and the sum are rescaled by
  ``2^(m_old - m_new)``; the division by ``l`` happens once at the end (FlashAttention-2's change);
* exponentials are ``exp2`` with ``scale * log2(e)`` folded into the scores, so each score costs one
  fused multiply-add before the exponential;
* with a causal mask, a query tile never visits the key tiles above the diagonal, and only the tiles
  *on* the diagonal need the mask: the loop is split into an unmasked off-diagonal part and a masked
  diagonal part;
* the forward pass saves one number per row, the log-sum-exp (in base 2 here), from which the
  backward pass recomputes the probabilities instead of storing them.

The backward pass is FlashAttention-2's: a small kernel computes ``delta = rowsum(dO * O)``, one
kernel owns a tile of keys and accumulates ``dK`` and ``dV`` over all query tiles, and another owns
a tile of queries and accumulates ``dQ`` over all key tiles. :class:`FlashAttention` wraps both
passes in a ``torch.autograd.Function``; :func:`attention` is the public entry point.

Every kernel masks the sequence dimension, so N need not be a multiple of the tiles; when it is
(the common case), the ``EVEN_N`` switch compiles the masks away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ..env import configure
from ._launch import LaunchCache, aligned
from ._validate import require_same_tensors

LOG2E = 1.4426950408889634  # log2(e): exp(x) == exp2(x * LOG2E)
SUPPORTED_HEAD_DIMS = (16, 32, 64, 128)


# Kernel signatures and calls keep related arguments on one line, so the formatter is off here.
# fmt: off
# --------------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------------


@triton.jit
def _exp2_half(x):
    """2^x for fp32 ``x`` <= 0, computed in fp16, two values per instruction.

    The special-function unit that computes exponentials does 16 of them per clock per SM, against
    about 4096 tensor-core FLOPs; with head_dim 64 each score costs 256 FLOPs, so the exponentials
    take as long as both matmuls. ``ex2.approx.f16x2`` computes two fp16 exponentials per
    instruction, and its result is already the fp16 ``p`` the P V product needs. Rounding ``x`` to
    fp16 first costs at most 2^-12 |x| in the exponent, i.e. under 0.2% of ``p`` where
    ``p`` > 2^-8, and the fp16 ``p`` goes into the fp16 product anyway. GPU only (inline PTX).

    Measured on the H100 (lesson 4, tuning round 3) this is *slower* at every configuration tried,
    by roughly 3-13%: the exponentials were not what limited the loop, and the extra conversions
    (the argument to fp16, ``p`` back to fp32 for the row sums) cost more than the halved
    exponentials save. So the chosen configurations leave it off; the option stays so the
    measurement can be repeated.
    """
    return tl.inline_asm_elementwise(
        "ex2.approx.f16x2 $0, $1;", "=r,r", [x.to(tl.float16)],
        dtype=tl.float16, is_pure=True, pack=2,
    )


@triton.jit
def _fwd_inner(
    acc, l_i, m_i, q,  # running state of one query tile, and the tile itself
    k_base, v_base, offs_m, offs_d, N, qk_scale,
    lo, hi,  # the key range this call visits
    BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    DIAGONAL: tl.constexpr,  # apply the causal mask (only tiles that straddle the diagonal)
    MASK_N: tl.constexpr,  # keys may run past N (only the last tile when N % BLOCK_N != 0)
    HALF_EXP: tl.constexpr = False,  # fp16 exponentials, two per instruction (GPU, fp16 only)
):
    """Stream key/value tiles ``[lo, hi)`` past one query tile, updating (acc, l_i, m_i)."""
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kv_offsets = offs_n[:, None] * HEAD_DIM + offs_d[None, :]
        if MASK_N:
            k = tl.load(k_base + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
            v = tl.load(v_base + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
        else:
            k = tl.load(k_base + kv_offsets)
            v = tl.load(v_base + kv_offsets)
        qk = tl.dot(q, tl.trans(k))  # (BLOCK_M, BLOCK_N) raw scores, fp32
        if DIAGONAL or MASK_N:
            keep = offs_n[None, :] < N
            if DIAGONAL:
                keep = keep & (offs_m[:, None] >= offs_n[None, :])
            qk = tl.where(keep, qk * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            qk = qk - m_new[:, None]
        else:
            # the scale folded into one fused multiply-add: qk * (sm_scale * log2 e) - m
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_new[:, None]
        if HALF_EXP:
            p = _exp2_half(qk)  # fp16 already; the row sums below still add up in fp32
        else:
            p = tl.math.exp2(qk)
        alpha = tl.math.exp2(m_i - m_new)  # < 1 when the maximum grew: shrink the old state
        l_i = l_i * alpha + tl.sum(p.to(tl.float32), 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)  # acc += P V, accumulated in fp32
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def attention_fwd_kernel(
    Q, K, V, Out, LSE,  # Q, K, V, Out: (B*H, N, HEAD_DIM) contiguous; LSE: (B*H, N) fp32
    N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
    SPLIT_DIAGONAL: tl.constexpr = True,  # causal: unmasked off-diagonal loop + masked diagonal
    HEAVY_FIRST: tl.constexpr = True,  # causal: launch the longest query tiles first
    HALF_EXP: tl.constexpr = False,  # exponentials in fp16, two per instruction (see _exp2_half)
):
    """One program: one tile of BLOCK_M query rows of one (batch, head)."""
    if CAUSAL and HEAVY_FIRST:
        tile_m = tl.num_programs(0) - 1 - tl.program_id(0)  # the last tile visits the most keys
    else:
        tile_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    start_m = tile_m * BLOCK_M
    head_offset = bh * N * HEAD_DIM
    q_base, k_base, v_base = Q + head_offset, K + head_offset, V + head_offset

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q_offsets = offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    if EVEN_N:
        q = tl.load(q_base + q_offsets)
    else:
        q = tl.load(q_base + q_offsets, mask=offs_m[:, None] < N, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    if CAUSAL:
        diag_end = tl.minimum(start_m + BLOCK_M, N)  # keys after the tile's last query: skipped
        if SPLIT_DIAGONAL:
            # Off-diagonal tiles: every key precedes every query of the tile, so no mask at all.
            acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, N,
                                       qk_scale, 0, start_m, BLOCK_N, HEAD_DIM,
                                       DIAGONAL=False, MASK_N=False, HALF_EXP=HALF_EXP)
            # Diagonal tiles: the only ones that need the causal mask.
            acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, N,
                                       qk_scale, start_m, diag_end, BLOCK_N, HEAD_DIM,
                                       DIAGONAL=True, MASK_N=not EVEN_N, HALF_EXP=HALF_EXP)
        else:
            # One loop that masks every tile: correct, but pays for the mask everywhere.
            acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, N,
                                       qk_scale, 0, diag_end, BLOCK_N, HEAD_DIM,
                                       DIAGONAL=True, MASK_N=not EVEN_N, HALF_EXP=HALF_EXP)
    else:
        n_full = (N // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, N,
                                   qk_scale, 0, n_full, BLOCK_N, HEAD_DIM,
                                   DIAGONAL=False, MASK_N=False, HALF_EXP=HALF_EXP)
        if not EVEN_N:  # the one partial key tile at the end
            acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, offs_m, offs_d, N,
                                       qk_scale, n_full, N, BLOCK_N, HEAD_DIM,
                                       DIAGONAL=False, MASK_N=True, HALF_EXP=HALF_EXP)

    out = acc / l_i[:, None]  # the softmax's division, once per row, at the very end
    lse = m_i + tl.math.log2(l_i)  # log2 of the row's sum of 2^(scaled score)
    out = out.to(Out.dtype.element_ty)
    if EVEN_N:
        tl.store(Out + head_offset + q_offsets, out)
        tl.store(LSE + bh * N + offs_m, lse)
    else:
        tl.store(Out + head_offset + q_offsets, out, mask=offs_m[:, None] < N)
        tl.store(LSE + bh * N + offs_m, lse, mask=offs_m < N)


# --------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------


@triton.jit
def attention_bwd_delta_kernel(Out, DO, DELTA, N, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr):
    """delta[i] = sum_d dO[i, d] * O[i, d], the term in every row's dS = P * (dP - delta)."""
    bh = tl.program_id(1).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    offsets = bh * N * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    rows = offs_m[:, None] < N
    o = tl.load(Out + offsets, mask=rows, other=0.0).to(tl.float32)
    do = tl.load(DO + offsets, mask=rows, other=0.0).to(tl.float32)
    tl.store(DELTA + bh * N + offs_m, tl.sum(o * do, 1), mask=offs_m < N)


@triton.jit
def _dkdv_inner(
    dk, dv, k, v,  # one key/value tile and its gradient accumulators
    q_base, do_base, lse_base, delta_base, offs_n, offs_d, N, qk_scale,
    lo, hi,
    BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, DIAGONAL: tl.constexpr, MASK_N: tl.constexpr,
):
    """Stream query tiles ``[lo, hi)`` past one key tile; scores are transposed (keys x queries)."""
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        qT_offsets = offs_m[None, :] * HEAD_DIM + offs_d[:, None]  # (HEAD_DIM, BLOCK_M)
        do_offsets = offs_m[:, None] * HEAD_DIM + offs_d[None, :]  # (BLOCK_M, HEAD_DIM)
        if MASK_N:
            qT = tl.load(q_base + qT_offsets, mask=offs_m[None, :] < N, other=0.0)
            do = tl.load(do_base + do_offsets, mask=offs_m[:, None] < N, other=0.0)
            # lse = +inf past N makes those rows' probabilities exactly 0
            lse = tl.load(lse_base + offs_m, mask=offs_m < N, other=float("inf"))
            delta = tl.load(delta_base + offs_m, mask=offs_m < N, other=0.0)
        else:
            qT = tl.load(q_base + qT_offsets)
            do = tl.load(do_base + do_offsets)
            lse = tl.load(lse_base + offs_m)
            delta = tl.load(delta_base + offs_m)
        # Recompute P^T from the saved log-sum-exp instead of reading a stored N x N matrix.
        pT = tl.math.exp2(tl.dot(k, qT) * qk_scale - lse[None, :])
        if DIAGONAL:
            pT = tl.where(offs_m[None, :] >= offs_n[:, None], pT, 0.0)
        dv = tl.dot(pT.to(do.dtype), do, dv)  # dV += P^T dO
        dpT = tl.dot(v, tl.trans(do))  # dP^T = (dO V^T)^T
        dsT = pT * (dpT - delta[None, :])  # dS = P * (dP - delta), transposed
        dk = tl.dot(dsT.to(qT.dtype), tl.trans(qT), dk)  # dK += dS^T Q (scale applied at the end)
    return dk, dv


@triton.jit
def attention_bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV,
    N, sm_scale, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
):
    """One program: one tile of BLOCK_N keys of one (batch, head); query tiles stream past."""
    bh = tl.program_id(1).to(tl.int64)
    start_n = tl.program_id(0) * BLOCK_N
    head_offset = bh * N * HEAD_DIM
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    kv_offsets = head_offset + offs_n[:, None] * HEAD_DIM + offs_d[None, :]
    if EVEN_N:
        k = tl.load(K + kv_offsets)
        v = tl.load(V + kv_offsets)
    else:
        k = tl.load(K + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
        v = tl.load(V + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    q_base, do_base = Q + head_offset, DO + head_offset
    lse_base, delta_base = LSE + bh * N, DELTA + bh * N

    m_full = (N // BLOCK_M) * BLOCK_M
    if CAUSAL:
        # Queries before start_n never see these keys; the diagonal tile needs the mask ...
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, offs_n, offs_d,
                             N, qk_scale, start_n, tl.minimum(start_n + BLOCK_N, N),
                             BLOCK_M, HEAD_DIM, DIAGONAL=True, MASK_N=not EVEN_N)
        lo = start_n + BLOCK_N  # ... and every later query tile sees all of them
    else:
        lo = 0
    dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, offs_n, offs_d,
                         N, qk_scale, lo, m_full, BLOCK_M, HEAD_DIM, DIAGONAL=False, MASK_N=False)
    if not EVEN_N:  # the partial query tile at the end
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, offs_n, offs_d,
                             N, qk_scale, tl.maximum(lo, m_full), N, BLOCK_M, HEAD_DIM,
                             DIAGONAL=False, MASK_N=True)

    dk = dk * sm_scale  # S = sm_scale * Q K^T, so dK = sm_scale * dS^T Q
    dk, dv = dk.to(DK.dtype.element_ty), dv.to(DV.dtype.element_ty)
    if EVEN_N:
        tl.store(DK + kv_offsets, dk)
        tl.store(DV + kv_offsets, dv)
    else:
        tl.store(DK + kv_offsets, dk, mask=offs_n[:, None] < N)
        tl.store(DV + kv_offsets, dv, mask=offs_n[:, None] < N)


@triton.jit
def _dq_inner(
    dq, q, do, lse, delta,
    k_base, v_base, offs_m, offs_d, N, qk_scale,
    lo, hi,
    BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, DIAGONAL: tl.constexpr, MASK_N: tl.constexpr,
):
    """Stream key/value tiles ``[lo, hi)`` past one query tile, accumulating dQ."""
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kT_offsets = offs_n[None, :] * HEAD_DIM + offs_d[:, None]  # (HEAD_DIM, BLOCK_N)
        if MASK_N:
            kT = tl.load(k_base + kT_offsets, mask=offs_n[None, :] < N, other=0.0)
            vT = tl.load(v_base + kT_offsets, mask=offs_n[None, :] < N, other=0.0)
        else:
            kT = tl.load(k_base + kT_offsets)
            vT = tl.load(v_base + kT_offsets)
        p = tl.math.exp2(tl.dot(q, kT) * qk_scale - lse[:, None])
        if DIAGONAL or MASK_N:
            keep = offs_n[None, :] < N
            if DIAGONAL:
                keep = keep & (offs_m[:, None] >= offs_n[None, :])
            p = tl.where(keep, p, 0.0)
        dp = tl.dot(do, vT)  # dP = dO V^T
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(kT.dtype), tl.trans(kT), dq)  # dQ += dS K (scale applied at the end)
    return dq


@triton.jit
def attention_bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ,
    N, sm_scale, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
):
    """One program: one tile of BLOCK_M queries of one (batch, head); key tiles stream past."""
    if CAUSAL:
        tile_m = tl.num_programs(0) - 1 - tl.program_id(0)  # heaviest tiles first
    else:
        tile_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    start_m = tile_m * BLOCK_M
    head_offset = bh * N * HEAD_DIM
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q_offsets = head_offset + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    if EVEN_N:
        q = tl.load(Q + q_offsets)
        do = tl.load(DO + q_offsets)
        lse = tl.load(LSE + bh * N + offs_m)
        delta = tl.load(DELTA + bh * N + offs_m)
    else:
        rows = offs_m < N
        q = tl.load(Q + q_offsets, mask=rows[:, None], other=0.0)
        do = tl.load(DO + q_offsets, mask=rows[:, None], other=0.0)
        lse = tl.load(LSE + bh * N + offs_m, mask=rows, other=0.0)
        delta = tl.load(DELTA + bh * N + offs_m, mask=rows, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    k_base, v_base = K + head_offset, V + head_offset

    if CAUSAL:
        dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_d, N, qk_scale,
                       0, start_m, BLOCK_N, HEAD_DIM, DIAGONAL=False, MASK_N=False)
        dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_d, N, qk_scale,
                       start_m, tl.minimum(start_m + BLOCK_M, N), BLOCK_N, HEAD_DIM,
                       DIAGONAL=True, MASK_N=not EVEN_N)
    else:
        n_full = (N // BLOCK_N) * BLOCK_N
        dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_d, N, qk_scale,
                       0, n_full, BLOCK_N, HEAD_DIM, DIAGONAL=False, MASK_N=False)
        if not EVEN_N:
            dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, offs_m, offs_d, N, qk_scale,
                           n_full, N, BLOCK_N, HEAD_DIM, DIAGONAL=False, MASK_N=True)

    dq = (dq * sm_scale).to(DQ.dtype.element_ty)
    if EVEN_N:
        tl.store(DQ + q_offsets, dq)
    else:
        tl.store(DQ + q_offsets, dq, mask=offs_m[:, None] < N)


# fmt: on


# --------------------------------------------------------------------------------------------
# Configurations: tile sizes and launch parameters, chosen per head dimension
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FwdConfig:
    """Tiles and launch parameters of the forward kernel (block_m a multiple of block_n)."""

    block_m: int
    block_n: int
    num_warps: int = 4
    num_stages: int = 2
    half_exp: bool = False  # fp16 exponentials (fp16 inputs on a GPU only); measured slower


@dataclass(frozen=True)
class BwdConfig:
    """Backward tiles: block_m1 queries at a time stream past block_n1 keys (dK, dV kernel), and
    block_n2 keys at a time stream past block_m2 queries (dQ kernel)."""

    block_m1: int
    block_n1: int
    block_m2: int
    block_n2: int
    num_warps: int = 4
    num_stages: int = 2


# Chosen on the H100 from the tuning sweeps shown in lesson 4 (bench_attention.py --tune).
GPU_FWD_CONFIGS: dict[tuple[int, bool], FwdConfig] = {  # (head_dim, causal) -> config
    (128, False): FwdConfig(128, 128, 8, 3),
    (128, True): FwdConfig(128, 64, 8, 3),
    (64, False): FwdConfig(128, 64, 8, 4),
    # 3 stages rather than 4: it measured 387-392 TFLOP/s in every run that timed it, while 4 stages
    # swung between 352 and 407 from run to run.
    (64, True): FwdConfig(128, 64, 8, 3),
}
GPU_BWD_CONFIGS: dict[tuple[int, bool], BwdConfig] = {
    (128, False): BwdConfig(64, 128, 128, 64, 8, 3),
    (128, True): BwdConfig(64, 128, 128, 64, 8, 3),
    (64, False): BwdConfig(64, 64, 64, 64, 4, 3),
    (64, True): BwdConfig(32, 64, 64, 32, 4, 3),
}
# The interpreter runs programs one after another: few, large-ish tiles keep it quick, and
# block_m > block_n still exercises the split of the diagonal tile.
CPU_FWD_CONFIG = FwdConfig(64, 32)
CPU_BWD_CONFIG = BwdConfig(32, 64, 64, 32)


def default_fwd_config(head_dim: int, causal: bool) -> FwdConfig:
    """The forward configuration used for this head dimension on this device."""
    if not configure().on_gpu:
        return CPU_FWD_CONFIG
    return GPU_FWD_CONFIGS[(max(head_dim, 64), bool(causal))]


def default_bwd_config(head_dim: int, causal: bool) -> BwdConfig:
    """The backward configuration used for this head dimension on this device."""
    if not configure().on_gpu:
        return CPU_BWD_CONFIG
    return GPU_BWD_CONFIGS[(max(head_dim, 64), bool(causal))]


# The backward pass's kernels, in launch order: delta, then dK and dV, then dQ.
BACKWARD_KERNELS = (attention_bwd_delta_kernel, attention_bwd_dkdv_kernel, attention_bwd_dq_kernel)


# --------------------------------------------------------------------------------------------
# Wrappers
# --------------------------------------------------------------------------------------------


def _supported_dtypes() -> tuple[torch.dtype, ...]:
    # On a GPU: fp16 and bf16 (fp32 tiles of 128 x 128 would not fit in shared memory at speed, and
    # tensor cores would round them to tf32 anyway). The interpreter computes in numpy, which has
    # fp32 and fp16 but no bf16: its tl.dot on bf16 tiles gives wrong numbers, so bf16 is refused.
    if configure().on_gpu:
        return (torch.float16, torch.bfloat16)
    return (torch.float32, torch.float16)


def _validate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    require_same_tensors("attention", dtypes=_supported_dtypes(), q=q, k=k, v=v)
    if q.dim() != 4:
        raise ValueError(
            "attention: q, k, v must have 4 dimensions (batch, heads, seq_len, head_dim); "
            f"got shape {tuple(q.shape)}"
        )
    head_dim = q.shape[-1]
    if head_dim not in SUPPORTED_HEAD_DIMS:
        raise ValueError(
            f"attention: head_dim {head_dim} is not supported; use one of {SUPPORTED_HEAD_DIMS} "
            "(a power of two, because a Triton tile's extent must be one, and at most 128 so a "
            "query tile and its accumulator fit on chip)"
        )
    if q.shape[2] == 0:
        raise ValueError("attention: seq_len is 0; there is nothing to attend to")


def _check_backward_inputs(q, k, v, do, o, lse) -> None:
    """The backward pass's inputs: q, k, v as for the forward, do and o of q's shape, lse
    (batch, heads, seq_len); o and lse must be what the forward pass returned for q, k, v."""
    _validate(q, k, v)
    for name, t in (("do", do), ("o", o), ("lse", lse)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention backward: {name} must be a torch.Tensor, "
                            f"got {type(t).__name__}")  # fmt: skip
    if do.shape != q.shape or o.shape != q.shape or lse.shape != q.shape[:3]:
        raise ValueError(
            f"attention backward: do and o must have q's shape {tuple(q.shape)} and lse "
            f"{tuple(q.shape[:3])}; got do {tuple(do.shape)}, o {tuple(o.shape)}, "
            f"lse {tuple(lse.shape)} (pass the o and lse the forward pass returned)"
        )


def _check_fwd_config(cfg: FwdConfig) -> None:
    if cfg.block_m % cfg.block_n:
        raise ValueError(
            f"forward config {cfg}: block_m must be a multiple of block_n "
            "(the causal diagonal tile is split into block_n-wide steps)"
        )


def _check_bwd_config(cfg: BwdConfig) -> None:
    if cfg.block_n1 % cfg.block_m1 or cfg.block_m2 % cfg.block_n2:
        raise ValueError(
            f"backward config {cfg}: block_n1 must be a multiple of block_m1 and "
            "block_m2 a multiple of block_n2 (the diagonal tiles are split the same way)"
        )


def _scale(head_dim: int, sm_scale: float | None) -> float:
    return 1.0 / math.sqrt(head_dim) if sm_scale is None else float(sm_scale)


def attention_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    sm_scale: float | None = None,
    config: FwdConfig | None = None,
    split_diagonal: bool = True,
    heavy_first: bool = True,
    kernel=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel; return ``(o, lse)``.

    ``lse`` (B, H, N, fp32) is the base-2 log-sum-exp of each row's scaled scores, all the
    backward pass needs to recompute the probabilities. ``split_diagonal`` and ``heavy_first``
    exist so the lesson can measure what each causal optimisation buys; leave them on.
    ``kernel`` launches another compilation of :func:`attention_fwd_kernel` instead of Triton's,
    such as ``mini_compiler.jit(attention_fwd_kernel)`` for x86 code on a CPU.
    """
    _validate(q, k, v)
    return _forward(q, k, v, causal, sm_scale, config, split_diagonal, heavy_first, kernel)


def _launch(kernel, grid: tuple[int, int], args: tuple, constants: dict, key: tuple, **options):
    """``kernel[grid](*args, ...)``; on a GPU through a launcher bound once per key."""
    if configure().on_gpu:
        _LAUNCHES.launch((id(kernel), *key), kernel, grid, args, constants, **options)
    else:
        kernel[grid](*args, **constants, **options)


_LAUNCHES = LaunchCache()
_FWD_PLANS: dict = {}  # (shape, dtype, device, options, alignment) -> (launcher, scalar args)


def _forward(q, k, v, causal, sm_scale, config, split_diagonal=True, heavy_first=True, kernel=None):
    """The forward launch, for inputs already checked by :func:`_validate`."""
    plan_key = None
    if kernel is None and configure().on_gpu:  # a repeated call: one lookup decides the launch
        plan_key = (q.shape, q.dtype, q.device.index, bool(causal), sm_scale, config,
                    split_diagonal, heavy_first, aligned(q), aligned(k), aligned(v))  # fmt: skip
        plan = _FWD_PLANS.get(plan_key)
        if plan is not None:
            launch, scalars = plan
            o = torch.empty_like(q)
            lse = q.new_empty(q.shape[:3], dtype=torch.float32)  # (cheaper than device=...)
            launch(q, k, v, o, lse, *scalars)
            return o, lse
    batch, heads, n, head_dim = q.shape
    cfg = config or default_fwd_config(head_dim, causal)
    _check_fwd_config(cfg)
    o = torch.empty_like(q)
    lse = torch.empty((batch, heads, n), device=q.device, dtype=torch.float32)
    even = n % cfg.block_m == 0 and n % cfg.block_n == 0
    # fp16 exponentials need inline PTX (no interpreter) and feed an fp16 product (no bf16)
    half_exp = cfg.half_exp and q.dtype == torch.float16 and configure().on_gpu
    grid = (triton.cdiv(n, cfg.block_m), batch * heads)
    args = (q, k, v, o, lse, n, _scale(head_dim, sm_scale) * LOG2E)
    constants = dict(
        HEAD_DIM=head_dim, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, CAUSAL=bool(causal),
        EVEN_N=even, SPLIT_DIAGONAL=split_diagonal, HEAVY_FIRST=heavy_first, HALF_EXP=half_exp,
    )  # fmt: skip
    options = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
    if kernel is not None:  # another compiler's build of the same kernel: its own launch path
        kernel[grid](*args, **constants, **options)
        return o, lse
    key = (q.device.index, q.dtype, grid, n, cfg, tuple(constants.values()),
           aligned(q), aligned(k), aligned(v))  # fmt: skip
    _launch(attention_fwd_kernel, grid, args, constants, key, **options)
    launcher = _LAUNCHES.get((id(attention_fwd_kernel), *key))
    if plan_key is not None and launcher is not None and len(_FWD_PLANS) < 1024:
        _FWD_PLANS[plan_key] = (launcher, args[5:])
    return o, lse


def attention_backward(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    *,
    causal: bool = False,
    sm_scale: float | None = None,
    config: BwdConfig | None = None,
    kernels=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(dq, dk, dv)`` given ``do`` = dLoss/dO and the forward's ``o`` and ``lse``.

    ``kernels`` launches another compilation of the three backward kernels instead of Triton's:
    a tuple ``(delta, dkdv, dq)`` of builds of :func:`attention_bwd_delta_kernel`,
    :func:`attention_bwd_dkdv_kernel` and :func:`attention_bwd_dq_kernel`, such as
    ``tuple(mini_compiler.jit(k) for k in BACKWARD_KERNELS)``.
    """
    _check_backward_inputs(q, k, v, do, o, lse)
    if kernels is None:
        launch = _launch
    else:  # another compiler's builds: their own launch path, keyed by position
        if len(kernels) != len(BACKWARD_KERNELS):
            raise ValueError(
                f"attention_backward: kernels must be {len(BACKWARD_KERNELS)} builds, of the "
                "delta, dK/dV and dQ kernels in that order (e.g. tuple(mini_compiler.jit(k) for k "
                f"in BACKWARD_KERNELS)); got {len(kernels)}"
            )
        builds = dict(zip(BACKWARD_KERNELS, kernels, strict=True))

        def launch(kernel, grid, args, constants, key, **options):
            builds[kernel][grid](*args, **constants, **options)
    batch, heads, n, head_dim = q.shape
    sm_scale = _scale(head_dim, sm_scale)
    cfg = config or default_bwd_config(head_dim, causal)
    _check_bwd_config(cfg)
    do = do.to(q.dtype).contiguous()
    delta = torch.empty_like(lse)
    grid = (triton.cdiv(n, 64), batch * heads)
    constants = {"HEAD_DIM": head_dim, "BLOCK_M": 64}
    key = (q.device.index, q.dtype, grid, n, head_dim, aligned(o), aligned(do))
    launch(attention_bwd_delta_kernel, grid, (o, do, delta, n), constants, key)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    qk_scale = sm_scale * LOG2E
    options = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
    # every input is contiguous with shape (batch, heads, n, head_dim): n, the grid, the dtype,
    # the configuration and the pointers' alignment decide the compiled kernels
    alignment = (aligned(q), aligned(k), aligned(v), aligned(do), aligned(lse))
    even = n % cfg.block_m1 == 0 and n % cfg.block_n1 == 0
    grid = (triton.cdiv(n, cfg.block_n1), batch * heads)
    constants = dict(HEAD_DIM=head_dim, BLOCK_M=cfg.block_m1, BLOCK_N=cfg.block_n1,
                     CAUSAL=bool(causal), EVEN_N=even)  # fmt: skip
    args = (q, k, v, do, lse, delta, dk, dv, n, sm_scale, qk_scale)
    key = (q.device.index, q.dtype, grid, n, cfg, tuple(constants.values()), alignment)
    launch(attention_bwd_dkdv_kernel, grid, args, constants, key, **options)
    even = n % cfg.block_m2 == 0 and n % cfg.block_n2 == 0
    grid = (triton.cdiv(n, cfg.block_m2), batch * heads)
    constants = dict(HEAD_DIM=head_dim, BLOCK_M=cfg.block_m2, BLOCK_N=cfg.block_n2,
                     CAUSAL=bool(causal), EVEN_N=even)  # fmt: skip
    args = (q, k, v, do, lse, delta, dq, n, sm_scale, qk_scale)
    key = (q.device.index, q.dtype, grid, n, cfg, tuple(constants.values()), alignment)
    launch(attention_bwd_dq_kernel, grid, args, constants, key, **options)
    return dq, dk, dv


class FlashAttention(torch.autograd.Function):
    """Flash attention as an autograd op: saves (q, k, v, o, lse), never the N x N probabilities."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, sm_scale: float | None):
        o, lse = _forward(q, k, v, causal, sm_scale, None)  # attention() checked the inputs
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        grads = attention_backward(do, q, k, v, o, lse, causal=ctx.causal, sm_scale=ctx.sm_scale)
        return (*grads, None, None)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
) -> torch.Tensor:
    """softmax(sm_scale * q k^T [+ causal mask]) v, for q, k, v of shape (B, H, N, head_dim).

    ``sm_scale`` defaults to ``1/sqrt(head_dim)``. Differentiable (flash backward pass). Inputs that
    are not contiguous are copied to a contiguous layout first.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention: {name} must be a torch.Tensor, got {type(t).__name__}")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    _validate(q, k, v)
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return FlashAttention.apply(q, k, v, bool(causal), sm_scale)
    return _forward(q, k, v, bool(causal), sm_scale, None)[0]  # no graph to record: skip autograd


# --------------------------------------------------------------------------------------------
# The plain torch version the lesson compares with, and the FLOP count
# --------------------------------------------------------------------------------------------


def naive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
) -> torch.Tensor:
    """Textbook attention in torch: builds the full (B, H, N, N) scores and probabilities."""
    n, head_dim = q.shape[-2], q.shape[-1]
    scores = (q @ k.transpose(-2, -1)) * _scale(head_dim, sm_scale)
    if causal:
        future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_flops(
    batch: int, heads: int, n: int, head_dim: int, causal: bool, *, backward: bool = False
) -> float:
    """FLOPs by the usual convention: two matmuls of 2*N*N*D per head, half of that if causal;
    the backward pass counts as 2.5x the forward (five matmuls instead of two)."""
    flops = 4.0 * batch * heads * n * n * head_dim
    if causal:
        flops /= 2
    return flops * 2.5 if backward else flops
