"""Checks for the two GPU back-end exercises; each raises ``AssertionError`` with an account.

1. **The shuffle tree of a warp reduction.** Write ``butterfly_offsets(lanes, lane_stride) ->
   list[int]``: the xor distances that combine ``lanes`` lanes spaced ``lane_stride`` apart so
   that *every* lane ends with the whole group's result. Plug it in with
   ``compile_for_gpu(..., butterfly_offsets=yours)`` / ``run_on_gpu(...)``.
   :func:`check_butterfly_offsets` replays your offsets on a simulated warp (32 lanes exchanging
   registers exactly as ``shfl.sync.bfly`` does), compiles a row-sum kernel with them to PTX, and
   on a GPU runs it against torch.

2. **The vector width.** Write ``vector_width(contiguity, divisibility, elem_bytes) -> int``: the
   widest legal access in elements (a power of two, at most ``contiguity``, at most 16 bytes,
   and ``width * elem_bytes`` dividing ``divisibility``, the alignment in bytes). Plug it in with
   ``compile_for_gpu(..., vector_width=yours)``. :func:`check_vector_width` compares it with the
   rule on many cases, compiles vector add and looks for ``ld.global.v4`` in the PTX, and on a GPU
   runs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .. import language as tl
from ..backends.gpu.nvvm import WARP_SIZE
from ..passes.gpu.coalesce import MAX_ACCESS_BYTES
from ..passes.gpu.coalesce import vector_width as reference_vector_width
from ..runtime.jit import jit
from .gpu import compile_for_gpu, run_on_gpu


def simulate_butterfly(offsets: list[int], values: list[int]) -> list[int]:
    """Each lane's register after exchanging with ``lane ^ offset`` and adding, per offset."""
    registers = list(values)
    for offset in offsets:
        if not isinstance(offset, int) or not 0 < offset < WARP_SIZE:
            raise AssertionError(f"offset {offset!r} is not a lane distance between 1 and 31")
        registers = [registers[lane] + registers[lane ^ offset] for lane in range(WARP_SIZE)]
    return registers


def expected_group_sums(values: list[int], lanes: int, lane_stride: int) -> list[int]:
    """What each lane should hold: the sum over the lanes that differ from it only in the
    lane-number bits of the reduced dimension (``lanes`` lanes, ``lane_stride`` apart)."""
    sums = []
    for lane in range(WARP_SIZE):
        position = (lane // lane_stride) % lanes
        first = lane - position * lane_stride
        sums.append(sum(values[first + i * lane_stride] for i in range(lanes)))
    return sums


def check_butterfly_offsets(rule: Callable[[int, int], list[int]], *, run: bool | None = None
                            ) -> None:
    """Check a learner's ``butterfly_offsets`` (see the module docstring)."""
    rng = random.Random(0)
    for lanes in (1, 2, 4, 8, 16, 32):
        for lane_stride in (1, 2, 4, 8, 16, 32):
            if lanes * lane_stride > WARP_SIZE:
                continue
            offsets = list(rule(lanes, lane_stride))
            values = [rng.randint(-100, 100) for _ in range(WARP_SIZE)]
            got = simulate_butterfly(offsets, values)
            want = expected_group_sums(values, lanes, lane_stride)
            if got != want:
                bad = next(lane for lane in range(WARP_SIZE) if got[lane] != want[lane])
                raise AssertionError(
                    f"butterfly_offsets({lanes}, {lane_stride}) = {offsets}: after the shuffles "
                    f"lane {bad} holds {got[bad]} but its group of {lanes} lanes (every "
                    f"{lane_stride}th lane) sums to {want[bad]}. Each offset must flip one of the "
                    "lane-number bits of the group, and every such bit exactly once.")
    _row_sum_case(rule, run)


def check_vector_width(rule: Callable[[int, int, int], int], *, run: bool | None = None) -> None:
    """Check a learner's ``vector_width`` (see the module docstring)."""
    for contiguity in (1, 2, 4, 8, 16, 1024):
        for divisibility in (1, 2, 4, 8, 16, 32, 1 << 30):
            for elem_bytes in (1, 2, 4, 8):
                want = reference_vector_width(contiguity, divisibility, elem_bytes)
                got = rule(contiguity, divisibility, elem_bytes)
                if got != want:
                    raise AssertionError(
                        f"vector_width(contiguity={contiguity}, divisibility={divisibility}, "
                        f"elem_bytes={elem_bytes}) returned {got!r}, expected {want}: the "
                        f"largest power of two that is <= contiguity, moves at most "
                        f"{MAX_ACCESS_BYTES} bytes, and whose byte size divides divisibility.")
    _vector_add_case(rule, run)


def _on_gpu(run: bool | None) -> bool:
    if run is not None:
        return run
    import torch

    return torch.cuda.is_available()


@jit
def row_and_column_sums(x_ptr, row_ptr, col_ptr, n_rows, n_cols,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Sums of a (BLOCK_M, BLOCK_N) tile along both axes: one reduction's lanes are neighbours,
    the other's are spaced apart (lane_stride > 1) and span several warps."""
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * n_cols + cols[None, :], mask=mask, other=0.0)
    tl.store(row_ptr + rows, tl.sum(x, axis=1), mask=rows < n_rows)
    tl.store(col_ptr + cols, tl.sum(x, axis=0), mask=cols < n_cols)


@jit
def add_vectors(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """Vector add, to see which accesses the vector-width rule makes wide."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


def _row_sum_case(rule, run: bool | None) -> None:
    import torch

    device = "cuda" if _on_gpu(run) else "cpu"
    x = torch.randn(29, 13, device=device)
    rows = torch.full((29,), float("nan"), device=device)
    cols = torch.full((13,), float("nan"), device=device)
    args = (x, rows, cols, 29, 13)
    compiled = compile_for_gpu(row_and_column_sums, *args, BLOCK_M=32, BLOCK_N=16,
                               butterfly_offsets=rule)
    if "shfl.sync.bfly" not in compiled.ptx:
        raise AssertionError("the compiled row/column sums use no warp shuffle at all")
    if device == "cuda":
        run_on_gpu(row_and_column_sums, (1,), *args, BLOCK_M=32, BLOCK_N=16,
                   butterfly_offsets=rule)
        torch.testing.assert_close(rows, x.sum(dim=1))
        torch.testing.assert_close(cols, x.sum(dim=0))


def _vector_add_case(rule, run: bool | None) -> None:
    import torch

    device = "cuda" if _on_gpu(run) else "cpu"
    n = 4096 + 16  # a multiple of 16 elements: the mask is uniform over groups of 4
    x, y = torch.randn(n, device=device), torch.randn(n, device=device)
    out = torch.full((n,), float("nan"), device=device)
    compiled = compile_for_gpu(add_vectors, x, y, out, n, BLOCK=1024, vector_width=rule)
    if "ld.global.v4.b32" not in compiled.ptx:
        raise AssertionError("vector add of fp32 with aligned pointers should use 128-bit "
                             "loads (ld.global.v4.b32), but the PTX has none")
    if device == "cuda":
        run_on_gpu(add_vectors, ((n + 1023) // 1024,), x, y, out, n, BLOCK=1024,
                   vector_width=rule)
        torch.testing.assert_close(out, x + y)
