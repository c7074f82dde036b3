"""Lesson 4's backward kernels (dK/dV, and dQ; ``course/kernels/attention.py``, unchanged)
through mini_compiler's GPU pipeline: every GPU pass interpreted on ragged sizes against float64
autograd, the PTX assembled by ptxas, and (on a GPU) the compiled kernels against torch."""

from __future__ import annotations

import math

import pytest
import torch

from mini_compiler.backends import gpu
from mini_compiler.tools.gpu_stages import interpret_gpu_stages

from .conftest import needs_gpu, needs_ptxas


def _inputs(heads, n, d, dtype, causal, device="cpu"):
    """Q, K, V, dO; the forward's base-2 log-sum-exp and delta = rowsum(dO * O); and the
    float64 gradients (dQ, dK, dV) from autograd."""
    from course.kernels.attention import LOG2E

    torch.manual_seed(2)
    q, k, v, do = (torch.randn(heads, n, d, device=device, dtype=dtype) for _ in range(4))
    qd, kd, vd = (t.double().requires_grad_() for t in (q, k, v))
    s = qd @ kd.transpose(1, 2) / math.sqrt(d)
    if causal:
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=device).triu(1),
                          float("-inf"))
    o = torch.softmax(s, -1) @ vd
    grads = torch.autograd.grad(o, (qd, kd, vd), do.double())
    lse = (torch.logsumexp(s, -1) * LOG2E).float().detach()
    delta = (do.double() * o.detach()).sum(-1).float()
    return (q, k, v, do, lse, delta), grads


@pytest.mark.parametrize("num_stages", [2, 3])
@pytest.mark.parametrize("causal", [False, True])
def test_backward_kernels_interpret_to_the_gradients(causal, num_stages):
    from course.kernels.attention import (
        LOG2E,
        attention_bwd_dkdv_kernel,
        attention_bwd_dq_kernel,
    )

    heads, n, d = 2, 77, 32
    (q, k, v, do, lse, delta), (dq, dk, dv) = _inputs(heads, n, d, torch.float16, causal)
    scale = 1 / math.sqrt(d)
    out_k, out_v, out_q = (torch.empty(heads, n, d, dtype=torch.float16) for _ in range(3))
    options = dict(num_warps=2, num_stages=num_stages)
    stages = interpret_gpu_stages(
        attention_bwd_dkdv_kernel, (math.ceil(n / 32), heads),
        (q, k, v, do, lse, delta, out_k, out_v, n, scale, scale * LOG2E), [out_k, out_v],
        dict(HEAD_DIM=d, BLOCK_M=16, BLOCK_N=32, CAUSAL=causal, EVEN_N=False), **options)
    assert len(stages) == 6
    for stage, (got_k, got_v) in stages.items():
        for name, got, want in (("dK", got_k, dk), ("dV", got_v, dv)):
            error = (got.double() - want).abs().max().item()
            assert error < 1e-2, f"{name} after {stage}: max error {error}"
    stages = interpret_gpu_stages(
        attention_bwd_dq_kernel, (math.ceil(n / 32), heads),
        (q, k, v, do, lse, delta, out_q, n, scale, scale * LOG2E), [out_q],
        dict(HEAD_DIM=d, BLOCK_M=32, BLOCK_N=16, CAUSAL=causal, EVEN_N=False), **options)
    for stage, (got_q,) in stages.items():
        error = (got_q.double() - dq).abs().max().item()
        assert error < 1e-2, f"dQ after {stage}: max error {error}"


@needs_ptxas
@pytest.mark.parametrize("d", [64, 128])
def test_backward_kernels_assemble(d):
    """They assemble with tensor-core instructions; they still spill (see the README)."""
    from course.kernels.attention import attention_bwd_dkdv_kernel, attention_bwd_dq_kernel

    n = 4096
    x, rows = torch.empty(2 * n, d, dtype=torch.float16), torch.empty(2 * n)
    for kernel, args, tiles in (
            (attention_bwd_dkdv_kernel, (x,) * 4 + (rows, rows) + (x, x), (64, 128)),
            (attention_bwd_dq_kernel, (x,) * 4 + (rows, rows) + (x,), (128, 64))):
        compiled = gpu.compile_for_gpu(kernel, *args, n, 0.1, 0.1, HEAD_DIM=d,
                                       BLOCK_M=tiles[0], BLOCK_N=tiles[1], CAUSAL=True,
                                       EVEN_N=True, num_warps=8, num_stages=3)
        assert "mma.sync.aligned.m16n8k16" in compiled.ptx
        assert gpu.ptxas_report(compiled).kernel().registers > 0


