"""Constructs Triton kernels commonly use, each checked against torch on the CPU back end and the
interpreter (fresh random inputs, sizes that are not a multiple of the block, poisoned outputs).
Which of them the GPU back end compiles is checked in ``tests/compiler_gpu/test_constructs_gpu.py``.
"""

import math

import pytest
import torch
import triton
import triton.language as tl

import mini_compiler

BACKENDS = [None, "interpreter"]


@triton.jit
def math_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, tl.sigmoid(x), mask=mask)
    tl.store(out_ptr + BLOCK + offs, tl.math.rsqrt(tl.abs(x) + 1), mask=mask)
    tl.store(out_ptr + 2 * BLOCK + offs, tl.math.erf(x), mask=mask)
    tl.store(out_ptr + 3 * BLOCK + offs, tl.clamp(x, -0.5, 0.5), mask=mask)
    tl.store(out_ptr + 4 * BLOCK + offs, tl.floor(x * 3) + tl.ceil(x * 2), mask=mask)
    tl.store(out_ptr + 5 * BLOCK + offs, x % 0.7, mask=mask)
    tl.store(out_ptr + 6 * BLOCK + offs, tl.where(True, x, 0.0), mask=mask)


@pytest.mark.parametrize("backend", BACKENDS)
def test_math_functions(backend):
    n, block = 50, 64
    x = torch.randn(n) * 2
    x[:3] = torch.tensor([0.0, 1e-3, -4.0])
    out = torch.full((7 * block,), float("nan"))
    mini_compiler.jit(math_kernel)[(1,)](x, out, n, BLOCK=block, backend=backend)
    parts = out.view(7, block)[:, :n]
    x64 = x.double()
    erf = torch.tensor([math.erf(v) for v in x64.tolist()], dtype=torch.float64)
    expected = [torch.sigmoid(x64), (x64.abs() + 1).rsqrt(), erf, x64.clamp(-0.5, 0.5),
                torch.floor(x * 3).double() + torch.ceil(x * 2).double(),
                torch.fmod(x, torch.tensor(0.7)).double(), x64]
    for got, want in zip(parts, expected, strict=True):
        torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-5)


@triton.jit
def reductions_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=-float("inf"))
    tl.store(out_ptr, tl.argmax(x, 0).to(tl.float32))
    value, index = tl.max(x, axis=0, return_indices=True)
    tl.store(out_ptr + 1, value)
    tl.store(out_ptr + 2, index.to(tl.float32))
    y = tl.where(mask, x, 0.0)
    tl.store(out_ptr + 3, tl.argmin(y, 0).to(tl.float32))
    tl.store(out_ptr + 4, tl.sum(mask, axis=0, dtype=tl.float32))
    rows = tl.broadcast_to(tl.expand_dims(y, 0), (4, BLOCK))
    tl.store(out_ptr + 5, tl.sum(tl.sum(rows, axis=1), axis=0))
    tl.store(out_ptr + 8 + offs, tl.cumsum(y, 0))
    pairs = tl.reshape(y, (BLOCK // 2, 2))
    tl.store(out_ptr + 8 + BLOCK + tl.arange(0, BLOCK // 2), tl.sum(pairs, axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_reductions_scans_and_shapes(backend):
    n, block = 45, 64
    x = torch.randn(n)
    x[7] = x.max() + 1  # one clear maximum
    out = torch.full((8 + block + block // 2,), float("nan"))
    mini_compiler.jit(reductions_kernel)[(1,)](x, out, n, BLOCK=block, backend=backend)
    y = torch.zeros(block)
    y[:n] = x
    assert out[0].item() == 7 and out[2].item() == 7
    assert out[1].item() == x.max().item()
    assert out[3].item() == y.argmin().item()
    assert out[4].item() == n
    torch.testing.assert_close(out[5], 4 * y.sum(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[8:8 + block], y.cumsum(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[8 + block:], y.view(-1, 2).sum(1))


@triton.jit
def early_return_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    if pid * BLOCK >= n:
        return
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 1, mask=mask)


@triton.jit
def larger(a, b):
    if a > b:
        return a
    return b


@triton.jit
def helper_return_kernel(x_ptr, out_ptr, scale, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs) * larger(scale, 2.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_return_and_returning_helpers(backend):
    n, block = 300, 64
    x = torch.randn(n)
    out = torch.full((8 * block,), float("nan"))
    mini_compiler.jit(early_return_kernel)[(8,)](x, out, n, BLOCK=block, backend=backend)
    torch.testing.assert_close(out[:n], x + 1)
    assert out[n:].isnan().all()  # programs past the end returned before storing
    for scale, factor in ((3.0, 3.0), (1.0, 2.0)):
        got = torch.full((block,), float("nan"))
        mini_compiler.jit(helper_return_kernel)[(1,)](x, got, scale, BLOCK=block,
                                                      backend=backend)
        torch.testing.assert_close(got, x[:block] * factor)


@triton.jit
def while_kernel(x_ptr, out_ptr, n, limit, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=1)
    steps = tl.zeros((BLOCK,), tl.int32)
    i = 0
    while i < limit:
        v = tl.where(v == 1, 1, tl.where(v % 2 == 1, 3 * v + 1, v // 2))
        steps += (v != 1).to(tl.int32)
        i += 1
    tl.store(out_ptr + offs, steps, mask=mask)


def collatz_steps(v: int, limit: int) -> int:
    steps = 0
    for _ in range(limit):
        v = 1 if v == 1 else (3 * v + 1 if v % 2 else v // 2)
        steps += v != 1
    return steps


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("limit", [0, 5, 30])
def test_while_loop(backend, limit):
    n = 50
    x = torch.randint(1, 40, (n,), dtype=torch.int32)
    out = torch.full((n,), -1, dtype=torch.int32)
    mini_compiler.jit(while_kernel)[(1,)](x, out, n, limit, BLOCK=64, backend=backend)
    assert out.tolist() == [collatz_steps(v, limit) for v in x.tolist()]


@triton.jit
def histogram_kernel(x_ptr, counts_ptr, n, BINS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    bins = tl.load(x_ptr + offs, mask=mask, other=0)
    tl.atomic_add(counts_ptr + bins, 1, mask=mask)
    tl.debug_barrier()


@pytest.mark.parametrize("backend", BACKENDS)
def test_atomic_add_counts_across_programs(backend):
    n, bins = 1000, 8
    x = torch.randint(0, bins, (n,), dtype=torch.int32)
    counts = torch.zeros(bins, dtype=torch.int32)
    mini_compiler.jit(histogram_kernel)[(triton.cdiv(n, 128),)](
        x, counts, n, BINS=bins, BLOCK=128, backend=backend)
    assert counts.tolist() == torch.bincount(x, minlength=bins).tolist()
