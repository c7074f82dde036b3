"""Check for chapter 1's write-a-pass exercise: algebraic simplification over the tile IR.

The learner writes a whole pass, ``simplify_algebra(fn) -> fn``, that replaces an integer
``x * 0`` (or ``0 * x``) and an integer ``x - x`` by a constant zero. The check does what the
compiler's own tests do for every pass (the method of *Essentials of Compilation*): it compiles
several kernels to tile IR with the standard passes, runs the learner's pass on a copy, and runs
**both** versions through ``mini_compiler``'s reference interpreter on the same fresh inputs
(``inf`` and ``NaN`` among them). The two must store the same bits, and the simplified IR must no
longer contain the ops the pass is for, in loop bodies too, while a float ``x * 0.0`` or
``x - x`` (not zero when ``x`` is infinite or NaN) must still be there.
"""

from __future__ import annotations

import copy

import torch
import triton
import triton.language as tl

from ..check import WrongAnswer
from . import learner_code, passed

# -- kernels whose IR, after the standard passes, still holds what the pass should remove ------


@triton.jit
def broadcast_add_kernel(a_ptr, b_ptr, out_ptr, M, N, STRIDE_B: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """``out = a + b``, where ``b``'s row stride is a constexpr: 0 broadcasts one row of ``b``."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + rows[:, None] * STRIDE_B + cols[None, :], mask=mask)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b, mask=mask)


@triton.jit
def shifted_sum_kernel(x_ptr, out_ptr, n, SHIFT: tl.constexpr, BLOCK: tl.constexpr):
    """Sum of 4 windows of ``x`` that start ``SHIFT`` apart (with ``SHIFT = 0``: 4 times ``x``).
    ``lo`` and ``hi`` are the same expression, which CSE turns into one value: ``hi - lo`` is
    then ``v - v``, inside the loop's body."""
    pid = tl.program_id(0)
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    for step in range(0, 4):
        lo = pid * BLOCK + SHIFT * step
        hi = pid * BLOCK + SHIFT * step
        offsets = lo + tl.arange(0, BLOCK) + (hi - lo)
        total += tl.load(x_ptr + offsets, mask=offsets < n, other=0.0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offsets, total, mask=offsets < n)


@triton.jit
def float_traps_kernel(x_ptr, out_ptr, n, SCALE: tl.constexpr, BLOCK: tl.constexpr):
    """``x * 0.0 + (x - x)``: NaN where ``x`` is infinite or NaN, so not a zero to fold."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x * SCALE + (x - x), mask=mask)


def _float_input(n: int) -> torch.Tensor:
    x = torch.randn(n)
    x[::7] = float("inf")
    x[3::11] = float("-inf")
    x[5::13] = float("nan")
    return x


def _cases() -> list[dict]:
    """Each kernel with its arguments, and how many integer x*0 and x-x its IR holds."""
    m, n = 37, 50
    return [
        dict(kernel=broadcast_add_kernel, grid=(3,),
             args=lambda: [torch.randn(m, n), torch.randn(n), torch.empty(m, n), m, n],
             outputs=[2], meta=dict(STRIDE_B=0, BLOCK_M=16, BLOCK_N=64), zero_mul=1, self_sub=0),
        dict(kernel=shifted_sum_kernel, grid=(4,),
             args=lambda: [torch.randn(1000), torch.empty(1000), 1000],
             outputs=[1], meta=dict(SHIFT=0, BLOCK=256), zero_mul=1, self_sub=1),
        dict(kernel=float_traps_kernel, grid=(2,),
             args=lambda: [_float_input(300), torch.empty(300), 300],
             outputs=[1], meta=dict(SCALE=0.0, BLOCK=256), zero_mul=0, self_sub=0),
    ]


# -- what the learner uses ----------------------------------------------------------------------


def constant_like(value, like):
    """A new op that defines the constant ``value`` with the type of the value ``like``:
    ``tile.constant`` for a scalar, ``tile.full`` for a tile. Put it where ``like``'s op was."""
    from mini_compiler.ir.ops import Op, Value

    kind = "tile.constant" if like.type.is_scalar else "tile.full"
    loc = like.owner.loc if isinstance(like.owner, Op) else None
    op = Op(kind, [], [], {"value": value}, [], *([loc] if loc is not None else []))
    op.results = [Value(like.type, "", op)]
    return op


# -- what the check looks for -------------------------------------------------------------------


def _targets(fn) -> dict[str, list[tuple[str, bool]]]:
    """Ops the pass is about, by kind: (printed op, inside a loop or if body)."""
    from mini_compiler.passes.constant_fold import constant_value

    found: dict[str, list[tuple[str, bool]]] = {"zero_mul": [], "self_sub": [],
                                                 "float_zero_mul": [], "float_self_sub": []}

    def visit(block, nested: bool) -> None:
        for op in block.ops:
            for region in op.regions:
                visit(region, True)
            if op.name not in ("tile.mul", "tile.sub"):
                continue
            prefix = "" if op.result.type.element.is_int else "float_"
            a, b = op.operands
            if op.name == "tile.mul" and 0 in (constant_value(a), constant_value(b)):
                found[prefix + "zero_mul"].append((f"{op.name} : {op.result.type}", nested))
            if op.name == "tile.sub" and a is b:
                found[prefix + "self_sub"].append((f"{op.name} : {op.result.type}", nested))

    visit(fn.body, False)
    return found


def _undefined_operand(fn) -> str | None:
    """The first op that reads a value defined nowhere before it (None if every read is fine)."""
    from mini_compiler.ir.printer import print_function

    def visit(block, defined: set) -> str | None:
        defined = defined | {id(a) for a in block.args}
        for op in block.ops:
            for v in op.operands:
                if id(v) not in defined:
                    return f"{op.name} (result type {[str(r.type) for r in op.results]})"
            for region in op.regions:
                problem = visit(region, defined)
                if problem:
                    return problem
            defined |= {id(r) for r in op.results}
        return None

    try:
        print_function(fn)
    except Exception as error:  # noqa: BLE001 - the printer is the first to trip on bad IR
        return f"the IR cannot even be printed ({type(error).__name__}: {error})"
    return visit(fn.body, set())


def _interpret(fn, kernel, grid, args: list) -> None:
    import inspect

    from mini_compiler.frontend.source import python_function_of
    from mini_compiler.interpreter import Memory, interpret

    names = list(inspect.signature(python_function_of(kernel) or kernel).parameters)
    memory, values = Memory(), []
    for name, arg in zip(names, args, strict=False):
        if isinstance(arg, torch.Tensor):
            memory.add(name, arg.data_ptr(), arg.numel() * arg.element_size())
            values.append(arg.data_ptr())
        else:
            values.append(arg)
    interpret(fn, values, tuple(grid) + (1,) * (3 - len(grid)), memory)


def _run_both(case: dict, before, after) -> tuple[list, list]:
    """Run the IR before and after the pass on the same fresh inputs; return their outputs."""
    args = case["args"]()
    results = []
    for fn in (before, after):
        copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        for index in case["outputs"]:
            copies[index].fill_(float("nan"))
        _interpret(copy.deepcopy(fn), case["kernel"], case["grid"], copies)
        results.append([copies[index] for index in case["outputs"]])
    return results[0], results[1]


def _where(nested: bool) -> str:
    return "inside a loop body" if nested else "at the top level"


def _check_case(name: str, simplify_algebra, case: dict) -> tuple[int, int]:
    import mini_compiler
    from mini_compiler.ir.printer import print_function
    from mini_compiler.passes.dce import eliminate_dead_code
    from mini_compiler.passes.infer_shapes import verify_explicit_shapes

    kernel = case["kernel"]
    title = kernel.fn.__name__ if hasattr(kernel, "fn") else kernel.__name__
    compiled = mini_compiler.jit(kernel).compile(*case["args"](), backend="interpreter",
                                                 **case["meta"])
    before = copy.deepcopy(compiled.tile_ir)
    targets_before = _targets(before)
    assert len(targets_before["zero_mul"]) == case["zero_mul"], "the check's kernels changed"
    assert len(targets_before["self_sub"]) == case["self_sub"], "the check's kernels changed"
    with learner_code(name):
        after = simplify_algebra(copy.deepcopy(before))
    if after is None:
        raise WrongAnswer(f"{name}: your pass returned None. A pass returns the function it "
                          "rewrote: end it with `return fn`.")
    problem = _undefined_operand(after)
    if problem:
        raise WrongAnswer(
            f"{name} on {title}: after your pass, {problem} reads a value that is no longer "
            "defined. Before dropping an op, make its users read the replacement "
            "(replace_uses(fn.body, op.result, new_value)), and put the new constant op into the "
            "block in the old op's place, before any of its users."
        )
    eliminate_dead_code(after)  # what the pipeline runs next: unused constants go
    try:
        verify_explicit_shapes(after)
    except AssertionError as error:
        raise WrongAnswer(
            f"{name} on {title}: a replacement has the wrong type ({error}). Replace a value by "
            "one of the same type: constant_like(0, op.result) makes a zero of op.result's type "
            "(a tile.full for a tile, a tile.constant for a scalar)."
        ) from None
    targets_after = _targets(after)
    for kind, what in (("float_zero_mul", "x * 0.0"), ("float_self_sub", "x - x")):
        if len(targets_after[kind]) < len(targets_before[kind]):
            raise WrongAnswer(
                f"{name} on {title}: your pass replaced a float {what} by 0. For floats that is "
                "wrong: inf * 0.0 and inf - inf are NaN, and NaN * 0.0 is NaN. Simplify only when "
                "op.result.type.element.is_int."
            )
    try:
        want, got = _run_both(case, before, after)
    except mini_compiler.OutOfBoundsError as error:
        raise WrongAnswer(
            f"{name} on {title}: after your pass the kernel reaches outside its tensors "
            f"({str(error).splitlines()[0]}). A pass must not change what the kernel computes: "
            "replace an integer x * 0 by a zero of its type, not by x.\n"
            f"IR after your pass:\n{print_function(after)}"
        ) from None
    for index, (w, g) in enumerate(zip(want, got, strict=True)):
        same = torch.equal(torch.isnan(w), torch.isnan(g)) and torch.equal(
            torch.nan_to_num(w, nan=0.0), torch.nan_to_num(g, nan=0.0))
        if not same:
            differ = int((~((w == g) | (torch.isnan(w) & torch.isnan(g)))).sum())
            raise WrongAnswer(
                f"{name} on {title}: the interpreter stores different results before and after "
                f"your pass ({differ} of {w.numel()} elements of output {index} differ). A pass "
                "must not change what the kernel computes: replace only an integer x * 0 "
                "(either side) and an integer x - x (the very same value on both sides), "
                "and replace each by a zero of its type, not by x.\n"
                f"IR after your pass:\n{print_function(after)}"
            )
    for kind, what in (("zero_mul", "an integer x * 0 (or 0 * x)"),
                       ("self_sub", "an integer x - x")):
        if targets_after[kind]:
            op, nested = targets_after[kind][0]
            hint = (" A loop's body is a block of its own (op.regions): visit it too."
                    if nested else "")
            raise WrongAnswer(
                f"{name} on {title}: {what} is still there, {_where(nested)}: {op}.{hint} "
                "Look at the IR before your pass to see the op:\n"
                f"{print_function(before)}"
            )
    return case["zero_mul"], case["self_sub"]


def check_simplify_algebra(simplify_algebra) -> None:
    """``simplify_algebra(fn) -> fn``: integer ``x * 0`` and ``x - x`` become zeros."""
    name = "simplify_algebra"
    removed_mul = removed_sub = 0
    cases = _cases()
    for case in cases:
        mul, sub = _check_case(name, simplify_algebra, case)
        removed_mul, removed_sub = removed_mul + mul, removed_sub + sub
    passed(
        name,
        f"on {len(cases)} kernels the interpreter stores the same bits before and after your pass "
        f"(inf and NaN inputs included); it removed {removed_mul} integer x*0 and {removed_sub} "
        "x-x (one inside a loop) and kept the float x*0.0 and x-x",
    )
