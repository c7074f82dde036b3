"""The lesson's ``matmul`` wrapper runs either compiler: Triton or mini_compiler."""

from __future__ import annotations

import pytest
import torch

from .conftest import needs_gpu


def _check(device, dtype, m, n, k, transposed):
    from course.kernels.matmul import matmul, tolerance

    a = torch.randn(m, k, device=device).to(dtype)
    b = (torch.randn(n, k, device=device).to(dtype).t() if transposed
         else torch.randn(k, n, device=device).to(dtype))
    c = matmul(a, b, "leaky_relu", compiler="mini_compiler")
    want = a.double() @ b.double()
    want = torch.where(want >= 0, want, 0.01 * want)
    rtol, atol = tolerance(dtype, k)
    torch.testing.assert_close(c.double(), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("m,n,k,transposed", [(100, 67, 93, False), (1, 77, 300, True)])
def test_mini_compiler_on_the_cpu(dtype, m, n, k, transposed):
    _check("cpu", dtype, m, n, k, transposed)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("m,n,k,transposed", [(1000, 1000, 1000, False), (4097, 513, 1031, True),
                                              (1, 77, 300, False)])
def test_mini_compiler_on_the_gpu(dtype, m, n, k, transposed):
    _check("cuda", dtype, m, n, k, transposed)


def test_an_unknown_compiler_is_refused():
    from course.kernels.matmul import matmul

    with pytest.raises(ValueError, match="not one of"):
        matmul(torch.ones(2, 2), torch.ones(2, 2), compiler="nvcc")
