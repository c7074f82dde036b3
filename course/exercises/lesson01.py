"""Checks for lesson 1's exercises: a fused ``a * x + y``, a reversed copy, and the grid size.

Each check launches the learner's kernel itself, on fresh random data, with lengths that are and
are not multiples of the block. Outputs are poisoned with NaN, and every input and output tensor is
a slice of a longer buffer whose tail holds a sentinel value: a kernel without a correct mask then
neither crashes nor goes unnoticed, because its stray writes change the sentinel.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close, poison
from ..env import configure
from . import learner_code, passed, reads_stay_inside

SENTINEL = 12345.0
GUARD = 4096  # elements of padding after each tensor: more than any block the checks use
READ_CHECKS = ((13, 64), (1000, 64), (1000, 1024))  # (n, BLOCK_SIZE) run with bounds checks


def _lengths() -> list[int]:
    return [1, 13, 1000, 4097] if configure().interpreted else [1, 13, 1000, 4097, 1_000_003]


def _guarded(n: int, *, fill: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A length-``n`` view of a buffer with ``GUARD`` sentinel elements after it."""
    buffer = torch.full((n + GUARD,), SENTINEL, device=device)
    view = buffer[:n]
    if fill == "random":
        view.normal_()
    else:
        view.fill_(float("nan"))
    return view, buffer


def _check_guard(exercise: str, buffer: torch.Tensor, n: int, block: int) -> None:
    tail = buffer[n:]
    stray = (tail != SENTINEL).nonzero().flatten()
    if len(stray):
        raise WrongAnswer(
            f"{exercise}: with n={n} and BLOCK_SIZE={block} your kernel wrote {len(stray)} "
            f"element(s) past the end of the output (first at offset {n + int(stray[0])}). "
            "On a GPU that corrupts other memory or faults. Store with mask=offsets < n_elements."
        )


def check_axpy(axpy_kernel) -> None:
    """``axpy_kernel(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE)`` must write ``a*x + y``."""
    import triton

    name = "axpy"
    device = configure().device
    lengths = _lengths()
    for n, block in READ_CHECKS:  # first, on the CPU: a stray read can fault a GPU
        reads_stay_inside(name, axpy_kernel, (triton.cdiv(n, block),), 0.5, torch.randn(n),
                          torch.randn(n), torch.empty(n), n, BLOCK_SIZE=block, only_reads=True)
    for n in lengths:
        for block in (64, 1024):
            a = float(torch.randn(()).item())
            x, _ = _guarded(n, fill="random", device=device)
            y, _ = _guarded(n, fill="random", device=device)
            out, out_buffer = _guarded(n, fill="nan", device=device)
            with learner_code(name):
                axpy_kernel[(triton.cdiv(n, block),)](a, x, y, out, n, BLOCK_SIZE=block)
            _check_guard(name, out_buffer, n, block)
            expected = a * x.double() + y.double()
            check_close(
                out, expected, name=f"{name} (n={n}, BLOCK_SIZE={block}, a={a:.3f})", quiet=True
            )
    for n, block in READ_CHECKS:
        x, y, out = torch.randn(n), torch.randn(n), torch.empty(n)
        reads_stay_inside(name, axpy_kernel, (triton.cdiv(n, block),), 0.5, x, y, out, n,
                          BLOCK_SIZE=block)  # fmt: skip
    passed(
        name,
        f"a*x + y is right for n in {lengths}, with BLOCK_SIZE 64 and 1024; no load or store "
        "leaves its tensor",
    )


