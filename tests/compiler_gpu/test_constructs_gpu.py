"""The constructs of ``tests/compiler/test_constructs.py`` on the GPU back end: those it supports
assemble with ptxas (and, on a GPU, give torch's results); the rest are a CompilationError that
points at the source line."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

import mini_compiler
from mini_compiler.backends import gpu

from .conftest import needs_gpu, needs_ptxas

_path = Path(__file__).parents[1] / "compiler" / "test_constructs.py"
_spec = importlib.util.spec_from_file_location("compiler_constructs", _path)
C = importlib.util.module_from_spec(_spec)
sys.modules["compiler_constructs"] = C
_spec.loader.exec_module(C)

I32 = torch.int32


def _cases():
    x = torch.randn(64)
    return {
        "math": (C.math_kernel, (x, torch.zeros(7 * 64), 50), {"BLOCK": 64}),
        "early_return": (C.early_return_kernel, (x, torch.zeros(64), 50), {"BLOCK": 64}),
        "helper_return": (C.helper_return_kernel, (x, torch.zeros(64), 2.0), {"BLOCK": 64}),
        "while": (C.while_kernel, (torch.ones(64, dtype=I32), torch.zeros(64, dtype=I32), 50, 3),
                  {"BLOCK": 64}),
    }


@needs_ptxas
@pytest.mark.parametrize("name", list(_cases()))
def test_supported_constructs_assemble(name):
    kernel, args, meta = _cases()[name]
    compiled = gpu.compile_for_gpu(kernel, *args, **meta)
    assert gpu.ptxas_report(compiled).kernel().spill_store_bytes == 0


@pytest.mark.parametrize("kernel,args,meta,source", [
    (C.reductions_kernel, lambda: (torch.zeros(64), torch.zeros(200), 45), {"BLOCK": 64},
     "tl.cumsum(y, 0)"),
    (C.histogram_kernel, lambda: (torch.zeros(64, dtype=I32), torch.zeros(8, dtype=I32), 50),
     {"BINS": 8, "BLOCK": 64}, "tl.atomic_add(counts_ptr + bins, 1, mask=mask)"),
], ids=["cumsum", "atomic_add"])
def test_unsupported_constructs_are_located_errors(kernel, args, meta, source):
    with pytest.raises(mini_compiler.CompilationError) as info:
        gpu.compile_for_gpu(kernel, *args(), **meta)
    text = str(info.value)
    assert "the GPU back end does not lower" in text
    assert source in text and "test_constructs.py:" in text


@needs_gpu
def test_constructs_run_on_the_gpu():
    n, block = 50, 64
    x = torch.randn(n, device="cuda") * 2
    out = torch.full((7 * block,), float("nan"), device="cuda")
    mini_compiler.jit(C.math_kernel)[(1,)](x, out, n, BLOCK=block)
    parts = out.view(7, block)[:, :n].double().cpu()
    x64 = x.double().cpu()
    erf = torch.tensor([math.erf(v) for v in x64.tolist()], dtype=torch.float64)
    expected = [torch.sigmoid(x64), (x64.abs() + 1).rsqrt(), erf, x64.clamp(-0.5, 0.5),
                (torch.floor(x * 3) + torch.ceil(x * 2)).double().cpu(),
                torch.fmod(x, 0.7).double().cpu(), x64]
    for got, want in zip(parts, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    y = torch.full((8 * block,), float("nan"), device="cuda")
    src = torch.randn(300, device="cuda")
    mini_compiler.jit(C.early_return_kernel)[(8,)](src, y, 300, BLOCK=block)
    torch.testing.assert_close(y[:300], src + 1)
    assert y[300:].isnan().all()
    v = torch.randint(1, 40, (n,), dtype=I32, device="cuda")
    steps = torch.full((n,), -1, dtype=I32, device="cuda")
    mini_compiler.jit(C.while_kernel)[(1,)](v, steps, n, 30, BLOCK=block)
    assert steps.tolist() == [C.collatz_steps(a, 30) for a in v.tolist()]
