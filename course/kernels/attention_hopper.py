"""Lesson 4, going further on Hopper: flash attention, forward and backward, with TMA loads.

The lesson's forward kernel (:func:`course.kernels.attention.attention_fwd_kernel`) computes every
address of every K and V tile in its threads. Here the tiles arrive through the Hopper copy engine
(TMA, see :mod:`course.kernels.matmul_hopper`): Q, K, V and O are described once on the host as 2-D
tensors of shape ``(batch * heads * N, head_dim)``, and a program asks for "rows ``bh * N + start``
onwards" of K and V. The threads are left with the two matrix products (wgmma on Hopper) and the
online softmax between them.

What FlashAttention-3 (Shah, Bikshandi, Zhang, Thakkar, Ramani, Dao, 2024) does on Hopper, and how
much of it a Triton kernel can ask for:

* *producer/consumer warp specialisation*: some warps only issue TMA copies, the others only
  compute; ``tl.range(..., warp_specialize=True)`` asks Triton to split the loop so (the
  ``warp_specialize`` switch here; whether it compiles and pays on Hopper is measured);
* *ping-pong* of two warpgroups, one doing its softmax while the other uses the tensor cores, and
  the *intra-warpgroup* overlap of the softmax of one tile with the products of the next: Triton's
  software pipeliner (``num_stages``) overlaps the loads, and the rest is up to its scheduler;
* fp8 with incoherent processing: not here.

And one trick of FlashAttention-4, lazy rescaling (the ``lazy_rescale`` switch, measured slower).

The same causal split as the lesson (an unmasked loop below the diagonal, a masked one on it), the
same base-2 exponentials, the same log-sum-exp output, so either backward pass can consume it.

Ragged N: a 2-D descriptor's rows run on into the next head, so the one key tile that crosses N is
masked as in the lesson (scores to -inf, and V's rows past N to zero so that another head's values
never reach the product), and the last query tile is stored through a masked pointer store rather
than TMA, which would write the next head's rows.

The backward pass has the lesson's two kernels with TMA loads: :func:`attention_bwd_dkdv_tma_kernel`
owns a tile of keys and accumulates dK and dV, :func:`attention_bwd_dq_tma_kernel` owns a tile of
queries and accumulates dQ. Each recomputes the scores ``Q K^T`` and ``dP = dO V^T``: seven matrix
products per pair of tiles where five would do, the price of never letting two programs write the
same memory. The dK/dV kernel can instead work out its key tile's share of dQ, ``dS K``, for each
query tile it visits and *add* it into a float32 dQ in global memory, where every key tile's
program adds its own: FlashAttention-2 adds with atomic instructions, FlashAttention-3 hands the
whole tile to the copy engine, whose bulk *reduce* (``cp.reduce.async.bulk.tensor``, here
``dq_desc.atomic_add``) adds it to memory while the threads go on. Both are here
(``HopperBwdConfig.dq``); the additions arrive in no fixed order, so dQ's last bits may then differ
from run to run.

The design follows Triton's tutorial "Fused Attention" (``python/tutorials/06-fused-attention.py``)
and FlashAttention-2 and -3; the code is the course's own. The interpreter runs all of it on the
CPU except the bulk reduce, which it does not implement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import triton
import triton.language as tl

from ..env import configure
from .attention import (
    LOG2E,
    _check_backward_inputs,
    _scale,
    _validate,
    attention_bwd_delta_kernel,
)

# How the backward pass gets dQ (the DQ_MODE switch of the dK/dV kernel):
DQ_SEPARATE = tl.constexpr(0)  # a second kernel, as in the lesson: no two programs write one row
DQ_ATOMICS = tl.constexpr(1)  # the dK/dV kernel adds its shares, one atomic add per element
DQ_BULK_REDUCE = tl.constexpr(2)  # ... or hands whole tiles to the copy engine's bulk reduce

# fmt: off


@triton.jit
def _tma_inner(
    acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale, lo, hi,
    BLOCK_N: tl.constexpr, DIAGONAL: tl.constexpr, MASK_N: tl.constexpr,
    WARP_SPECIALIZE: tl.constexpr, LAZY_RESCALE: tl.constexpr,
):
    """Stream key/value tiles ``[lo, hi)`` of one head past one query tile."""
    for start_n in tl.range(lo, hi, BLOCK_N, warp_specialize=WARP_SPECIALIZE):
        k = k_desc.load([row0 + start_n, 0])  # (BLOCK_N, HEAD_DIM), by the copy engine
        v = v_desc.load([row0 + start_n, 0])
        qk = tl.dot(q, k.T)
        if LAZY_RESCALE and not (DIAGONAL or MASK_N):
            # Keep a stale maximum until some row's grows by more than 2^8 (FlashAttention-4's
            # trick): p = 2^(s - m) may then reach 256, harmless in fp32 and fp16, and most
            # tiles skip the rescaling of the accumulator altogether.
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            if tl.max(m_new - m_i, 0) > 8.0:
                alpha = tl.math.exp2(m_i - m_new)
                l_i = l_i * alpha
                acc = acc * alpha[:, None]
                m_i = m_new
            p = tl.math.exp2(qk * qk_scale - m_i[:, None])
            l_i = l_i + tl.sum(p, 1)
            acc = tl.dot(p.to(v.dtype), v, acc)
        elif DIAGONAL or MASK_N:
            offs_n = start_n + tl.arange(0, BLOCK_N)
            keep = offs_n[None, :] < N
            if DIAGONAL:
                keep = keep & (offs_m[:, None] >= offs_n[None, :])
            qk = tl.where(keep, qk * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            qk = qk - m_new[:, None]
            if MASK_N:  # rows past N are the next head's: keep them out of P V
                v = tl.where(offs_n[:, None] < N, v, 0.0)
            acc, l_i, m_i = _rescale_and_accumulate(acc, l_i, m_i, m_new, qk, v)
        else:
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_new[:, None]
            acc, l_i, m_i = _rescale_and_accumulate(acc, l_i, m_i, m_new, qk, v)
    return acc, l_i, m_i


@triton.jit
def _rescale_and_accumulate(acc, l_i, m_i, m_new, qk, v):
    """The online-softmax step for scores ``qk`` already shifted by the new maximum ``m_new``."""
    p = tl.math.exp2(qk)
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, l_i, m_new


@triton.jit
def attention_fwd_tma_kernel(
    q_desc, k_desc, v_desc, o_desc, Out, LSE, N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, WARP_SPECIALIZE: tl.constexpr,
    LAZY_RESCALE: tl.constexpr,
):
    """One program: one tile of BLOCK_M query rows of one (batch, head), as in the lesson."""
    if CAUSAL:
        tile_m = tl.num_programs(0) - 1 - tl.program_id(0)  # the longest query tiles first
    else:
        tile_m = tl.program_id(0)
    bh = tl.program_id(1)
    row0 = bh * N  # this head's first row in the (batch * heads * N, HEAD_DIM) views
    start_m = tile_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = q_desc.load([row0 + start_m, 0])

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    if CAUSAL:
        acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale,
                                   0, start_m, BLOCK_N, DIAGONAL=False, MASK_N=False,
                                   WARP_SPECIALIZE=WARP_SPECIALIZE, LAZY_RESCALE=LAZY_RESCALE)
        acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale,
                                   start_m, tl.minimum(start_m + BLOCK_M, N), BLOCK_N,
                                   DIAGONAL=True, MASK_N=not EVEN_N, WARP_SPECIALIZE=False,
                                   LAZY_RESCALE=False)
    else:
        n_full = (N // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale,
                                   0, n_full, BLOCK_N, DIAGONAL=False, MASK_N=False,
                                   WARP_SPECIALIZE=WARP_SPECIALIZE, LAZY_RESCALE=LAZY_RESCALE)
        if not EVEN_N:
            acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N,
                                       qk_scale, n_full, N, BLOCK_N, DIAGONAL=False, MASK_N=True,
                                       WARP_SPECIALIZE=False, LAZY_RESCALE=False)

    out = (acc / l_i[:, None]).to(Out.dtype.element_ty)
    lse = m_i + tl.math.log2(l_i)
    if EVEN_N:
        o_desc.store([row0 + start_m, 0], out)
        tl.store(LSE + bh * N + offs_m, lse)
    else:  # TMA would write the rows past N, which belong to the next head
        offs_d = tl.arange(0, HEAD_DIM)
        rows = (row0 + offs_m).to(tl.int64)
        tl.store(Out + rows[:, None] * HEAD_DIM + offs_d[None, :], out, mask=offs_m[:, None] < N)
        tl.store(LSE + bh * N + offs_m, lse, mask=offs_m < N)



@triton.jit
def _bwd_tma_inner(
    dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
    row0, offs_n, N, sm_scale, qk_scale, lo, hi,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr,
    DIAGONAL: tl.constexpr, MASK_M: tl.constexpr, MASK_N: tl.constexpr, DQ_MODE: tl.constexpr,
):
    """Stream query tiles ``[lo, hi)`` past one key tile: accumulate dK and dV, and (unless
    ``DQ_MODE`` is ``DQ_SEPARATE``) add this key tile's share of dQ to memory.

    Scores are kept transposed (keys x queries), as in the lesson's dK/dV kernel. ``MASK_M``: the
    query tile may cross N (its rows past N are the next head's: zeroed, with lse = +inf so their
    probabilities are 0). ``MASK_N``: the key tile crosses N (those keys' probabilities are 0).
    """
    offs_d = tl.arange(0, HEAD_DIM)
    for start_m in tl.range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = q_desc.load([row0 + start_m, 0])  # (BLOCK_M, HEAD_DIM), by the copy engine
        do = do_desc.load([row0 + start_m, 0])
        if MASK_M:
            rows_in = offs_m < N
            q = tl.where(rows_in[:, None], q, 0.0)
            do = tl.where(rows_in[:, None], do, 0.0)
            lse = tl.load(LSE + row0 + offs_m, mask=rows_in, other=float("inf"))
            delta = tl.load(DELTA + row0 + offs_m, mask=rows_in, other=0.0)
        else:
            lse = tl.load(LSE + row0 + offs_m)
            delta = tl.load(DELTA + row0 + offs_m)
        pT = tl.math.exp2(tl.dot(k, q.T) * qk_scale - lse[None, :])  # P^T from the saved lse
        if DIAGONAL:  # (also keeps keys past N out: a key after every valid query is masked)
            pT = tl.where(offs_m[None, :] >= offs_n[:, None], pT, 0.0)
        elif MASK_N:
            pT = tl.where(offs_n[:, None] < N, pT, 0.0)
        dv = tl.dot(pT.to(do.dtype), do, dv)  # dV += P^T dO
        dpT = tl.dot(v, do.T)  # dP^T = V dO^T
        dsT = (pT * (dpT - delta[None, :])).to(q.dtype)  # dS = P * (dP - delta), transposed
        dk = tl.dot(dsT, q, dk)  # dK += dS^T Q (scaled at the end)
        if DQ_MODE != DQ_SEPARATE:
            dq = tl.dot(dsT.T, k) * sm_scale  # this key tile's share of dQ = dS K
            if DQ_MODE == DQ_BULK_REDUCE:  # the copy engine adds the tile to memory
                dq_desc.atomic_add([row0 + start_m, 0], dq)
            else:  # one atomic add per element
                rows = (row0 + offs_m).to(tl.int64)
                dq_ptrs = DQ + rows[:, None] * HEAD_DIM + offs_d[None, :]
                if MASK_M:
                    tl.atomic_add(dq_ptrs, dq, mask=rows_in[:, None], sem="relaxed")
                else:
                    tl.atomic_add(dq_ptrs, dq, sem="relaxed")
    return dk, dv


@triton.jit
def _bwd_tma_key_tile(
    dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
    row0, start_n, offs_n, N, sm_scale, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, MASK_N: tl.constexpr, DQ_MODE: tl.constexpr,
):
    """Every query tile that sees key tile ``start_n``: the diagonal first if causal, then the
    unmasked full tiles, then the partial one at the end."""
    m_full = (N // BLOCK_M) * BLOCK_M
    if CAUSAL:
        # Queries before start_n never see these keys; the diagonal tiles need the mask ...
        dk, dv = _bwd_tma_inner(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                                row0, offs_n, N, sm_scale, qk_scale,
                                start_n, tl.minimum(start_n + BLOCK_N, N), HEAD_DIM, BLOCK_M,
                                DIAGONAL=True, MASK_M=not EVEN_N, MASK_N=False,
                                DQ_MODE=DQ_MODE)
        lo = start_n + BLOCK_N  # ... and every later query tile sees all of them
    else:
        lo = 0
    dk, dv = _bwd_tma_inner(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                            row0, offs_n, N, sm_scale, qk_scale, lo, m_full, HEAD_DIM, BLOCK_M,
                            DIAGONAL=False, MASK_M=False, MASK_N=MASK_N, DQ_MODE=DQ_MODE)
    if not EVEN_N:
        dk, dv = _bwd_tma_inner(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                                row0, offs_n, N, sm_scale, qk_scale, tl.maximum(lo, m_full), N,
                                HEAD_DIM, BLOCK_M, DIAGONAL=False, MASK_M=True, MASK_N=MASK_N,
                                DQ_MODE=DQ_MODE)
    return dk, dv


@triton.jit
def attention_bwd_dkdv_tma_kernel(
    q_desc, k_desc, v_desc, do_desc, dq_desc, DQ, DK, DV, LSE, DELTA,
    N, sm_scale, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, DQ_MODE: tl.constexpr,
):
    """One program: one tile of BLOCK_N keys of one (batch, head). It accumulates the tile's dK
    and dV; unless ``DQ_MODE`` is ``DQ_SEPARATE`` it also adds each visited query tile's share of
    dQ into the float32 buffer ``DQ`` (through ``dq_desc`` for a bulk reduce)."""
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    row0 = bh * N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k = k_desc.load([row0 + start_n, 0])
    v = v_desc.load([row0 + start_n, 0])
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    if not EVEN_N and DQ_MODE != DQ_SEPARATE:  # the last key tile runs into the next head's
        k = tl.where(offs_n[:, None] < N, k, 0.0)  # keys, which would reach dQ: zero them
        v = tl.where(offs_n[:, None] < N, v, 0.0)
    # Keys past N need a mask only where they reach dQ (their own dK, dV rows are never stored);
    # causal: the diagonal mask already keeps them out.
    if EVEN_N or CAUSAL or DQ_MODE == DQ_SEPARATE:
        dk, dv = _bwd_tma_key_tile(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                                   row0, start_n, offs_n, N, sm_scale, qk_scale,
                                   HEAD_DIM, BLOCK_M, BLOCK_N, CAUSAL, EVEN_N, MASK_N=False,
                                   DQ_MODE=DQ_MODE)
    else:  # only the last key tile pays for the mask
        if start_n + BLOCK_N <= N:
            dk, dv = _bwd_tma_key_tile(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                                       row0, start_n, offs_n, N, sm_scale, qk_scale,
                                       HEAD_DIM, BLOCK_M, BLOCK_N, CAUSAL, EVEN_N, MASK_N=False,
                                       DQ_MODE=DQ_MODE)
        else:
            dk, dv = _bwd_tma_key_tile(dk, dv, k, v, q_desc, do_desc, dq_desc, DQ, LSE, DELTA,
                                       row0, start_n, offs_n, N, sm_scale, qk_scale,
                                       HEAD_DIM, BLOCK_M, BLOCK_N, CAUSAL, EVEN_N, MASK_N=True,
                                       DQ_MODE=DQ_MODE)

    dk = (dk * sm_scale).to(DK.dtype.element_ty)  # S = sm_scale * Q K^T
    dv = dv.to(DV.dtype.element_ty)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = (row0 + offs_n).to(tl.int64)
    offsets = rows[:, None] * HEAD_DIM + offs_d[None, :]
    if EVEN_N:
        tl.store(DK + offsets, dk)
        tl.store(DV + offsets, dv)
    else:  # rows past N belong to the next head
        tl.store(DK + offsets, dk, mask=offs_n[:, None] < N)
        tl.store(DV + offsets, dv, mask=offs_n[:, None] < N)



@triton.jit
def _dq_tma_inner(
    dq, q, do, lse, delta, k_desc, v_desc, row0, offs_m, N, qk_scale, lo, hi,
    BLOCK_N: tl.constexpr, DIAGONAL: tl.constexpr, MASK_N: tl.constexpr,
):
    """Stream key/value tiles ``[lo, hi)`` past one query tile, accumulating dQ (unscaled)."""
    for start_n in tl.range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = k_desc.load([row0 + start_n, 0])
        v = v_desc.load([row0 + start_n, 0])
        if MASK_N:  # rows past N are the next head's keys and values: zero them
            k = tl.where(offs_n[:, None] < N, k, 0.0)
            v = tl.where(offs_n[:, None] < N, v, 0.0)
        p = tl.math.exp2(tl.dot(q, k.T) * qk_scale - lse[:, None])
        if DIAGONAL or MASK_N:
            keep = offs_n[None, :] < N
            if DIAGONAL:
                keep = keep & (offs_m[:, None] >= offs_n[None, :])
            p = tl.where(keep, p, 0.0)
        dp = tl.dot(do, v.T)  # dP = dO V^T
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq)  # dQ += dS K
    return dq


@triton.jit
def attention_bwd_dq_tma_kernel(
    q_desc, k_desc, v_desc, do_desc, DQ, LSE, DELTA, N, sm_scale, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
):
    """One program: one tile of BLOCK_M queries of one (batch, head); key tiles stream past, as
    in the lesson's dQ kernel, delivered by the copy engine."""
    if CAUSAL:
        tile_m = tl.num_programs(0) - 1 - tl.program_id(0)  # heaviest tiles first
    else:
        tile_m = tl.program_id(0)
    bh = tl.program_id(1)
    row0 = bh * N
    start_m = tile_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = q_desc.load([row0 + start_m, 0])  # rows past N (the next head's) give rows never stored
    do = do_desc.load([row0 + start_m, 0])
    if EVEN_N:
        lse = tl.load(LSE + row0 + offs_m)
        delta = tl.load(DELTA + row0 + offs_m)
    else:
        lse = tl.load(LSE + row0 + offs_m, mask=offs_m < N, other=0.0)
        delta = tl.load(DELTA + row0 + offs_m, mask=offs_m < N, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    if CAUSAL:
        dq = _dq_tma_inner(dq, q, do, lse, delta, k_desc, v_desc, row0, offs_m, N, qk_scale,
                           0, start_m, BLOCK_N, DIAGONAL=False, MASK_N=False)
        dq = _dq_tma_inner(dq, q, do, lse, delta, k_desc, v_desc, row0, offs_m, N, qk_scale,
                           start_m, tl.minimum(start_m + BLOCK_M, N), BLOCK_N,
                           DIAGONAL=True, MASK_N=not EVEN_N)
    else:
        n_full = (N // BLOCK_N) * BLOCK_N
        dq = _dq_tma_inner(dq, q, do, lse, delta, k_desc, v_desc, row0, offs_m, N, qk_scale,
                           0, n_full, BLOCK_N, DIAGONAL=False, MASK_N=False)
        if not EVEN_N:
            dq = _dq_tma_inner(dq, q, do, lse, delta, k_desc, v_desc, row0, offs_m, N, qk_scale,
                               n_full, N, BLOCK_N, DIAGONAL=False, MASK_N=True)
    dq = (dq * sm_scale).to(DQ.dtype.element_ty)
    offs_d = tl.arange(0, HEAD_DIM)
    offsets = (row0 + offs_m).to(tl.int64)[:, None] * HEAD_DIM + offs_d[None, :]
    if EVEN_N:
        tl.store(DQ + offsets, dq)
    else:
        tl.store(DQ + offsets, dq, mask=offs_m[:, None] < N)


# fmt: on


@dataclass(frozen=True)
class HopperFwdConfig:
    """Tiles and launch parameters of :func:`attention_fwd_tma_kernel`."""

    block_m: int
    block_n: int
    num_warps: int = 8
    num_stages: int = 3
    warp_specialize: bool = False
    lazy_rescale: bool = False  # rescale the accumulator only when a maximum grows by 2^8


# (head_dim, causal) -> configuration, chosen on the H200 (benchmarks/bench_hopper.py --sweep).
GPU_CONFIGS: dict[tuple[int, bool], HopperFwdConfig] = {
    (128, False): HopperFwdConfig(128, 128, 8, 3),
    (128, True): HopperFwdConfig(128, 128, 8, 3),
    (64, False): HopperFwdConfig(128, 64, 8, 4),
    (64, True): HopperFwdConfig(128, 64, 8, 3),
}
CPU_CONFIG = HopperFwdConfig(64, 32, 4, 1)


def default_config(head_dim: int, causal: bool) -> HopperFwdConfig:
    if not configure().on_gpu:
        return CPU_CONFIG
    return GPU_CONFIGS[(max(head_dim, 64), bool(causal))]


def attention_forward_hopper(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    sm_scale: float | None = None,
    config: HopperFwdConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(o, lse)`` as :func:`course.kernels.attention.attention_forward` returns them, computed
    by the TMA kernel. q, k, v: contiguous (B, H, N, head_dim), fp16 or bf16 on a GPU (fp32 or
    fp16 on the CPU), head_dim 16 to 128."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    _validate(q, k, v)
    batch, heads, n, head_dim = q.shape
    cfg = config or default_config(head_dim, causal)
    if cfg.block_m % cfg.block_n:
        raise ValueError(f"attention config {cfg}: block_m must be a multiple of block_n")
    o = torch.empty_like(q)
    lse = torch.empty((batch, heads, n), device=q.device, dtype=torch.float32)
    rows = batch * heads * n

    def describe(t: torch.Tensor, block_rows: int) -> TensorDescriptor:
        return TensorDescriptor(t, [rows, head_dim], [head_dim, 1], [block_rows, head_dim])

    grid = (triton.cdiv(n, cfg.block_m), batch * heads)
    attention_fwd_tma_kernel[grid](
        describe(q, cfg.block_m), describe(k, cfg.block_n), describe(v, cfg.block_n),
        describe(o, cfg.block_m), o, lse, n, _scale(head_dim, sm_scale) * LOG2E,
        HEAD_DIM=head_dim, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, CAUSAL=bool(causal),
        EVEN_N=n % cfg.block_m == 0 and n % cfg.block_n == 0,
        WARP_SPECIALIZE=cfg.warp_specialize, LAZY_RESCALE=cfg.lazy_rescale,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    return o, lse


@dataclass(frozen=True)
class HopperBwdConfig:
    """Tiles and launch parameters of the TMA backward pass.

    The dK/dV kernel: ``block_n`` keys per program, ``block_m`` queries per step (``block_n`` a
    multiple of ``block_m``). ``dq`` says where dQ comes from: ``"kernel"``, a second kernel as in
    the lesson (``block_m2`` queries per program, ``block_n2`` keys per step, ``block_m2`` a
    multiple of ``block_n2``); ``"bulk reduce"`` or ``"atomics"``, shares added to memory by the
    dK/dV kernel itself (FlashAttention-3's way and FlashAttention-2's).
    """

    block_m: int = 64
    block_n: int = 128
    num_warps: int = 8
    num_stages: int = 2
    dq: str = "kernel"
    block_m2: int = 128
    block_n2: int = 64
    num_warps2: int = 8
    num_stages2: int = 2


DQ_MODES = {"kernel": DQ_SEPARATE, "atomics": DQ_ATOMICS, "bulk reduce": DQ_BULK_REDUCE}

# (head_dim, causal) -> configuration, chosen on the H200 from each kernel's tilings timed on their
# own (benchmarks/bench_hopper_backward_tiles.py, run twice; the second run is recorded in
# hopper_backward_tiles.json and ranks some of these up to 3% behind its fastest, within the
# runs' spread). Whole backward passes: hopper_sweep_attention_bwd.json.
GPU_BWD_CONFIGS: dict[tuple[int, bool], HopperBwdConfig] = {
    (128, False): HopperBwdConfig(64, 128, 8, 3, "kernel", 128, 64, 8, 3),
    (128, True): HopperBwdConfig(64, 64, 4, 2, "kernel", 128, 64, 8, 3),
    (64, False): HopperBwdConfig(32, 64, 4, 3, "kernel", 128, 64, 4, 3),
    (64, True): HopperBwdConfig(64, 64, 4, 3, "kernel", 128, 64, 8, 4),
}
# The interpreter runs programs one after another (it has no bulk reduce); block_n > block_m and
# block_m2 > block_n2 still split the diagonal tiles.
CPU_BWD_CONFIG = HopperBwdConfig(16, 32, 4, 1, "kernel", 32, 16, 4, 1)


# The one-kernel forms hold more per program (a share of dQ, and its staging buffer for the bulk
# reduce) and, with a ragged N, four variants of the loop, each with its own pipeline buffers: at
# d = 128 these tiles fit shared memory where the two-kernel form's (3 stages) do not.
ONE_KERNEL_GPU_CONFIGS: dict[int, HopperBwdConfig] = {
    128: HopperBwdConfig(64, 128, 8, 2),
    64: HopperBwdConfig(64, 64, 4, 3),
}


def default_bwd_config(head_dim: int, causal: bool, dq: str = "kernel") -> HopperBwdConfig:
    """The configuration for this head dimension, mask and way of getting dQ on this device."""
    if not configure().on_gpu:
        return replace(CPU_BWD_CONFIG, dq=dq)
    if dq == "kernel":
        return GPU_BWD_CONFIGS[(max(head_dim, 64), bool(causal))]
    return replace(ONE_KERNEL_GPU_CONFIGS[max(head_dim, 64)], dq=dq)


def _check_bwd_config(cfg: HopperBwdConfig) -> None:
    if cfg.dq not in DQ_MODES:
        raise ValueError(f"attention backward config {cfg}: dq must be one of {list(DQ_MODES)}")
    if cfg.block_n % cfg.block_m or cfg.block_m2 % cfg.block_n2:
        raise ValueError(
            f"attention backward config {cfg}: block_n must be a multiple of "
            "block_m and block_m2 of block_n2 (the causal diagonal is split into "
            "steps of the smaller one)"
        )
    if cfg.dq == "bulk reduce" and not configure().on_gpu:
        raise ValueError(
            f"attention backward config {cfg}: a bulk reduce needs a GPU's copy "
            "engine; Triton's interpreter has none (use dq='kernel' or 'atomics')"
        )


def attention_backward_hopper(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    *,
    causal: bool = False,
    sm_scale: float | None = None,
    config: HopperBwdConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(dq, dk, dv)`` as :func:`course.kernels.attention.attention_backward` returns
    them, from the TMA kernels (after the lesson's small delta kernel). ``o`` and ``lse`` come from
    either forward pass; inputs as for :func:`attention_forward_hopper`."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    _check_backward_inputs(q, k, v, do, o, lse)
    batch, heads, n, head_dim = q.shape
    cfg = config or default_bwd_config(head_dim, causal)
    _check_bwd_config(cfg)
    sm_scale = _scale(head_dim, sm_scale)
    qk_scale = sm_scale * LOG2E
    do, o, lse = do.to(q.dtype).contiguous(), o.contiguous(), lse.contiguous()
    delta = torch.empty_like(lse)
    attention_bwd_delta_kernel[(triton.cdiv(n, 64), batch * heads)](
        o, do, delta, n, HEAD_DIM=head_dim, BLOCK_M=64
    )
    rows = batch * heads * n

    def describe(t: torch.Tensor, block_rows: int) -> TensorDescriptor:
        return TensorDescriptor(t, [rows, head_dim], [head_dim, 1], [block_rows, head_dim])

    separate = cfg.dq == "kernel"
    # shares of dQ are added up in float32; a separate kernel writes dQ once, in q's dtype
    dq = torch.empty_like(q) if separate else torch.zeros(q.shape, device=q.device,
                                                          dtype=torch.float32)  # fmt: skip
    dk, dv = torch.empty_like(k), torch.empty_like(v)
    attention_bwd_dkdv_tma_kernel[(triton.cdiv(n, cfg.block_n), batch * heads)](
        describe(q, cfg.block_m), describe(k, cfg.block_n), describe(v, cfg.block_n),
        describe(do, cfg.block_m), None if separate else describe(dq, cfg.block_m),
        dq, dk, dv, lse, delta, n, sm_scale, qk_scale,
        HEAD_DIM=head_dim, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, CAUSAL=bool(causal),
        EVEN_N=n % cfg.block_m == 0 and n % cfg.block_n == 0, DQ_MODE=DQ_MODES[cfg.dq],
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    if not separate:
        return dq.to(q.dtype), dk, dv
    attention_bwd_dq_tma_kernel[(triton.cdiv(n, cfg.block_m2), batch * heads)](
        describe(q, cfg.block_m2), describe(k, cfg.block_n2), describe(v, cfg.block_n2),
        describe(do, cfg.block_m2), dq, lse, delta, n, sm_scale, qk_scale,
        HEAD_DIM=head_dim, BLOCK_M=cfg.block_m2, BLOCK_N=cfg.block_n2, CAUSAL=bool(causal),
        EVEN_N=n % cfg.block_m2 == 0 and n % cfg.block_n2 == 0,
        num_warps=cfg.num_warps2, num_stages=cfg.num_stages2,
    )  # fmt: skip
    return dq, dk, dv


class FlashAttentionHopper(torch.autograd.Function):
    """The TMA forward and backward kernels as an autograd op (saves q, k, v, o and lse)."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, sm_scale: float | None):
        o, lse = attention_forward_hopper(q, k, v, causal=causal, sm_scale=sm_scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        grads = attention_backward_hopper(
            do, q, k, v, o, lse, causal=ctx.causal, sm_scale=ctx.sm_scale
        )
        return (*grads, None, None)


def attention_hopper(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
) -> torch.Tensor:
    """softmax(sm_scale * q k^T [+ causal mask]) v through the TMA kernels; differentiable, as
    :func:`course.kernels.attention.attention` is."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention: {name} must be a torch.Tensor, got {type(t).__name__}")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return FlashAttentionHopper.apply(q, k, v, bool(causal), sm_scale)
    return attention_forward_hopper(q, k, v, causal=causal, sm_scale=sm_scale)[0]
