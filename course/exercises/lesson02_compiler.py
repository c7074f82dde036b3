"""Checks for lesson 2's compiler exercises, in the course's words.

The checks themselves live with the compiler (:mod:`mini_compiler.tools.gpu_exercises`): they
replay a learner's shuffle offsets on a simulated warp, compare a vector-width rule with the
compiler's own on many cases, compile kernels with the learner's rule to PTX and, where there is a
GPU, run them against torch. This module only wraps them the way every course check behaves: an
unsolved stub says so, and a failed check is a :class:`~course.check.WrongAnswer`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ..check import WrongAnswer
from ..env import configure
from . import learner_code, passed


def _run(exercise: str, check, rule) -> None:
    with learner_code(exercise):
        try:
            check(rule, run=configure().on_gpu)
        except AssertionError as failed:
            if isinstance(failed, WrongAnswer):
                raise
            raise WrongAnswer(f"{exercise}: {failed}") from None


def _where_it_ran() -> str:
    return "and ran it on the GPU" if configure().on_gpu else "(run it on a GPU to execute it)"


def check_butterfly_offsets(butterfly_offsets) -> None:
    """``butterfly_offsets(lanes, lane_stride)``: the xor distances of a warp reduction."""
    from mini_compiler.tools import gpu_exercises as exercises

    _run("butterfly_offsets", exercises.check_butterfly_offsets, butterfly_offsets)
    where = _where_it_ran()
    passed(
        "butterfly_offsets",
        f"every lane ends with its group's sum on a simulated warp, for groups of 1 to 32 lanes "
        f"at every spacing; a row/column-sum kernel compiled with your offsets {where}",
    )


def check_vector_width(vector_width) -> None:
    """``vector_width(contiguity, divisibility, elem_bytes)``: the widest legal access."""
    from mini_compiler.tools import gpu_exercises as exercises

    _run("vector_width", exercises.check_vector_width, vector_width)
    where = _where_it_ran()
    passed(
        "vector_width",
        f"agrees with the compiler's rule on all 168 cases; vector add compiled with it uses "
        f"128-bit loads {where}",
    )


# -- the axis-info exercise: the transfer function of a multiplication ---------------------------

TILE = 16  # length of the concrete tiles the soundness check draws (2-D: 8 x 8)


def _largest_power_of_two_dividing(values) -> int:
    from mini_compiler.passes.gpu.axis_info import MAX_DIVISIBILITY, largest_power_of_two_dividing

    result = MAX_DIVISIBILITY
    for v in values:
        result = min(result, largest_power_of_two_dividing(int(v)))
    return result


def _groups(array, d: int, length: int):
    """``array``'s aligned groups of ``length`` along dimension ``d``: shape (groups, length)."""
    import numpy as np

    moved = np.moveaxis(array, d, -1)
    return moved.reshape(-1, length)


def facts_of(array):
    """The strongest :class:`AxisInfo` that is true of the concrete integer ``array``: per
    dimension the longest aligned runs increasing by 1 (contiguity), the largest power of two
    dividing the first value of every such run (divisibility) and the longest aligned runs of
    one value (constancy). A 0-d array gives a scalar's divisibility."""
    import numpy as np

    from mini_compiler.passes.gpu.axis_info import AxisInfo

    array = np.asarray(array, dtype=np.int64)
    if array.ndim == 0:
        return AxisInfo((), (), (), _largest_power_of_two_dividing([array]))
    contiguity, divisibility, constancy = [], [], []
    for d, size in enumerate(array.shape):
        lengths = [1 << k for k in range(size.bit_length()) if size % (1 << k) == 0]
        steps = np.arange(size)
        runs = max(p for p in lengths
                   if (_groups(array, d, p) - _groups(array, d, p)[:, :1] ==
                       steps[:p]).all())
        contiguity.append(runs)
        divisibility.append(_largest_power_of_two_dividing(_groups(array, d, runs)[:, 0]))
        constancy.append(max(p for p in lengths
                             if (_groups(array, d, p) == _groups(array, d, p)[:, :1]).all()))
    return AxisInfo(tuple(contiguity), tuple(divisibility), tuple(constancy))