@needs_gpu
@pytest.mark.parametrize("n", [1000, 4097])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_backward_on_gpu_matches_autograd(n, causal, d, dtype):
    from course.kernels.attention import (
        LOG2E,
        attention_bwd_dkdv_kernel,
        attention_bwd_dq_kernel,
    )

    heads = 2
    (q, k, v, do, lse, delta), (dq, dk, dv) = _inputs(heads, n, d, dtype, causal, "cuda")
    scale = 1 / math.sqrt(d)
    out_k, out_v, out_q = (torch.full((heads, n, d), float("nan"), device="cuda", dtype=dtype)
                           for _ in range(3))
    even = n % 128 == 0
    gpu.run_on_gpu(attention_bwd_dkdv_kernel, (math.ceil(n / 128), heads), q, k, v, do, lse,
                   delta, out_k, out_v, n, scale, scale * LOG2E, HEAD_DIM=d, BLOCK_M=64,
                   BLOCK_N=128, CAUSAL=causal, EVEN_N=even, num_warps=8, num_stages=3)
    gpu.run_on_gpu(attention_bwd_dq_kernel, (math.ceil(n / 128), heads), q, k, v, do, lse,
                   delta, out_q, n, scale, scale * LOG2E, HEAD_DIM=d, BLOCK_M=128,
                   BLOCK_N=64, CAUSAL=causal, EVEN_N=even, num_warps=8, num_stages=3)
    torch.cuda.synchronize()
    bound = 2e-2 if dtype == torch.float16 else 6e-2
    for name, got, want in (("dQ", out_q, dq), ("dK", out_k, dk), ("dV", out_v, dv)):
        error = (got.double() - want).abs().nan_to_num(1e9).max().item()
        assert error < bound, f"{name}: max error {error}"


_BUILDS: dict = {}


def _mini_compiler_backward():
    """One ``mini_compiler.jit`` of each backward kernel for the session: their compiled code
    must outlive every launch."""
    if "kernels" not in _BUILDS:
        import mini_compiler
        from course.kernels.attention import BACKWARD_KERNELS
        _BUILDS["kernels"] = tuple(mini_compiler.jit(k) for k in BACKWARD_KERNELS)
    return _BUILDS["kernels"]


def _wrapper_errors(device, n, d, dtype, causal, config):
    """``attention_backward(..., kernels=mini_compiler builds)`` against float64 autograd:
    the largest error of dQ, dK and dV. ``O`` is float64 attention rounded to ``dtype`` and
    ``lse`` its base-2 log-sum-exp, as the forward would give."""
    from course.kernels.attention import attention_backward, naive_attention

    (q, k, v, do, lse, _), grads = _inputs(2, n, d, dtype, causal, device)
    o = naive_attention(q.double(), k.double(), v.double(), causal).to(dtype)
    shape = (1, 2, n, d)
    got = attention_backward(do.reshape(shape), q.reshape(shape), k.reshape(shape),
                             v.reshape(shape), o.reshape(shape), lse.reshape(1, 2, n),
                             causal=causal, config=config, kernels=_mini_compiler_backward())
    return [(g.reshape(2, n, d).double() - e).abs().nan_to_num(1e9).max().item()
            for g, e in zip(got, grads, strict=True)]


@pytest.mark.parametrize("causal", [False, True])
def test_lesson_wrapper_runs_mini_compiler_backward_on_the_cpu(causal):
    """``attention_backward(..., kernels=...)``: the lesson's three backward kernels compiled to
    x86 by mini_compiler, through the lesson's own wrapper."""
    from course.env import configure

    if configure().device != "cpu":
        pytest.skip("where there is a GPU the course's wrappers take GPU tensors (the GPU tests "
                    "below); COURSE_DEVICE=cpu runs this one there")
    from course.kernels.attention import BwdConfig
    errors = _wrapper_errors("cpu", 77, 32, torch.float32, causal, BwdConfig(16, 32, 32, 16))
    assert max(errors) < 1e-4, errors


@needs_gpu
@pytest.mark.parametrize("n", [1000, 4097])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
def test_lesson_wrapper_runs_mini_compiler_backward_on_the_gpu(n, causal, d):
    from course.kernels.attention import BwdConfig
    errors = _wrapper_errors("cuda", n, d, torch.float16, causal,
                             BwdConfig(64, 128, 128, 64, 8, 3))
    assert max(errors) < 2e-2, errors


def test_a_wrong_number_of_backward_builds_is_refused():
    from course.kernels.attention import attention_backward

    x = torch.randn(1, 1, 16, 16)
    with pytest.raises(ValueError, match="kernels must be 3 builds, of the delta, dK/dV and dQ"):
        attention_backward(x, x, x, x, x, torch.zeros(1, 1, 16),
                           kernels=_mini_compiler_backward()[1:])
