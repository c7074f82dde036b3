"""Six classic Triton bugs, each as a tiny kernel and a run that shows what it does.

The book's "Common bugs" page shows these functions (by name, so the page and the code cannot
drift apart), and ``tests/test_bug_examples.py`` runs each one and checks the behaviour the page
describes. Everything runs on a CPU: Triton's interpreter, or ``mini_compiler`` where the point
is a bounds check or a compile cache.
"""

from __future__ import annotations

import time

from .env import configure

DEVICE = configure().device  # chosen before triton loads: the interpreter without a GPU

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from .check import empty_poisoned  # noqa: E402

# --- 1. a missing mask ------------------------------------------------------------------------


@triton.jit
def add_without_mask(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offsets)  # the last program reads past the end of x ...
    y = tl.load(y_ptr + offsets)
    tl.store(out_ptr + offsets, x + y)  # ... and writes past the end of out


def missing_mask(n: int = 1000, block: int = 256) -> str:
    """Run :func:`add_without_mask` through ``mini_compiler`` with bounds checking; return its
    report of the first access outside a tensor."""
    import mini_compiler

    x, y, out = torch.randn(n), torch.randn(n), torch.empty(n)
    try:
        mini_compiler.jit(add_without_mask)[(triton.cdiv(n, block),)](
            x, y, out, n, BLOCK=block, bounds_check=True
        )
    except mini_compiler.OutOfBoundsError as error:
        return str(error)
    return "no access outside a tensor"


# --- 2. a short grid --------------------------------------------------------------------------


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


def short_grid(n: int = 1000, block: int = 256) -> tuple[int, int]:
    """Launch ``n // block`` programs instead of ``cdiv(n, block)`` on a NaN-poisoned output;
    return (elements never written, elements never written with the right grid)."""
    x, y = torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)
    unwritten = []
    for programs in (n // block, triton.cdiv(n, block)):
        out = empty_poisoned(n, device=DEVICE)
        add_kernel[(programs,)](x, y, out, n, BLOCK=block)
        unwritten.append(int(torch.isnan(out).sum()))
    return unwritten[0], unwritten[1]


# --- 3. other=0 where a maximum needs -inf ----------------------------------------------------


@triton.jit
def row_max(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr, OTHER: tl.constexpr):
    cols = tl.arange(0, BLOCK)
    row = tl.load(x_ptr + tl.program_id(0) * n_cols + cols, mask=cols < n_cols, other=OTHER)
    tl.store(out_ptr + tl.program_id(0), tl.max(row, axis=0))


def other_zero_in_a_max() -> dict[str, list[float]]:
    """The maximum of rows of negative numbers, 100 wide in blocks of 128: masked lanes filled
    with 0 win the maximum; filled with -inf they never do."""
    x = -1.0 - torch.rand(3, 100, device=DEVICE)  # every value in [-2, -1)
    results = {"torch": x.max(dim=1).values.tolist()}
    for name, other in (("other=0.0", 0.0), ("other=-inf", float("-inf"))):
        out = empty_poisoned(3, device=DEVICE)
        row_max[(3,)](x, out, 100, BLOCK=128, OTHER=other)
        results[name] = out.tolist()
    return results


# --- 4. int32 offsets that overflow ------------------------------------------------------------


@triton.jit
def row_offset(out_ptr, row, row_stride, WIDE: tl.constexpr):
    if WIDE:
        offset = row.to(tl.int64) * row_stride  # the product is computed in 64 bits
    else:
        offset = row * row_stride  # both are int32 arguments: so is the product
    tl.store(out_ptr, offset)


def int32_overflow(row: int = 70_000, row_stride: int = 32_768) -> dict[str, int]:
    """Where row ``row`` of a tensor with ``row_stride`` elements per row starts, computed as a
    kernel computes it, in int32 and in int64 (each argument fits in int32; the product not)."""
    import warnings

    results = {"exact": row * row_stride}
    for name, wide in (("int32", False), ("int64", True)):
        out = torch.zeros(1, dtype=torch.int64, device=DEVICE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy notes the wrap-around
            row_offset[(1,)](out, row, row_stride, WIDE=wide)
        results[name] = int(out.item())
    return results


# --- 5. recompiles caused by constexpr values --------------------------------------------------


@triton.jit
def scale_constexpr_n(x_ptr, out_ptr, n: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, 2.0 * tl.load(x_ptr + offsets, mask=mask), mask=mask)


@triton.jit
def scale(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, 2.0 * tl.load(x_ptr + offsets, mask=mask), mask=mask)


def constexpr_recompiles(sizes=(1000, 1001, 1002, 1003, 1024, 2048)) -> dict[str, int]:
    """How many compiled variants ``mini_compiler`` builds for one call per size: ``n`` as a
    ``tl.constexpr`` (a variant per value) and as a runtime argument (a variant per kind of
    value: specialised when divisible by 16, as Triton does)."""
    import mini_compiler

    counts = {}
    for name, kernel in (("n: tl.constexpr", scale_constexpr_n), ("n", scale)):
        compiled = mini_compiler.jit(kernel)
        variants = set()
        for n in sizes:
            x, out = torch.randn(n), torch.empty(n)
            variants.add(id(compiled[(triton.cdiv(n, 256),)](x, out, n, BLOCK=256)))
        counts[name] = len(variants)
    return counts


# --- 6. autotune keys -----------------------------------------------------------------------


def _cpu_bench(fn, quantiles=None):
    """Wall-clock milliseconds of one call: the autotuner's timer when there is no GPU (the
    interpreter's times say nothing about a GPU, but the autotuner's bookkeeping is the same)."""
    start = time.perf_counter()
    fn()
    ms = (time.perf_counter() - start) * 1e3
    return [ms] * len(quantiles) if quantiles else ms


@triton.autotune(configs=[triton.Config({"BLOCK": 128}), triton.Config({"BLOCK": 1024})],
                 key=["n"], do_bench=None if DEVICE == "cuda" else _cpu_bench)
@triton.jit
def add_tuned_per_n(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask)
             + tl.load(y_ptr + offsets, mask=mask), mask=mask)  # fmt: skip


@triton.autotune(configs=[triton.Config({"BLOCK": 128}), triton.Config({"BLOCK": 1024})],
                 key=[], do_bench=None if DEVICE == "cuda" else _cpu_bench)
@triton.jit
def add_tuned_once(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask)
             + tl.load(y_ptr + offsets, mask=mask), mask=mask)  # fmt: skip


def autotune_keys(sizes=(1000, 5000)) -> dict[str, list]:
    """Call both autotuned kernels at two sizes; return, per kernel, the keys it tuned for (each
    one timed every configuration). With ``key=[]`` the first size's choice serves every size."""
    results = {}
    for name, kernel in (('key=["n"]', add_tuned_per_n), ("key=[]", add_tuned_once)):
        kernel.cache.clear()
        for n in sizes:
            x, y = torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)
            out = empty_poisoned(n, device=DEVICE)
            kernel[lambda meta, n=n: (triton.cdiv(n, meta["BLOCK"]),)](x, y, out, n)
            torch.testing.assert_close(out, x + y)
        results[name] = sorted(kernel.cache)
    return results