def _false_claim(info, array) -> str | None:
    """Which claim of ``info`` is false of the concrete ``array`` (None: all hold)."""
    import numpy as np

    array = np.asarray(array, dtype=np.int64)
    if array.ndim == 0:
        div = info.scalar_divisibility
        return None if int(array) % div == 0 else f"divisibility {div} (the value is {int(array)})"
    for d, size in enumerate(array.shape):
        run, div, same = info.contiguity[d], info.divisibility[d], info.constancy[d]
        for fact, length in (("contiguity", run), ("constancy", same)):
            if length < 1 or size % length:
                return f"{fact}[{d}] = {length}, which is not a power of two dividing {size}"
        groups = _groups(array, d, run)
        if not (groups - groups[:, :1] == np.arange(run)).all():
            return f"contiguity[{d}] = {run}"
        if (groups[:, 0] % div).any():
            return f"divisibility[{d}] = {div}"
        groups = _groups(array, d, same)
        if not (groups == groups[:, :1]).all():
            return f"constancy[{d}] = {same}"
    return None


def _operands(rng):
    """Concrete integer operands of the kinds a kernel multiplies, with the facts true of them."""
    import numpy as np

    ar = np.arange(TILE)
    one_d = [
        ar, ar + 16 * int(rng.integers(1, 64)), ar + int(rng.integers(1, 1000)),  # runs
        np.full(TILE, 16 * int(rng.integers(1, 64))), np.full(TILE, int(rng.integers(0, 100))),
        (ar % 4) + 64 * (ar // 4),  # runs of 4 starting at multiples of 64
        np.repeat(8 * rng.integers(0, 100, TILE // 4), 4),  # constant over 4
        4 * rng.integers(-1000, 1000, TILE),  # multiples of 4, nothing else known
        rng.integers(-1000, 1000, TILE),
    ]
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    two_d = [rows, cols, rows + 0 * cols, 64 * rows + cols, np.full((8, 8), 48),
             rng.integers(0, 50, (8, 8)) * 16]
    scalars = [np.int64(v) for v in (0, 1, 3, 16, 1024, int(rng.integers(1, 10**4)))]
    return [one_d, two_d, scalars]


def _as_info(result, rank: int, exercise: str, a, b):
    from mini_compiler.passes.gpu.axis_info import MAX_DIVISIBILITY, AxisInfo

    if not isinstance(result, AxisInfo):
        raise WrongAnswer(f"{exercise}({a}, {b}) returned {result!r}: return an AxisInfo, e.g. "
                          "AxisInfo(contiguity, divisibility, constancy) for a tile or "
                          "AxisInfo((), (), (), scalar_divisibility) for a scalar.")
    fields = (result.contiguity, result.divisibility, result.constancy)
    if any(len(tuple(f)) != rank for f in fields):
        what = "a scalar: AxisInfo((), (), (), divisibility)" if rank == 0 else \
            f"a {rank}-d tile: one entry per dimension in each of the three tuples"
        raise WrongAnswer(f"{exercise}({a}, {b}) returned {result}, but the product is {what}.")
    values = [*fields[1], result.scalar_divisibility]
    if any(v > MAX_DIVISIBILITY for v in values):
        raise WrongAnswer(
            f"{exercise}({a}, {b}) returned {result}: a divisibility above MAX_DIVISIBILITY "
            f"({MAX_DIVISIBILITY}). The analysis caps every divisibility there (0 is divisible "
            "by everything): take min(..., MAX_DIVISIBILITY)."
        )
    return AxisInfo(*(tuple(f) for f in fields), result.scalar_divisibility)


def _weaker(mine, reference) -> str | None:
    """The first fact where ``mine`` claims less than ``reference`` (None: at least as much)."""
    if mine.rank == 0:
        return None if mine.scalar_divisibility >= reference.scalar_divisibility else \
            "divisibility"
    for fact in ("contiguity", "divisibility", "constancy"):
        for d, (x, y) in enumerate(zip(getattr(mine, fact), getattr(reference, fact),
                                       strict=True)):
            if x < y:
                return f"{fact}[{d}]"
    return None


def check_multiply_info(multiply_info) -> None:
    """``multiply_info(a, b) -> AxisInfo``: what is known of ``x * y`` from what is known of
    ``x`` (``a``) and ``y`` (``b``). Sound on concrete tiles, as precise as the compiler's rule,
    and vector add / 2-D loads still vectorise when compiled with it."""
    import numpy as np

    from mini_compiler.passes.gpu.axis_info import DEFAULT_RULES

    name = "multiply_info"
    rng = np.random.default_rng()
    compared = 0
    for family in _operands(rng):
        for x in family:
            for y in family:
                a, b = facts_of(x), facts_of(y)
                with learner_code(name):
                    result = multiply_info(a, b)
                mine = _as_info(result, np.ndim(x), name, a, b)
                false = _false_claim(mine, x * y)
                if false:
                    raise WrongAnswer(
                        f"{name}: for x = {np.asarray(x).tolist()} (facts {a}) and "
                        f"y = {np.asarray(y).tolist()} (facts {b}) your rule says {mine}, but "
                        f"x * y = {np.asarray(x * y).tolist()}: its {false} is false. Facts must "
                        "hold for every x and y the inputs describe. Hints: a run times a "
                        "number is no longer a run (2 * [0, 1, 2, 3] = [0, 2, 4, 6]); the "
                        "divisibility of a run is that of its first value only, while a product "
                        "needs what divides every value; a product is constant only where both "
                        "factors are."
                    )
                reference = DEFAULT_RULES["tile.mul"](a, b)
                weaker = _weaker(mine, reference)
                if weaker:
                    raise WrongAnswer(
                        f"{name}: your rule is safe but says less than it could: for {a} times "
                        f"{b} it gives {mine}, and {reference} is also true (its {weaker} is "
                        "larger). The compiler needs those facts to vectorise: if x is a "
                        "multiple of 2^i and y of 2^j, x * y is a multiple of 2^(i+j); and the "
                        "product is constant wherever both factors are."
                    )
                compared += 1
    widths = _vector_loads_with(multiply_info)
    if widths["yours"] < widths["compiler"]:
        raise WrongAnswer(
            f"{name}: a 2-D kernel compiled with your rule issues {widths['yours']} 16-byte "
            f"loads and stores per thread where the compiler's rule gives {widths['compiler']}."
        )
    passed(
        name,
        f"true on {compared} pairs of concrete scalars and 1-D and 2-D tiles, never weaker than "
        f"the compiler's rule; a 2-D kernel compiled with it keeps its {widths['yours']} "
        "16-byte accesses per thread",
    )


@triton.jit
def _add_row_kernel(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + cols, mask=cols < N)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b[None, :], mask=mask)


def _vector_loads_with(multiply_info) -> dict[str, int]:
    """16-byte global accesses per thread in the PTX of a 2-D kernel (rows of 64 floats), compiled
    with the compiler's rule and with ``multiply_info``."""
    import torch

    from mini_compiler.backends import gpu
    from mini_compiler.hooks import override

    m, n = 64, 64
    args = (torch.randn(m, n), torch.randn(n), torch.empty(m, n), m, n)
    counts = {}
    for who, rules in (("compiler", {}), ("yours", {"tile.mul": multiply_info})):
        with override(axis_info=rules), learner_code("multiply_info"):
            ptx = gpu.compile_for_gpu(_add_row_kernel, *args, BLOCK_M=16, BLOCK_N=64,
                                      num_warps=4).ptx
        counts[who] = sum(".v4." in line for line in ptx.splitlines() if ".global" in line)
    return counts
