"""On a GPU: lesson 3's ``matmul_kernel`` through mini_compiler matches a float64 product on
ragged shapes, transposed inputs, fp16 and bf16, with and without the epilogue."""

from __future__ import annotations

import pytest
import torch

import mini_compiler

from .conftest import needs_gpu

SHAPES = [(1000, 1000, 1000), (4097, 513, 1031), (1, 77, 300), (64, 64, 64)]

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages): no pipeline; the next tiles in registers;
# then the cp.async pipelines, rings of 3 or 4 slots in 96 to 144 KB of shared memory (beyond the
# 48 KB a kernel may declare statically: dynamic, given at launch)
CONFIGS = [(64, 64, 64, 4, 1), (128, 128, 64, 8, 2), (128, 128, 64, 8, 3), (128, 128, 64, 8, 4),
           (128, 256, 64, 8, 3)]


@needs_gpu
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("activation", [None, "leaky_relu"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
def test_lesson_matmul_on_tensor_cores(m, n, k, dtype, activation, transposed, config):
    from course.kernels.matmul import matmul_kernel, tolerance

    a = (torch.randn(k, m, device="cuda", dtype=dtype).t() if transposed
         else torch.randn(m, k, device="cuda", dtype=dtype))
    b = (torch.randn(n, k, device="cuda", dtype=dtype).t() if transposed
         else torch.randn(k, n, device="cuda", dtype=dtype))
    c = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
    bm, bn, bk, warps, stages = config
    grid = (-(-m // bm) * -(-n // bn),)
    mini_compiler.jit(matmul_kernel)[grid](
        a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
        c.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_SIZE=8, ACTIVATION=activation,
        EVEN_K=k % bk == 0, num_warps=warps, num_stages=stages)
    want = a.double() @ b.double()
    if activation:
        want = torch.where(want >= 0, want, 0.01 * want)
    rtol, atol = tolerance(dtype, k)
    torch.testing.assert_close(c.double(), want, rtol=rtol, atol=atol)
