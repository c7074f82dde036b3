"""Lesson 2: a fused softmax, and the online softmax for rows longer than one block.

``softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))`` along the last dimension. Subtracting
the row's maximum changes nothing mathematically (it cancels between numerator and denominator) but
keeps every exponent at most 0, so ``exp`` cannot overflow: that is the *numerically stable* form.

Built from separate framework operations (max, subtract, exp, sum, divide), softmax reads and writes
the whole matrix several times. A fused kernel reads each row once into registers, does all the
arithmetic there, and writes the result once: for a memory-bound operation, fewer bytes moved is
the whole game.

Two kernels:

* :func:`softmax_kernel` holds a whole row in one block (``BLOCK_SIZE >= n_cols``): one read, one
  write. Each program handles rows ``pid, pid + G, pid + 2G, ...`` for a grid of ``G`` programs, so
  the wrapper may launch one program per row or fewer, persistent programs.
* :func:`online_softmax_kernel` loops over a row of any length in blocks, keeping a running maximum
  ``m`` and a running sum ``d`` of ``exp(x - m)`` (Milakov & Gimelshein 2018, "Online normalizer
  calculation for softmax"); when the maximum grows, the sum so far is rescaled by
  ``exp(m_old - m_new)``. A second pass writes ``exp(x - m) / d``. :func:`online_softmax_update` is
  the step that flash attention (lesson 4) applies to tiles of attention scores.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..env import configure
from ._launch import LaunchCache, aligned
from ._validate import require_tensor

MAX_BLOCK_GPU = 16_384  # longest row (elements) kept in one block on the GPU: 64 KB of fp32
MAX_BLOCK_CPU = 1_024  # small on the CPU, so that tests and notebooks exercise the looping kernel
ONLINE_BLOCK = 4_096  # the looping kernel's tile along the row


@triton.jit
def softmax_kernel(
    x_ptr, out_ptr, n_rows, n_cols, x_row_stride, out_row_stride, BLOCK_SIZE: tl.constexpr
):
    """Softmax of whole rows, each held in one block of ``BLOCK_SIZE >= n_cols`` elements."""
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols  # lanes past the row's end load -inf: exp(-inf) = 0 adds nothing
    for row in range(tl.program_id(0), n_rows, tl.num_programs(0)):
        x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
        x = x.to(tl.float32)  # compute in fp32 whatever the storage type
        shifted = x - tl.max(x, axis=0)  # the stable form: every exponent <= 0
        numerator = tl.exp(shifted)
        y = numerator / tl.sum(numerator, axis=0)
        tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def online_softmax_update(m, d, x):
    """Fold tile ``x`` into a row's running maximum ``m`` and running sum ``d`` of ``exp(x - m)``.

    If the tile raises the maximum, every term already in ``d`` was computed against the old,
    smaller maximum and is too large by ``exp(m_new - m)``: multiply ``d`` by ``exp(m - m_new)``.
    Returns the new ``(m, d)``; the names are the paper's (flash attention calls the sum ``l``).
    Lesson 4 applies the same step to a tile of attention scores.
    """
    m_new = tl.maximum(m, tl.max(x, axis=0))
    d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
    return m_new, d


@triton.jit
def online_softmax_kernel(
    x_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, BLOCK_SIZE: tl.constexpr
):
    """Softmax of one row of any length per program, in tiles of ``BLOCK_SIZE`` elements."""
    row = tl.program_id(0)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride
    m = tl.full((), -float("inf"), tl.float32)  # running maximum of the row so far
    d = tl.full((), 0.0, tl.float32)  # running sum of exp(x - m) so far
    for start in range(0, n_cols, BLOCK_SIZE):  # pass 1: the normaliser, in one sweep
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_row + cols, mask=cols < n_cols, other=-float("inf")).to(tl.float32)
        m, d = online_softmax_update(m, d, x)
    for start in range(0, n_cols, BLOCK_SIZE):  # pass 2: read again, write the probabilities
        cols = start + tl.arange(0, BLOCK_SIZE)
        x = tl.load(x_row + cols, mask=cols < n_cols, other=-float("inf")).to(tl.float32)
        y = tl.exp(x - m) / d
        tl.store(out_row + cols, y.to(out_ptr.dtype.element_ty), mask=cols < n_cols)


def block_size_for(n_cols: int) -> int:
    """The block that holds a whole row: the next power of two (tiles are powers of two)."""
    return triton.next_power_of_2(n_cols)


def num_warps_for(block_size: int) -> int:
    """Warps per program: enough threads that each holds at most ~16 fp32 values of the row.

    Too few warps and a long row spills out of registers; too many and a short row leaves threads
    idle. On an H100 (fp32, 2^27 elements, 2026-11-22), rows of 1024 ran at 2981 / 2991 / 2251 /
    1124 GB/s with 4 / 8 / 16 / 32 warps; rows of 4096 at 2980 / 2981 / 2987 / 2648; rows of 16384
    at 2934 / 2964 / 2952 / 2949. This rule (4 warps up to 1024, then one per 256 elements, at most
    16) stays within 1% of the best of those.
    """
    return max(4, min(16, block_size // 256))


def _check_input(x) -> None:
    require_tensor("softmax", "x", x, contiguous=False)
    if x.dim() == 0:
        raise ValueError(
            "softmax: x is a 0-d tensor (a scalar); softmax needs at least one dimension"
        )
    if x.numel() == 0:
        raise ValueError(
            f"softmax: x is empty (shape {tuple(x.shape)}); there is nothing to normalise"
        )
    if x.numel() >= 2**31:
        raise ValueError("softmax: x has 2^31 elements or more; these kernels use 32-bit offsets")


def softmax(
    x: torch.Tensor,
    *,
    max_block: int | None = None,
    programs: int | None = None,
    num_warps: int | None = None,
) -> torch.Tensor:
    """Softmax over the last dimension of ``x`` (any leading shape), as a new tensor.

    Rows up to ``max_block`` elements (default 16384 on a GPU, 1024 on the CPU) use
    :func:`softmax_kernel`, one read and one write; longer rows fall back to
    :func:`online_softmax_kernel`. ``programs`` caps the grid (persistent programs that stride over
    the rows); by default there is one program per row. ``num_warps`` overrides
    :func:`num_warps_for`. fp32, fp16 and bf16 inputs; the arithmetic is fp32 and the result has
    ``x``'s dtype.
    """
    # The common case, repeated: a contiguous 2-D tensor on the GPU, seen before. One lookup
    # decides everything (see kernels/_launch.py); the checks below passed for this same key the
    # first time (shape, strides, dtype and device are all in it), so they are not run again.
    plan_key = None
    if type(x) is torch.Tensor and x.dim() == 2:
        plan_key = (x.shape, x.stride(), x.dtype, x.get_device(), x.data_ptr() % 16 == 0,
                    max_block, programs, num_warps)  # fmt: skip
        plan = _PLANS.get(plan_key)
        if plan is not None:
            launch, sizes = plan
            out = torch.empty_like(x)  # contiguous like x; 1.9 us on the H200, torch.empty 4.7
            launch(x, out, *sizes)
            return out
    _check_input(x)
    fast = plan_key is not None and x.is_contiguous() and configure().on_gpu
    if max_block is None:
        max_block = MAX_BLOCK_GPU if configure().on_gpu else MAX_BLOCK_CPU
    n_cols = x.shape[-1]
    x2 = x if x.dim() == 2 else x.reshape(-1, n_cols)  # a view when the dimensions allow it
    if x2.stride(1) != 1:  # the kernels read a row as consecutive elements
        x2 = x2.contiguous()
    n_rows = x2.shape[0]
    out = torch.empty_like(x2) if fast else torch.empty((n_rows, n_cols), dtype=x.dtype,
                                                         device=x.device)  # fmt: skip
    kernel, constants, grid, warps = _plan(n_rows, n_cols, max_block, programs, num_warps)
    if kernel is softmax_kernel:
        args = (x2, out, n_rows, n_cols, x2.stride(0), out.stride(0))
    else:
        args = (x2, out, n_cols, x2.stride(0), out.stride(0))
    if configure().on_gpu:  # bound launcher per key (kernels/_launch.py); the key decides it all
        key = (id(kernel), x.device.index, x.dtype, args[2:], aligned(x2), constants["BLOCK_SIZE"],
               grid, warps)  # fmt: skip
        _LAUNCHES.launch(key, kernel, grid, args, constants, num_warps=warps)
        if fast and len(_PLANS) < 1024 and _LAUNCHES.get(key) is not None:
            _PLANS[plan_key] = (_LAUNCHES.get(key), args[2:])
    else:
        kernel[grid](*args, **constants, num_warps=warps)
    return out if x.dim() == 2 else out.reshape(x.shape)


@functools.lru_cache(maxsize=1024)
def _plan(n_rows: int, n_cols: int, max_block: int, programs: int | None, num_warps: int | None):
    """Which kernel, with which block, grid and warps, for this problem (cached: it is asked on
    every call)."""
    block = block_size_for(n_cols)
    if block <= max_block:
        grid = (n_rows if programs is None else max(1, min(programs, n_rows)),)
        kernel, constants = softmax_kernel, {"BLOCK_SIZE": block}
    else:
        kernel, constants = online_softmax_kernel, {"BLOCK_SIZE": min(ONLINE_BLOCK, max_block)}
        grid = (n_rows,)
    return kernel, constants, grid, num_warps or num_warps_for(constants["BLOCK_SIZE"])


_LAUNCHES = LaunchCache()
_PLANS: dict = {}  # (shape, strides, dtype, device, alignment, options) -> (launcher, int args)


def naive_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax from five separate torch operations: each reads (and most write) the whole matrix.

    Traffic for an M x N matrix: max reads MN; subtract reads MN, writes MN; exp reads MN, writes
    MN; sum reads MN; divide reads MN, writes MN: about 8 MN elements against the fused kernel's 2.
    """
    row_max = x.max(dim=-1, keepdim=True).values
    shifted = x - row_max
    numerator = torch.exp(shifted)
    denominator = numerator.sum(dim=-1, keepdim=True)
    return numerator / denominator
