"""Lesson 4, going further on Hopper: the flash-attention forward pass with TMA loads.

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

The same causal split as the lesson (an unmasked loop below the diagonal, a masked one on it), the
same base-2 exponentials, the same log-sum-exp output, so the lesson's backward pass can consume it.

Ragged N: a 2-D descriptor's rows run on into the next head, so the one key tile that crosses N is
masked as in the lesson (scores to -inf, and V's rows past N to zero so that another head's values
never reach the product), and the last query tile is stored through a masked pointer store rather
than TMA, which would write the next head's rows.

The design follows Triton's tutorial "Fused Attention" (``python/tutorials/06-fused-attention.py``)
and FlashAttention-3; the code is the course's own. The interpreter runs it on the CPU too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ..env import configure
from .attention import LOG2E, _scale, _validate

# fmt: off


@triton.jit
def _tma_inner(
    acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale, lo, hi,
    BLOCK_N: tl.constexpr, DIAGONAL: tl.constexpr, MASK_N: tl.constexpr,
    WARP_SPECIALIZE: tl.constexpr,
):
    """Stream key/value tiles ``[lo, hi)`` of one head past one query tile."""
    for start_n in tl.range(lo, hi, BLOCK_N, warp_specialize=WARP_SPECIALIZE):
        k = k_desc.load([row0 + start_n, 0])  # (BLOCK_N, HEAD_DIM), by the copy engine
        v = v_desc.load([row0 + start_n, 0])
        qk = tl.dot(q, k.T)
        if DIAGONAL or MASK_N:
            offs_n = start_n + tl.arange(0, BLOCK_N)
            keep = offs_n[None, :] < N
            if DIAGONAL:
                keep = keep & (offs_m[:, None] >= offs_n[None, :])
            qk = tl.where(keep, qk * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            qk = qk - m_new[:, None]
            if MASK_N:  # rows past N are the next head's: keep them out of P V
                v = tl.where(offs_n[:, None] < N, v, 0.0)
        else:
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_new[:, None]
        p = tl.math.exp2(qk)
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def attention_fwd_tma_kernel(
    q_desc, k_desc, v_desc, o_desc, Out, LSE, N, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, WARP_SPECIALIZE: tl.constexpr,
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
                                   WARP_SPECIALIZE=WARP_SPECIALIZE)
        acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale,
                                   start_m, tl.minimum(start_m + BLOCK_M, N), BLOCK_N,
                                   DIAGONAL=True, MASK_N=not EVEN_N, WARP_SPECIALIZE=False)
    else:
        n_full = (N // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N, qk_scale,
                                   0, n_full, BLOCK_N, DIAGONAL=False, MASK_N=False,
                                   WARP_SPECIALIZE=WARP_SPECIALIZE)
        if not EVEN_N:
            acc, l_i, m_i = _tma_inner(acc, l_i, m_i, q, k_desc, v_desc, row0, offs_m, N,
                                       qk_scale, n_full, N, BLOCK_N, DIAGONAL=False, MASK_N=True,
                                       WARP_SPECIALIZE=False)

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


# fmt: on


@dataclass(frozen=True)
class HopperFwdConfig:
    """Tiles and launch parameters of :func:`attention_fwd_tma_kernel`."""

    block_m: int
    block_n: int
    num_warps: int = 8
    num_stages: int = 3
    warp_specialize: bool = False


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
        WARP_SPECIALIZE=cfg.warp_specialize, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    return o, lse


def attention_hopper(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
) -> torch.Tensor:
    """softmax(sm_scale * q k^T [+ causal mask]) v through the TMA forward kernel (no autograd:
    for training, :func:`course.kernels.attention.attention`)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention: {name} must be a torch.Tensor, got {type(t).__name__}")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    return attention_forward_hopper(q, k, v, causal=causal, sm_scale=sm_scale)[0]