def check_reverse(reverse_kernel) -> None:
    """``reverse_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE)`` must write ``x`` back to front."""
    import triton

    name = "reverse"
    device = configure().device
    lengths = _lengths()
    for n, block in READ_CHECKS:  # first, on the CPU: a stray read can fault a GPU
        reads_stay_inside(name, reverse_kernel, (triton.cdiv(n, block),), torch.randn(n),
                          torch.empty(n), n, BLOCK_SIZE=block, only_reads=True)
    for n in lengths:
        for block in (64, 1024):
            x, _ = _guarded(n, fill="random", device=device)
            out, out_buffer = _guarded(n, fill="nan", device=device)
            with learner_code(name):
                reverse_kernel[(triton.cdiv(n, block),)](x, out, n, BLOCK_SIZE=block)
            _check_guard(name, out_buffer, n, block)
            check_close(
                out,
                x.flip(0),
                name=f"{name} (n={n}, BLOCK_SIZE={block})",
                rtol=0,
                atol=0,
                quiet=True,
            )
    for n, block in READ_CHECKS:
        x, out = torch.randn(n), torch.empty(n)
        reads_stay_inside(name, reverse_kernel, (triton.cdiv(n, block),), x, out, n,
                          BLOCK_SIZE=block)  # fmt: skip
    passed(
        name,
        f"the reversed copy is exact for n in {lengths}, with BLOCK_SIZE 64 and 1024; no load "
        "reads before the start of x or past its end",
    )


