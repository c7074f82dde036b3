"""Checks for the tile puzzles: eight small kernels, each one idea of working with 2-D tiles.

Every check does three things, in this order:

1. it runs the learner's kernel through ``mini_compiler``'s interpreter on CPU copies of the
   inputs (:func:`course.traffic.measure_traffic`): a load or store outside its tensor is
   reported here, before the kernel ever runs on a GPU, where a stray read can fault;
2. it runs the kernel on the course's device on fresh random inputs, with sizes that are not
   multiples of the block, and compares with a float64 reference (outputs poisoned first);
3. it compares the bytes the kernel loaded and stored with the puzzle's budget: the traffic of
   a kernel that reads each input element it needs once per program that needs it and writes
   each output once. A kernel that moves more is rejected with what to fix.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close, empty_poisoned
from ..env import configure
from ..traffic import Traffic, measure_traffic
from . import learner_code, passed


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pow2(n: int, least: int = 1) -> int:
    p = least
    while p < n:
        p *= 2
    return p


def _count(name: str, kernel, grid, args, constexprs) -> Traffic | None:
    """The kernel's traffic on CPU copies; a stray access becomes a WrongAnswer. None when
    ``mini_compiler`` cannot compile the kernel (the result checks still run)."""
    import mini_compiler

    try:
        return measure_traffic(kernel, grid, *args, **constexprs)
    except mini_compiler.OutOfBoundsError as error:
        verb = "reads" if "load out of bounds" in str(error) else "writes"
        raise WrongAnswer(
            f"{name}: your kernel {verb} outside its tensor:\n{error}\nGive every tl.load and "
            "tl.store a mask that is False for lanes past the edge of the tensor (in 2-D: the "
            "row mask and the column mask, combined with &)."
        ) from None
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - a construct mini_compiler does not compile
        return None


def _judge_traffic(name: str, traffic: Traffic | None, budget: int, minimum: int,
                   hint: str) -> str:
    """Fail when ``traffic`` exceeds ``budget``; return the line the check prints."""
    if traffic is None:
        return "traffic not counted (mini_compiler does not compile this kernel)"
    if traffic.total > budget:
        raise WrongAnswer(
            f"{name}: right answer, but your kernel moves {traffic.total:,} bytes "
            f"({traffic.describe()}); the budget is {budget:,} bytes and the minimum, each "
            f"element read and written once, {minimum:,}. {hint}"
        )
    return (f"moved {traffic.total:,} B (loaded {traffic.bytes_loaded:,}, stored "
            f"{traffic.bytes_stored:,}); minimum {minimum:,} B, budget {budget:,} B")


def _device() -> str:
    return configure().device


# --- 1. 2-D loads and broadcasting --------------------------------------------------------------


def check_add_row(add_row_kernel) -> None:
    """``add_row_kernel(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M, BLOCK_N)``, one program:
    ``out[i, j] = a[i, j] + b[j]`` for an ``M x N`` matrix ``a`` and a length-``N`` vector ``b``."""
    name = "add_row"
    sizes = [(16, 16), (5, 7), (13, 32), (32, 13)]
    for m, n in sizes:
        a, b = torch.randn(m, n), torch.randn(n)
        consts = dict(BLOCK_M=_pow2(m), BLOCK_N=_pow2(n))
        with learner_code(name):
            traffic = _count(name, add_row_kernel, (1,), (a, b, torch.empty(m, n), m, n), consts)
        a, b = a.to(_device()), b.to(_device())
        out = empty_poisoned(m, n, device=_device())
        with learner_code(name):
            add_row_kernel[(1,)](a, b, out, m, n, **consts)
        wrong_axis = a.double() + b.double()[:, None] if m == n else None
        if wrong_axis is not None and torch.allclose(out.double(), wrong_axis, atol=1e-5):
            raise WrongAnswer(
                f"{name} ({m}x{n}): you added b[i] to row i, broadcasting b along the wrong "
                "axis. b has one value per column: give it a new leading axis, b[None, :]."
            )
        check_close(out, a.double() + b.double()[None, :], name=f"{name} ({m}x{n})", quiet=True)
        report = _judge_traffic(
            name, traffic, budget=4 * (2 * m * n + n), minimum=4 * (2 * m * n + n),
            hint="Load b once, as a 1-D tile of N values, and let broadcasting (b[None, :]) "
            "spread it over the rows; loading it as a 2-D tile reads it once per row.")
    passed(name, f"right for {sizes}; {report}")


# --- 2. An outer product on a 2-D grid ----------------------------------------------------------


def check_outer(outer_kernel) -> None:
    """``outer_kernel(x_ptr, y_ptr, out_ptr, M, N, BLOCK_M, BLOCK_N)`` on the grid
    ``(cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))``: ``out[i, j] = x[i] * y[j]``."""
    name = "outer"
    cases = [(37, 50, 16, 32), (64, 64, 32, 32), (5, 100, 8, 64)]
    for m, n, bm, bn in cases:
        x, y = torch.randn(m), torch.randn(n)
        grid = (_cdiv(m, bm), _cdiv(n, bn))
        consts = dict(BLOCK_M=bm, BLOCK_N=bn)
        with learner_code(name):
            traffic = _count(name, outer_kernel, grid, (x, y, torch.empty(m, n), m, n), consts)
        x, y = x.to(_device()), y.to(_device())
        out = empty_poisoned(m, n, device=_device())
        with learner_code(name):
            outer_kernel[grid](x, y, out, m, n, **consts)
        check_close(out, x.double()[:, None] * y.double()[None, :],
                    name=f"{name} ({m}x{n}, blocks {bm}x{bn})", quiet=True)
        # each program needs its BLOCK_M values of x and BLOCK_N of y, once
        budget = 4 * (m * grid[1] + n * grid[0] + m * n)
        report = _judge_traffic(
            name, traffic, budget=budget, minimum=4 * (m + n + m * n),
            hint="Load x and y as 1-D tiles (BLOCK_M and BLOCK_N values) and form the product "
            "by broadcasting, x[:, None] * y[None, :]; a 2-D load of a vector reads each value "
            "once per row or column of the tile.")
    passed(name, f"right for {[c[:2] for c in cases]} on 2-D grids; last case {report}")


# --- 3. and 4. Reductions along each axis -------------------------------------------------------


def check_row_sum(row_sum_kernel) -> None:
    """``row_sum_kernel(x_ptr, out_ptr, M, N, BLOCK_M, BLOCK_N)`` on the grid
    ``(cdiv(M, BLOCK_M),)``, ``BLOCK_N >= N``: ``out[i] = sum_j x[i, j]``."""
    name = "row_sum"
    cases = [(32, 32, 32), (37, 50, 16), (100, 7, 32)]
    for m, n, bm in cases:
        x = torch.randn(m, n)
        grid, consts = (_cdiv(m, bm),), dict(BLOCK_M=bm, BLOCK_N=_pow2(n))
        with learner_code(name):
            traffic = _count(name, row_sum_kernel, grid, (x, torch.empty(m), m, n), consts)
        x = x.to(_device())
        out = empty_poisoned(m, device=_device())
        with learner_code(name):
            row_sum_kernel[grid](x, out, m, n, **consts)
        if m == n and torch.allclose(out.double(), x.double().sum(0), atol=1e-4):
            raise WrongAnswer(f"{name}: you summed the columns (axis=0). A row's values lie "
                              "along axis 1 of the tile: tl.sum(x, axis=1).")
        check_close(out, x.double().sum(1), name=f"{name} ({m}x{n})", rtol=1e-5, atol=1e-5,
                    quiet=True)
        report = _judge_traffic(name, traffic, budget=4 * (m * n + m), minimum=4 * (m * n + m),
                                hint="Load each program's rows once, as one 2-D tile.")
    passed(name, f"right for {[c[:2] for c in cases]}; last case {report}")


def check_col_sum(col_sum_kernel) -> None:
    """``col_sum_kernel(x_ptr, out_ptr, M, N, BLOCK_M, BLOCK_N)`` on the grid
    ``(cdiv(N, BLOCK_N),)``, looping over the rows ``BLOCK_M`` at a time:
    ``out[j] = sum_i x[i, j]``."""
    name = "col_sum"
    cases = [(32, 32, 32, 32), (37, 50, 16, 16), (100, 7, 16, 8)]
    for m, n, bm, bn in cases:
        x = torch.randn(m, n)
        grid, consts = (_cdiv(n, bn),), dict(BLOCK_M=bm, BLOCK_N=bn)
        with learner_code(name):
            traffic = _count(name, col_sum_kernel, grid, (x, torch.empty(n), m, n), consts)
        x = x.to(_device())
        out = empty_poisoned(n, device=_device())
        with learner_code(name):
            col_sum_kernel[grid](x, out, m, n, **consts)
        if m == n and torch.allclose(out.double(), x.double().sum(1), atol=1e-4):
            raise WrongAnswer(f"{name}: you summed the rows (axis=1). A column's values lie "
                              "along axis 0 of the tile: tl.sum(x, axis=0).")
        check_close(out, x.double().sum(0), name=f"{name} ({m}x{n}, BLOCK_M={bm})", rtol=1e-5,
                    atol=1e-5, quiet=True)
        report = _judge_traffic(name, traffic, budget=4 * (m * n + n), minimum=4 * (m * n + n),
                                hint="Each program reads its columns' elements once: step "
                                "through the rows BLOCK_M at a time, accumulate in registers, "
                                "and store once after the loop.")
    passed(name, f"right for {[c[:2] for c in cases]}; last case {report}")


# --- 5. A transpose ---------------------------------------------------------------------------


def check_transpose(transpose_kernel) -> None:
    """``transpose_kernel(x_ptr, out_ptr, M, N, BLOCK_M, BLOCK_N)`` on the grid
    ``(cdiv(M, BLOCK_M), cdiv(N, BLOCK_N))``: ``out`` (``N x M``) is ``x`` (``M x N``),
    transposed."""
    name = "transpose"
    cases = [(32, 32, 16, 16), (37, 50, 16, 32), (100, 7, 32, 8)]
    for m, n, bm, bn in cases:
        x = torch.randn(m, n)
        grid, consts = (_cdiv(m, bm), _cdiv(n, bn)), dict(BLOCK_M=bm, BLOCK_N=bn)
        with learner_code(name):
            traffic = _count(name, transpose_kernel, grid, (x, torch.empty(n, m), m, n), consts)
        x = x.to(_device())
        out = empty_poisoned(n, m, device=_device())
        with learner_code(name):
            transpose_kernel[grid](x, out, m, n, **consts)
        check_close(out, x.double().T, name=f"{name} ({m}x{n})", rtol=0, atol=0, quiet=True)
        report = _judge_traffic(name, traffic, budget=8 * m * n, minimum=8 * m * n,
                                hint="Load each tile of x once and store it once.")
    passed(name, f"exact for {[c[:2] for c in cases]}; last case {report}")


# --- 6. One tile of a matmul with tl.dot -------------------------------------------------------


def check_dot(dot_kernel) -> None:
    """``dot_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BLOCK_M, BLOCK_N, BLOCK_K)``, one program, blocks
    at least 16 and covering the matrices: ``c = a @ b``."""
    name = "dot"
    cases = [(16, 16, 16), (20, 25, 30), (64, 9, 33)]
    env = configure()
    # On a GPU, tl.dot on float32 uses TF32 tensor cores (10-bit mantissa) by default.
    tol = {} if env.interpreted else dict(rtol=2e-2, atol=2e-2)
    for m, n, k in cases:
        a, b = torch.randn(m, k), torch.randn(k, n)
        consts = dict(BLOCK_M=_pow2(m, 16), BLOCK_N=_pow2(n, 16), BLOCK_K=_pow2(k, 16))
        with learner_code(name):
            traffic = _count(name, dot_kernel, (1,), (a, b, torch.empty(m, n), m, n, k), consts)
        a, b = a.to(env.device), b.to(env.device)
        c = empty_poisoned(m, n, device=env.device)
        with learner_code(name):
            dot_kernel[(1,)](a, b, c, m, n, k, **consts)
        check_close(c, a.double() @ b.double(), name=f"{name} ({m}x{k} @ {k}x{n})", quiet=True,
                    **tol)
        minimum = 4 * (m * k + k * n + m * n)
        report = _judge_traffic(
            name, traffic, budget=minimum, minimum=minimum,
            hint="Load a and b once each, as whole tiles, and multiply them with one "
            "tl.dot(a, b); a loop that reloads a (or b) for every column (or row) reads it "
            "again each time.")
    passed(name, f"right for {cases}; last case {report}")


# --- 7. Offsets that overflow int32 -------------------------------------------------------------


def check_offsets(offsets_kernel) -> None:
    """``offsets_kernel(out_ptr, stride, n_rows, n_cols, BLOCK_R, BLOCK_C)`` on the grid
    ``(cdiv(n_rows, BLOCK_R),)``, ``BLOCK_C >= n_cols``: ``out[r, c] = r * stride + c`` in int64,
    the element offsets a kernel would use for row ``r`` of a matrix with that row stride."""
    name = "offsets"
    cases = [(50, 5, 1000), (300, 7, 2**24)]  # the second reaches 299 * 2**24 > 2**31 - 1
    for n_rows, n_cols, stride in cases:
        grid, consts = (_cdiv(n_rows, 32),), dict(BLOCK_R=32, BLOCK_C=_pow2(n_cols))
        with learner_code(name):
            traffic = _count(name, offsets_kernel, grid,
                             (torch.empty(n_rows, n_cols, dtype=torch.int64), stride, n_rows,
                              n_cols), consts)
        out = empty_poisoned(n_rows, n_cols, dtype=torch.int64, device=_device())
        with learner_code(name):
            offsets_kernel[grid](out, stride, n_rows, n_cols, **consts)
        rows = torch.arange(n_rows, dtype=torch.int64)[:, None]
        expected = rows * stride + torch.arange(n_cols, dtype=torch.int64)[None, :]
        got = out.to("cpu")
        differ = got != expected
        if differ.any() and ((got[differ] - expected[differ]) % 2**32 == 0).all():
            first = int(differ.any(1).nonzero()[0])
            raise WrongAnswer(
                f"{name}: from row {first} on (stride {stride:,}), your offsets are off by a "
                f"multiple of 2**32 (row {first}: got {int(got[first, 0]):,}, expected "
                f"{int(expected[first, 0]):,}): int32 overflow. row * stride is computed in "
                "int32 because tl.program_id, tl.arange and the stride are int32, and it wraps "
                "past 2**31 - 1. Convert before multiplying: rows.to(tl.int64) * stride "
                "(converting the product afterwards is too late)."
            )
        check_close(got, expected, name=f"{name} (stride {stride:,})", rtol=0, atol=0,
                    quiet=True)
        minimum = 8 * n_rows * n_cols
        report = _judge_traffic(name, traffic, budget=minimum, minimum=minimum,
                                hint="This kernel only computes and stores: it loads nothing.")
    passed(name, f"exact for strides {[c[2] for c in cases]}, offsets up to "
                 f"{int(expected.max()):,} (> 2**31 - 1); {report}")


# --- 8. A gather -------------------------------------------------------------------------------


def check_gather(gather_kernel) -> None:
    """``gather_kernel(x_ptr, idx_ptr, out_ptr, n, BLOCK)`` on the grid ``(cdiv(n, BLOCK),)``:
    ``out[i] = x[idx[i]]`` for int32 indices ``idx`` into ``x``."""
    name = "gather"
    cases = [(1000, 64, 300), (97, 32, 1000)]  # (n, BLOCK, len(x))
    for n, block, size in cases:
        x = torch.randn(size)
        idx = torch.randint(0, size, (n,), dtype=torch.int32)
        grid, consts = (_cdiv(n, block),), dict(BLOCK=block)
        with learner_code(name):
            traffic = _count(name, gather_kernel, grid, (x, idx, torch.empty(n), n), consts)
        x, idx = x.to(_device()), idx.to(_device())
        out = empty_poisoned(n, device=_device())
        with learner_code(name):
            gather_kernel[grid](x, idx, out, n, **consts)
        check_close(out, x.double()[idx.long()], name=f"{name} (n={n}, len(x)={size})",
                    rtol=0, atol=0, quiet=True)
        minimum = 3 * 4 * n
        report = _judge_traffic(name, traffic, budget=minimum, minimum=minimum,
                                hint="Load each index once and each gathered value once.")
    passed(name, f"exact for {[(c[0], c[2]) for c in cases]}; last case {report}")
