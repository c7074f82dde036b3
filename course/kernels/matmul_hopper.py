"""Lesson 3, going further on Hopper: a persistent matmul that moves tiles with TMA.

The lesson's kernel (:mod:`course.kernels.matmul`) launches one program per output tile and lets
every thread compute addresses and issue its own loads. On a Hopper GPU (H100, H200) two pieces of
hardware let a kernel do less of that work:

* **TMA** (the Tensor Memory Accelerator): one thread hands the copy engine a *tensor descriptor*
  (base address, shape, strides, tile shape) and the coordinates of a tile; the engine copies the
  whole tile from global to shared memory and signals an mbarrier when it is done. No per-thread
  address arithmetic, no masks: coordinates past the tensor's edge read zeros and stores there
  are dropped, so ragged shapes need no code at all. In Triton a descriptor is built on the host
  (``triton.tools.tensor_descriptor.TensorDescriptor``) and used in the kernel as
  ``desc.load([row, col])`` and ``desc.store([row, col], tile)``.
* **wgmma**: a warpgroup (four consecutive warps, 128 threads) issues one asynchronous
  matrix-multiply whose operands come straight from shared memory (where TMA put them). Triton
  already emits wgmma for ``tl.dot`` on Hopper, for the lesson's kernel too.

And one change of schedule:

* **Persistent programs**: launch one program per SM and let each loop over output tiles
  ``pid, pid + P, pid + 2P, ...``. The loads of the next tile can start while the previous tile's
  epilogue runs (``tl.range(..., flatten=True)`` lets the software pipeliner see across the tile
  boundary), and no program pays a launch.

The steps, each a switch so the benchmark can measure what it buys:

1. :func:`matmul_persistent_kernel`: the lesson's kernel made persistent (pointers, no TMA);
2. :func:`matmul_tma_kernel`: persistent, tiles loaded and stored through TMA descriptors;
3. ``EPILOGUE_SUBTILE``: the output tile leaves in two halves, so the epilogue needs half the
   shared memory (room for one more pipeline stage);
4. ``WARP_SPECIALIZE``: Triton splits the loop body between warps that only issue TMA copies
   (producers) and warpgroups that only compute (consumers), as FlashAttention-3 (Shah et al.,
   2024) does by hand.

The design follows Triton's tutorial "Persistent Matmul"
(``python/tutorials/09-persistent-matmul.py`` in the Triton repository); the code is the
course's own.

On the CPU, Triton's interpreter runs tensor descriptors too (zeros past the edges included), so
these kernels run in the tests; warps, stages and warp specialisation mean nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ..env import configure
from .matmul import _check_inputs, grouped_tile, leaky_relu

# fmt: off


@triton.jit
def matmul_persistent_kernel(
    a_ptr, b_ptr, c_ptr, M, N, K,
    stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_SIZE: tl.constexpr, NUM_PROGRAMS: tl.constexpr, ACTIVATION: tl.constexpr,
    EVEN_K: tl.constexpr, FLATTEN: tl.constexpr,
):
    """Step 1: ``NUM_PROGRAMS`` programs loop over all output tiles; loads through pointers.
    ``EVEN_K`` drops the K masks as in the lesson: a mask that varies along K would also stop the
    compiler from loading several consecutive elements at once."""
    num_pid_m, num_pid_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    for tile in tl.range(tl.program_id(0), num_pid_m * num_pid_n, NUM_PROGRAMS, flatten=FLATTEN):
        pid_m, pid_n = grouped_tile(tile, num_pid_m, num_pid_n, GROUP_SIZE)
        rows = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
        cols = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kk in range(k_tiles):
            ks = kk * BLOCK_K + tl.arange(0, BLOCK_K)
            a_ptrs = a_ptr + rows[:, None] * stride_am + ks[None, :] * stride_ak
            b_ptrs = b_ptr + ks[:, None] * stride_bk + cols[None, :] * stride_bn
            if EVEN_K:
                a, b = tl.load(a_ptrs), tl.load(b_ptrs)
            else:
                a = tl.load(a_ptrs, mask=ks[None, :] < K, other=0.0)
                b = tl.load(b_ptrs, mask=ks[:, None] < K, other=0.0)
            acc = tl.dot(a, b, acc)
        if ACTIVATION == "leaky_relu":
            acc = leaky_relu(acc)
        out_rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        out_cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        tl.store(c_ptr + out_rows[:, None] * stride_cm + out_cols[None, :] * stride_cn,
                 acc.to(c_ptr.dtype.element_ty),
                 mask=(out_rows[:, None] < M) & (out_cols[None, :] < N))


@triton.jit
def matmul_tma_kernel(
    a_desc, b_desc, c_desc, M, N, K,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_SIZE: tl.constexpr, NUM_PROGRAMS: tl.constexpr, ACTIVATION: tl.constexpr,
    B_TRANSPOSED: tl.constexpr,  # b_desc describes B^T, an (N, K) matrix with rows along K
    EPILOGUE_SUBTILE: tl.constexpr, WARP_SPECIALIZE: tl.constexpr, FLATTEN: tl.constexpr,
):
    """Steps 2-4: persistent, with every tile moved by TMA. Edges need no masks: the copy engine
    reads zeros past the tensor's edge (adding nothing to the sum) and drops stores there."""
    num_pid_m, num_pid_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    for tile in tl.range(tl.program_id(0), num_pid_m * num_pid_n, NUM_PROGRAMS,
                         flatten=FLATTEN, warp_specialize=WARP_SPECIALIZE):
        pid_m, pid_n = grouped_tile(tile, num_pid_m, num_pid_n, GROUP_SIZE)
        off_m, off_n = pid_m * BLOCK_M, pid_n * BLOCK_N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kk in range(k_tiles):
            a = a_desc.load([off_m, kk * BLOCK_K])  # (BLOCK_M, BLOCK_K), into shared memory
            if B_TRANSPOSED:
                b = b_desc.load([off_n, kk * BLOCK_K]).T
            else:
                b = b_desc.load([kk * BLOCK_K, off_n])  # (BLOCK_K, BLOCK_N)
            acc = tl.dot(a, b, acc)
        if ACTIVATION == "leaky_relu":
            acc = leaky_relu(acc)
        if EPILOGUE_SUBTILE:  # two (BLOCK_M, BLOCK_N / 2) halves, one after the other
            halves = tl.permute(tl.reshape(acc, (BLOCK_M, 2, BLOCK_N // 2)), (0, 2, 1))
            left, right = tl.split(halves)
            c_desc.store([off_m, off_n], left.to(c_desc.dtype))
            c_desc.store([off_m, off_n + BLOCK_N // 2], right.to(c_desc.dtype))
        else:
            c_desc.store([off_m, off_n], acc.to(c_desc.dtype))


# fmt: on


@dataclass(frozen=True)
class HopperConfig:
    """Tile shape, launch parameters and which of the steps to use."""

    block_m: int = 128
    block_n: int = 256
    block_k: int = 64
    num_warps: int = 8
    num_stages: int = 3
    group_size: int = 8
    tma: bool = True  # False: step 1, the persistent kernel with pointer loads
    epilogue_subtile: bool = False
    warp_specialize: bool = False
    flatten: bool = True  # one software pipeline across tile boundaries (off with warp_specialize)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# Chosen on the H200 (benchmarks/bench_hopper.py; see benchmarks/results/nvidia-h200/hopper.json):
# a fourth stage, which fits only with the subtiled epilogue, and groups of 16 tile rows.
GPU_CONFIG = HopperConfig(num_stages=4, epilogue_subtile=True, group_size=16)
SMALL_GPU_CONFIG = HopperConfig(block_n=128, num_stages=4)  # when big tiles would idle SMs
CPU_CONFIG = HopperConfig(block_m=32, block_n=32, block_k=32, num_warps=4, num_stages=1)
CPU_PROGRAMS = 3  # few programs on the CPU, so each loops over several tiles

TMA_ALIGNMENT = 16  # bytes: a descriptor's base address and every stride but the last


def default_config(m: int, n: int) -> HopperConfig:
    """The configuration for an ``m x n`` output on this device."""
    if not configure().on_gpu:
        return CPU_CONFIG
    tiles = triton.cdiv(m, GPU_CONFIG.block_m) * triton.cdiv(n, GPU_CONFIG.block_n)
    return GPU_CONFIG if tiles >= 0.9 * _sm_count() else SMALL_GPU_CONFIG


def _sm_count() -> int:
    return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count


def _supported_dtypes() -> tuple[torch.dtype, ...]:
    # The interpreter's tl.dot has no bf16 (numpy has none): bf16 goes through fp32 there, as in
    # the lesson's wrapper. fp32 on a GPU belongs to the lesson's kernel (TF32 tiles of this size
    # would not fit shared memory at these tile shapes).
    if configure().on_gpu:
        return (torch.float16, torch.bfloat16)
    return (torch.float16, torch.bfloat16, torch.float32)


def tma_ready(t: torch.Tensor) -> torch.Tensor:
    """``t`` if TMA can describe it (rows contiguous, 16-byte aligned base and row stride), else a
    copy into a zero-padded buffer whose rows are padded to a multiple of 16 bytes (the padding
    columns are zeros, which add nothing to a product)."""
    per_row = TMA_ALIGNMENT // t.element_size()
    if t.stride(1) == 1 and t.stride(0) % per_row == 0 and t.data_ptr() % TMA_ALIGNMENT == 0:
        return t
    rows, cols = t.shape
    padded = torch.zeros((rows, triton.cdiv(cols, per_row) * per_row), dtype=t.dtype,
                         device=t.device)  # fmt: skip
    padded[:, :cols] = t
    return padded


def matmul_hopper(
    a: torch.Tensor,
    b: torch.Tensor,
    activation: str | None = None,
    *,
    config: HopperConfig | None = None,
    programs: int | None = None,
) -> torch.Tensor:
    """``activation(a @ b)`` with the persistent TMA kernel (or step 1, ``config.tma=False``).

    fp16 and bf16 on a GPU (fp32 too on the CPU). ``programs`` sets the number of persistent
    programs (default: one per SM, at most one per tile). A ``b`` whose columns are contiguous
    (such as ``w.T`` for a weight ``w`` of shape (N, K)) is read as it is; other inputs that TMA
    cannot describe are first copied into a padded buffer (see :func:`tma_ready`). When a row of
    the result is not a multiple of 16 bytes long (N odd in fp16, say), the result is a view of
    the first N columns of a row-padded buffer, so it is not contiguous.
    """
    _check_inputs(a, b, activation)
    if a.dtype not in _supported_dtypes():
        raise TypeError(
            f"matmul_hopper: {a.dtype} is not supported here; use fp16 or bf16, or "
            "course.kernels.matmul for fp32"
        )
    (M, K), (_, N) = a.shape, b.shape
    if M == 0 or N == 0 or K == 0:
        c = torch.zeros((M, N), device=a.device, dtype=a.dtype)
        return c
    if a.dtype == torch.bfloat16 and not configure().on_gpu:  # see _supported_dtypes
        return matmul_hopper(a.float(), b.float(), activation, config=config,
                             programs=programs).to(torch.bfloat16)  # fmt: skip
    cfg = config or default_config(M, N)
    tiles = triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n)
    if programs is None:
        programs = _sm_count() if configure().on_gpu else CPU_PROGRAMS
    programs = max(1, min(programs, tiles))
    options = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
    common = dict(BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
                  GROUP_SIZE=cfg.group_size, NUM_PROGRAMS=programs,
                  ACTIVATION=activation)  # fmt: skip
    if not cfg.tma:
        c = torch.empty((M, N), device=a.device, dtype=a.dtype)
        matmul_persistent_kernel[(programs,)](
            a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
            c.stride(0), c.stride(1), **common, EVEN_K=K % cfg.block_k == 0,
            FLATTEN=cfg.flatten, **options,
        )  # fmt: skip
        return c
    return _matmul_tma(a, b, cfg, common, options, programs)


def _matmul_tma(a, b, cfg: HopperConfig, common: dict, options: dict, programs: int):
    from triton.tools.tensor_descriptor import TensorDescriptor

    (M, K), (_, N) = a.shape, b.shape
    a = tma_ready(a)
    b_transposed = b.stride(0) == 1 and b.stride(1) != 1  # b = w.T with w (N, K) row-major
    b = tma_ready(b.T if b_transposed else b)
    per_row = TMA_ALIGNMENT // a.element_size()
    n_padded = triton.cdiv(N, per_row) * per_row  # C's rows padded too, if N needs it
    c = torch.empty((M, n_padded), device=a.device, dtype=a.dtype)
    # The descriptors carry the true (unpadded) shapes: TMA treats everything past them as the edge.
    a_desc = TensorDescriptor(a, [M, K], [a.stride(0), 1], [cfg.block_m, cfg.block_k])
    if b_transposed:
        b_desc = TensorDescriptor(b, [N, K], [b.stride(0), 1], [cfg.block_n, cfg.block_k])
    else:
        b_desc = TensorDescriptor(b, [K, N], [b.stride(0), 1], [cfg.block_k, cfg.block_n])
    c_block_n = cfg.block_n // 2 if cfg.epilogue_subtile else cfg.block_n
    c_desc = TensorDescriptor(c, [M, N], [c.stride(0), 1], [cfg.block_m, c_block_n])
    matmul_tma_kernel[(programs,)](
        a_desc, b_desc, c_desc, M, N, K, **common, B_TRANSPOSED=b_transposed,
        EPILOGUE_SUBTILE=cfg.epilogue_subtile, WARP_SPECIALIZE=cfg.warp_specialize,
        FLATTEN=cfg.flatten and not cfg.warp_specialize, **options,
    )  # fmt: skip
    return c if n_padded == N else c[:, :N]
