"""GPU back end: kernels that once raised KeyError / ValueError / NotImplementedError while
compiling, and the CPU regressions' kernels, compiled to PTX and assembled by ptxas; on a GPU also
run against torch."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

import mini_compiler
from mini_compiler.backends import gpu

from .conftest import needs_gpu, needs_ptxas


@triton.jit
def copy_masked_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def shifted_read_kernel(x_ptr, y_ptr, n, d, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs + d < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs + d, mask=mask), mask=mask)


@triton.jit
def bf16_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    total = tl.sum(x.to(tl.float32), axis=0)
    tl.store(y_ptr + offs, x * 2 + total, mask=mask)


@triton.jit
def countdown_kernel(x_ptr, out_ptr, hi, lo, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), tl.float32)
    for i in range(hi, lo, -1):
        acc += tl.load(x_ptr + i * BLOCK + offs)
    tl.store(out_ptr + offs, acc)


DTYPES = [torch.int8, torch.uint8, torch.bool, torch.int16, torch.float16, torch.bfloat16]


def _data(dtype, n, device="cpu"):
    if dtype == torch.bool:
        return torch.rand(n, device=device) < 0.5
    if dtype.is_floating_point:
        return torch.randn(n, device=device).to(dtype)
    return torch.randint(0, 100, (n,), device=device).to(dtype)


@needs_ptxas
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_masked_loads_of_narrow_types_assemble(dtype):
    x = _data(dtype, 100)
    compiled = gpu.compile_for_gpu(copy_masked_kernel, x, torch.empty_like(x), 100, BLOCK=128)
    assert gpu.ptxas_report(compiled).kernel().spill_store_bytes == 0


@needs_ptxas
def test_runtime_shift_of_a_pointer_assembles():
    x = torch.randn(100)
    compiled = gpu.compile_for_gpu(shifted_read_kernel, x, torch.empty_like(x), 100, 3,
                                   BLOCK=128)
    gpu.ptxas_report(compiled).kernel()


@needs_ptxas
@pytest.mark.parametrize("kernel,args", [
    (bf16_kernel, lambda: (torch.randn(100).bfloat16(), torch.empty(100).bfloat16(), 100)),
    (countdown_kernel, lambda: (torch.randn(8 * 32), torch.empty(32), 7, 0)),
], ids=["bf16", "countdown"])
def test_more_kernels_assemble(kernel, args):
    compiled = gpu.compile_for_gpu(kernel, *args(), BLOCK=32 if kernel is countdown_kernel
                                   else 128)
    gpu.ptxas_report(compiled).kernel()


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_masked_copy_runs(dtype):
    n = 1000
    x = _data(dtype, n, "cuda")
    y = torch.zeros_like(x)
    mini_compiler.jit(copy_masked_kernel)[(triton.cdiv(n, 128),)](x, y, n, BLOCK=128)
    assert torch.equal(y, x)


@needs_gpu
def test_shift_and_bf16_and_countdown_run():
    n = 1000
    x = torch.randn(n, device="cuda")
    y = torch.full_like(x, float("nan"))
    mini_compiler.jit(shifted_read_kernel)[(triton.cdiv(n, 128),)](x, y, n, 3, BLOCK=128)
    torch.testing.assert_close(y[:n - 3], x[3:])
    xb = torch.randn(100, device="cuda").bfloat16()
    yb = torch.zeros_like(xb)
    mini_compiler.jit(bf16_kernel)[(1,)](xb, yb, 100, BLOCK=128)
    expected = (xb.float() * 2 + xb.float().sum()).bfloat16()
    torch.testing.assert_close(yb.float(), expected.float(), atol=0.1, rtol=0.02)
    xs = torch.randn(8 * 32, device="cuda")
    out = torch.zeros(32, device="cuda")
    mini_compiler.jit(countdown_kernel)[(1,)](xs, out, 7, 0, BLOCK=32)
    torch.testing.assert_close(out, xs.view(8, 32)[1:].sum(0))
