"""Lesson 2's kernels and wrapper: right on awkward shapes and dtypes, clear about bad input."""

import pytest
import torch
import triton
import triton.language as tl

import course
from course.kernels.softmax import (
    block_size_for,
    naive_softmax,
    num_warps_for,
    online_softmax_kernel,
    softmax,
    softmax_kernel,
)

DEVICE = course.configure().device
TOLERANCE = {
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-3),
    torch.bfloat16: (1.6e-2, 1e-2),
}


def reference(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.double(), dim=-1)


@pytest.mark.parametrize("n_rows, n_cols", [(1, 1), (5, 7), (33, 100), (17, 781), (4, 1024)])
@pytest.mark.parametrize("programs", [None, 3])
def test_one_block_kernel_writes_every_row(n_rows, n_cols, programs):
    x = 4 * torch.randn(n_rows, n_cols, device=DEVICE)
    out = course.empty_poisoned(n_rows, n_cols, device=DEVICE)
    grid = (n_rows if programs is None else min(programs, n_rows),)
    block = block_size_for(n_cols)
    softmax_kernel[grid](x, out, n_rows, n_cols, x.stride(0), out.stride(0), BLOCK_SIZE=block)
    course.check_close(out, reference(x), quiet=True)


@pytest.mark.parametrize(
    "n_cols, block", [(1, 16), (100, 16), (1000, 128), (3000, 1024), (4096, 1024)]
)
def test_online_kernel_matches_for_rows_longer_than_its_block(n_cols, block):
    x = 4 * torch.randn(6, n_cols, device=DEVICE)
    x[0, -1] = 50.0  # the maximum arrives in the last tile: the running sum must be rescaled
    out = course.empty_poisoned(6, n_cols, device=DEVICE)
    online_softmax_kernel[(6,)](x, out, n_cols, x.stride(0), out.stride(0), BLOCK_SIZE=block)
    course.check_close(out, reference(x), quiet=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "shape, max_block", [((3, 5, 100), None), ((7, 781), None), ((4, 1500), None), ((3, 700), 256)]
)
def test_wrapper_any_leading_shape_and_dtype(dtype, shape, max_block):
    x = (3 * torch.randn(shape, device=DEVICE)).to(dtype)
    out = softmax(x, max_block=max_block)
    assert out.shape == x.shape and out.dtype == dtype
    rtol, atol = TOLERANCE[dtype]
    course.check_close(out, reference(x), rtol=rtol, atol=atol, quiet=True)


def test_wrapper_falls_back_to_the_online_kernel_on_long_rows():
    # On the CPU the one-block limit is 1024 elements; force the fallback explicitly on a GPU too.
    x = torch.randn(3, 2500, device=DEVICE)
    course.check_close(softmax(x, max_block=1024), reference(x), quiet=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x[:, 3:400],
        lambda x: x[::2],
        lambda x: x.t(),
        lambda x: x.unsqueeze(0).expand(2, -1, -1),
    ],
    ids=["column-slice", "every-other-row", "transposed", "broadcast"],
)
def test_wrapper_accepts_strided_views(make):
    view = make(torch.randn(64, 512, device=DEVICE))
    course.check_close(softmax(view), reference(view), quiet=True)


def test_large_inputs_stay_finite():
    x = torch.tensor([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4]], device=DEVICE)
    course.check_close(softmax(x), reference(x), quiet=True)
    course.check_close(softmax(x, max_block=1), reference(x), quiet=True)


def test_naive_softmax_agrees():
    x = torch.randn(9, 33, device=DEVICE)
    course.check_close(naive_softmax(x), reference(x), quiet=True)


