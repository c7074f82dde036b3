"""Lesson 1's kernel and wrapper: right on awkward sizes, clear about bad input."""

import pytest
import torch
import triton

import course
from course.kernels.vector_add import add_kernel, vector_add

DEVICE = course.configure().device


@pytest.mark.parametrize("n", [1, 7, 1024, 1025, 4097, 98_431])
@pytest.mark.parametrize("block", [64, 1024])
def test_kernel_writes_every_element(n, block):
    x, y = torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)
    out = course.empty_poisoned(n, device=DEVICE)
    add_kernel[(triton.cdiv(n, block),)](x, y, out, n, BLOCK_SIZE=block)
    course.check_close(out, x.double() + y.double(), quiet=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_wrapper_keeps_shape_and_dtype(dtype):
    x = torch.randn(3, 333, device=DEVICE).to(dtype)
    y = torch.randn(3, 333, device=DEVICE).to(dtype)
    out = vector_add(x, y)
    assert out.shape == x.shape and out.dtype == dtype
    course.check_close(out, x.double() + y.double(), quiet=True)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda a: (a, a.half()), TypeError, "x is torch.float32 but y is torch.float16"),
        (lambda a: (a, a[:5]), ValueError, r"x has shape \(8,\) but y has shape \(5,\)"),
        (lambda a: (torch.randn(16, device=a.device)[::2], a), ValueError, "x is not contiguous"),
        (lambda a: (a.int(), a.int()), TypeError, "x has dtype torch.int32; supported dtypes"),
        (lambda a: (a, [1.0] * 8), TypeError, "y must be a torch.Tensor, got list"),
    ],
    ids=["dtypes", "shapes", "non-contiguous", "integers", "not-a-tensor"],
)
def test_wrapper_rejects_bad_input(make, error, message):
    a = torch.randn(8, device=DEVICE)
    with pytest.raises(error, match=message):
        vector_add(*make(a))


def test_wrapper_rejects_tensors_on_another_device(monkeypatch):
    """On a GPU machine CPU tensors are refused; on a CPU machine, pretend the course uses a GPU."""
    from course import env

    if DEVICE == "cpu":
        monkeypatch.setattr(env, "_chosen", env.Environment("cuda", "pretend GPU", "test"))
    a = torch.randn(4)
    with pytest.raises(
        ValueError, match=r"x is on cpu, but this course runs its kernels on the GPU"
    ):
        vector_add(a, a)
