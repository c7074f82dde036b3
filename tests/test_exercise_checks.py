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