def test_launch_choices():
    assert [block_size_for(n) for n in (1, 781, 1024, 1025)] == [1, 1024, 1024, 2048]
    assert all(
        1 <= num_warps_for(triton.next_power_of_2(n)) <= 32 for n in (1, 64, 4096, 16384, 65536)
    )


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: torch.randn(4, 8, device=DEVICE).int(),
            TypeError,
            "x has dtype torch.int32; supported dtypes",
        ),
        (lambda: torch.randn(4, 8, device=DEVICE).double(), TypeError, "x has dtype torch.float64"),
        (lambda: torch.randn(0, 8, device=DEVICE), ValueError, r"x is empty \(shape \(0, 8\)\)"),
        (lambda: torch.randn(4, 0, device=DEVICE), ValueError, "x is empty"),
        (lambda: torch.tensor(1.0, device=DEVICE), ValueError, "0-d tensor"),
        (lambda: [[1.0, 2.0]], TypeError, "x must be a torch.Tensor, got list"),
    ],
    ids=["integers", "float64", "no-rows", "no-columns", "scalar", "not-a-tensor"],
)
def test_wrapper_rejects_bad_input(make, error, message):
    with pytest.raises(error, match=message):
        softmax(make())


def test_wrapper_rejects_tensors_on_another_device(monkeypatch):
    """On a GPU machine CPU tensors are refused; on a CPU machine, pretend the course uses a GPU."""
    from course import env

    if DEVICE == "cpu":
        monkeypatch.setattr(env, "_chosen", env.Environment("cuda", "pretend GPU", "test"))
    with pytest.raises(
        ValueError, match=r"x is on cpu, but this course runs its kernels on the GPU"
    ):
        softmax(torch.randn(2, 3))


# ---- lesson 2's exercise checks and widget -------------------------------------------------


@triton.jit
def _log_softmax_right(x_ptr, out_ptr, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    shifted = x - tl.max(x, axis=0)
    tl.store(
        out_ptr + row * n_cols + cols, shifted - tl.log(tl.sum(tl.exp(shifted), axis=0)), mask=mask
    )


@triton.jit
def _log_softmax_unstable(x_ptr, out_ptr, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    tl.store(out_ptr + row * n_cols + cols, x - tl.log(tl.sum(tl.exp(x), axis=0)), mask=mask)


@triton.jit
def _log_softmax_stub(x_ptr, out_ptr, n_cols, BLOCK_SIZE: tl.constexpr):
    raise NotImplementedError()


@triton.jit
def _strided_softmax_ignores_column_stride(
    x_ptr, out_ptr, n_cols, x_row_stride, x_col_stride, out_row_stride, BLOCK_SIZE: tl.constexpr
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
    num = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * out_row_stride + cols, num / tl.sum(num, axis=0), mask=mask)


def test_log_softmax_check_accepts_a_right_answer(capsys):
    from course.exercises import lesson02

    lesson02.check_log_softmax(_log_softmax_right)
    assert "✓ log_softmax" in capsys.readouterr().out


def test_log_softmax_check_catches_the_unstable_formula():
    from course.exercises import lesson02

    with pytest.raises(course.WrongAnswer, match="infinite|differ|never written"):
        lesson02.check_log_softmax(_log_softmax_unstable)


def test_log_softmax_check_reports_a_stub():
    from course.exercises import lesson02

    with pytest.raises(course.NotSolvedYet, match="not solved yet"):
        lesson02.check_log_softmax(_log_softmax_stub)


def test_strided_check_catches_a_kernel_that_assumes_unit_column_stride():
    from course.exercises import lesson02

    with pytest.raises(course.WrongAnswer, match="strided_softmax"):
        lesson02.check_strided_softmax(_strided_softmax_ignores_column_stride)


def test_online_softmax_widget_state_matches_the_definition():
    import math

    from course.widgets.online_softmax import (
        EXAMPLE_ROW,
        online_softmax_html,
        online_softmax_view,
        online_steps,
    )

    last = online_steps(EXAMPLE_ROW)[-1]
    assert last.m == max(EXAMPLE_ROW)
    assert math.isclose(last.d, sum(math.exp(v - last.m) for v in EXAMPLE_ROW))
    assert "The maximum rose" in online_softmax_html(EXAMPLE_ROW, 4)
    assert online_softmax_view().children  # builds without a running kernel
