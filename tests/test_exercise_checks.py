"""The exercise checks accept right answers and explain wrong ones (lesson 1)."""

import pytest
import triton
import triton.language as tl

from course import NotSolvedYet, WrongAnswer
from course.exercises import lesson01


@triton.jit
def axpy_right(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, a * x + y, mask=mask)


@triton.jit
def axpy_wrong_formula(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + a * y, mask=mask)


@triton.jit
def axpy_no_store_mask(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offsets)
    y = tl.load(y_ptr + offsets)
    tl.store(out_ptr + offsets, a * x + y)


@triton.jit
def axpy_stub(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    raise NotImplementedError()


@triton.jit
def reverse_off_by_one(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + (n_elements - offsets), mask=mask), mask=mask)


def test_axpy_accepts_a_right_answer(capsys):
    lesson01.check_axpy(axpy_right)
    assert "✓ axpy" in capsys.readouterr().out


def test_axpy_reports_a_wrong_formula():
    with pytest.raises(WrongAnswer, match="elements differ from the reference"):
        lesson01.check_axpy(axpy_wrong_formula)


def test_axpy_catches_writes_past_the_end():
    with pytest.raises(WrongAnswer, match="past the end of the output.*mask=offsets < n_elements"):
        lesson01.check_axpy(axpy_no_store_mask)


def test_unsolved_exercise_says_so():
    with pytest.raises(NotSolvedYet, match="axpy: not solved yet"):
        lesson01.check_axpy(axpy_stub)


def test_reverse_reports_an_off_by_one():
    with pytest.raises(WrongAnswer, match="reverse"):
        lesson01.check_reverse(reverse_off_by_one)


def test_grid_size_feedback():
    lesson01.check_grid_size(lambda n, b: (n + b - 1) // b)
    with pytest.raises(
        WrongAnswer, match=r"grid_size\(1025, 1024\) returned 1, but 2 programs are needed"
    ):
        lesson01.check_grid_size(lambda n, b: max(n // b, 1) if n else 0)
    with pytest.raises(WrongAnswer, match="return an int"):
        lesson01.check_grid_size(lambda n, b: n / b)
    with pytest.raises(WrongAnswer, match="your code raised an error:\nZeroDivisionError"):
        lesson01.check_grid_size(lambda n, b: n // 0)


def _c_floordiv(a, b):
    if b == 0:
        return None
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def test_fold_floordiv_accepts_c_semantics(capsys):
    lesson01.check_fold_floordiv(_c_floordiv)
    assert "✓ fold_floordiv" in capsys.readouterr().out


def test_fold_floordiv_explains_python_floor_division():
    with pytest.raises(WrongAnswer, match="Python's floor division, which rounds toward minus"):
        lesson01.check_fold_floordiv(lambda a, b: a // b if b else None)


def test_fold_floordiv_must_not_fold_division_by_zero():
    with pytest.raises(WrongAnswer, match="a division by zero must not be folded"):
        lesson01.check_fold_floordiv(lambda a, b: _c_floordiv(a, b) if b else 0)


def test_lower_abs_accepts_a_right_rule_and_rejects_a_wrong_one():
    from mini_compiler.backends.cpu.lowering import is_float

    def lower_abs(builder, operands):
        (x,) = operands
        if is_float(x):
            return builder.select(builder.fcmp_ordered("<", x, x.type(0.0)), builder.fneg(x), x)
        return builder.select(builder.icmp_signed("<", x, x.type(0)), builder.neg(x), x)

    lesson01.check_lower_abs(lower_abs)
    with pytest.raises(WrongAnswer, match="lower_abs on float32: .* elements differ"):
        lesson01.check_lower_abs(lambda builder, operands: operands[0])


def test_compiler_exercise_stub_is_reported_as_unsolved():
    def stub(*_):
        raise NotImplementedError()

    with pytest.raises(NotSolvedYet):
        lesson01.check_fold_floordiv(stub)
    with pytest.raises(NotSolvedYet):
        lesson01.check_lower_abs(stub)