def check_grid_size(grid_size) -> None:
    """``grid_size(n_elements, block_size)`` must return how many programs cover the vector."""
    name = "grid_size"
    cases = [
        (1, 1024),
        (1024, 1024),
        (1025, 1024),
        (98_432, 1024),
        (4097, 64),
        (0, 64),
        (2**28, 4096),
    ]
    for n, block in cases:
        expected = -(-n // block)
        with learner_code(name):
            got = grid_size(n, block)
        if not isinstance(got, int):
            raise WrongAnswer(
                f"{name}({n}, {block}) returned {got!r} ({type(got).__name__}); return an int"
            )
        if got != expected:
            hint = (
                " Too few: the last, partial block has no program."
                if got < expected
                else " Too many."
            )
            raise WrongAnswer(
                f"{name}({n}, {block}) returned {got}, but {expected} programs are needed.{hint}"
            )
    passed(name, f"right for all {len(cases)} cases, including partial blocks and n=0")


# --- Compiler track, chapter 1 -------------------------------------------------------------------


def _compiler_kernels():
    """Small kernels written with mini_compiler's own language, for the compiler exercises."""
    import mini_compiler
    import mini_compiler.language as mtl

    @mini_compiler.jit
    def divide_by_constant(
        x_ptr, out_ptr, n, A: mtl.constexpr, B: mtl.constexpr, BLOCK: mtl.constexpr
    ):
        offsets = mtl.program_id(0) * BLOCK + mtl.arange(0, BLOCK)
        mask = offsets < n
        x = mtl.load(x_ptr + offsets, mask=mask)
        # A tile of A's divided by B: a tile op the machine would compute, unless it is folded.
        # (A // B on the constexprs themselves would be Python arithmetic, done by the front end.)
        divisor = mtl.full((BLOCK,), A, mtl.int32) // B
        mtl.store(out_ptr + offsets, x // divisor, mask=mask)

    @mini_compiler.jit
    def absolute(x_ptr, out_ptr, n, BLOCK: mtl.constexpr):
        offsets = mtl.program_id(0) * BLOCK + mtl.arange(0, BLOCK)
        mask = offsets < n
        mtl.store(out_ptr + offsets, mtl.abs(mtl.load(x_ptr + offsets, mask=mask)), mask=mask)

    return divide_by_constant, absolute


def _c_division(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def check_fold_floordiv(fold_floordiv) -> None:
    """``fold_floordiv(a, b)`` folds ``a // b`` of two integer constants the way the GPU divides."""
    import torch

    from mini_compiler.hooks import override

    name = "fold_floordiv"
    cases = [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, 3), (0, 5), (1, 7), (-1, 7), (2**31 - 1, 2)]
    for a, b in cases:
        with learner_code(name):
            got = fold_floordiv(a, b)
        if got != _c_division(a, b):
            hint = ""
            if got == a // b:
                hint = (
                    " That is Python's floor division, which rounds toward minus infinity; the "
                    "kernel's integer division (C's, and the GPU's) truncates toward zero."
                )
            expected = _c_division(a, b)
            raise WrongAnswer(f"{name}({a}, {b}) returned {got!r}, expected {expected}.{hint}")
    with learner_code(name):
        by_zero = fold_floordiv(5, 0)
    if by_zero is not None:
        raise WrongAnswer(
            f"{name}(5, 0) returned {by_zero!r}: a division by zero must not be folded. Return "
            "None, so the op stays in the program and behaves at run time as the hardware does."
        )

    divide, _ = _compiler_kernels()
    n = 1000
    x = torch.randint(-1000, 1000, (n,), dtype=torch.int32)
    for a, b in [(-7, 2), (9, 4), (20, -3)]:
        out = torch.full((n,), -(2**31) + 7, dtype=torch.int32)
        with override(folders={"tile.floordiv": fold_floordiv}):
            with learner_code(name):
                divide[(4,)](x, out, n, A=a, B=b, BLOCK=256)
                folded = divide.stages(x, out, n, A=a, B=b, BLOCK=256)["tile.dce"]
        divisor = _c_division(a, b)
        expected = torch.tensor([_c_division(int(v), divisor) for v in x], dtype=torch.int32)
        what = f"{name}: x // (full({a}) // {b}) in a compiled kernel"
        check_close(out, expected, name=what, quiet=True)
        if f"tile.full {divisor} : tile<256xi32>" not in folded:
            raise WrongAnswer(
                f"{name}: after constant folding, the kernel should divide by the constant "
                f"{divisor}, but the IR does not contain it:\n{folded}"
            )
    passed(
        name,
        f"{len(cases) + 1} folds right (C semantics, no fold of x // 0), and kernels compiled "
        "with your rule divide by the folded constant correctly",
    )


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[1:3])[:300] if len(lines) > 1 else str(error)[:300]


def _takes_element_and_operand(rule) -> bool:
    """Whether ``rule`` can be called as ``rule(builder, element, x)``."""
    import inspect

    try:
        inspect.signature(rule).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        return True
    return True


def check_lower_abs(lower_abs) -> None:
    """``lower_abs(builder, element, x)`` emits LLVM IR for ``|x|`` on floats, signed and
    unsigned integers."""
    import torch

    from mini_compiler.hooks import override

    name = "lower_abs"
    if not _takes_element_and_operand(lower_abs):
        raise WrongAnswer(
            f"{name}: a lowering rule is called as lower_abs(builder, element, x): the builder, "
            "the element type the op computes in (element.is_float, element.is_signed) and the "
            "operand's llvmlite value. Give your function these three parameters."
        )
    _, absolute = _compiler_kernels()
    n = 777
    inputs = {
        "float32": torch.randn(n) * 100,
        "int32": torch.randint(-(2**20), 2**20, (n,), dtype=torch.int32),
        "uint8": torch.randint(0, 256, (n,), dtype=torch.uint8),
    }
    for dtype, x in inputs.items():
        # Every uint8 value is some element's right answer: fill with 255 - x, wrong everywhere.
        out = torch.bitwise_not(x) if dtype == "uint8" else poison(x.clone())
        with override(lowering={"tile.abs": lower_abs}):
            try:
                with learner_code(name):
                    absolute[(4,)](x, out, n, BLOCK=256)
            except WrongAnswer as error:
                if "LLVM IR" not in str(error) and "llvm" not in str(error).lower():
                    raise
                raise WrongAnswer(
                    f"{name}: for {dtype} tiles your rule built LLVM IR that LLVM rejects. "
                    "Each instruction works on one kind of value: fcmp and fneg on floats only, "
                    "icmp and neg (sub from 0) on integers only. Test element.is_float and emit "
                    f"the integer form for integers.\n(LLVM said: {_first_line(error)})"
                ) from None
        expected = x if dtype == "uint8" else x.abs()
        if dtype == "uint8" and not torch.equal(out, expected):
            differ = (out != expected).nonzero().flatten()
            first = int(differ[0])
            raise WrongAnswer(
                f"{name} on uint8: {len(differ)} of {n} elements differ (|{int(x[first])}| "
                f"gave {int(out[first])}). An unsigned "
                "integer is never negative: a signed compare reads its top bit as a sign. When "
                "element.is_signed is False, |x| is x itself."
            )
        check_close(out, expected, name=f"{name} on {dtype}", rtol=0, atol=0, quiet=True)
    passed(name, "a kernel compiled with your lowering computes |x| exactly on float32, int32 "
           "and uint8")
