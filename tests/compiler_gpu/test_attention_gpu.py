"""Lesson 4's flash-attention forward kernel (``course/kernels/attention.py``, unchanged) through
mini_compiler's GPU pipeline.

On the CPU: the IR after every GPU pass, run by the reference interpreter on ragged sizes (N not
a multiple of either tile), must match attention computed in float64; the row statistics must
be reduced in the accumulator's own layout (no trip through shared memory); the PTX must be
assembled by ptxas, without spills for the tiles listed in ``NO_SPILL``. On a GPU: the
compiled kernel against torch, ragged N, causal and not, D 64 and 128, fp16 and bf16."""

from __future__ import annotations

import math

import pytest
import torch

from mini_compiler.backends import gpu
from mini_compiler.tools.gpu_stages import interpret_gpu_stages

from .conftest import needs_gpu, needs_ptxas


def _kernel():
    from course.kernels.attention import LOG2E, attention_fwd_kernel
    return attention_fwd_kernel, LOG2E


def _reference(q, k, v, causal):
    d = q.shape[-1]
    s = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(d)
    if causal:
        n = q.shape[-2]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1),
                          float("-inf"))
    return torch.softmax(s, -1) @ v.double()


@pytest.mark.parametrize("num_stages", [2, 3])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n,d,dtype", [(77, 64, torch.float16), (40, 32, torch.bfloat16)])
def test_every_gpu_pass_interprets_to_attention(n, d, dtype, causal, num_stages):
    """With ``num_stages = 3`` K and V flow through ``cp.async`` rings (K read transposed in
    place); the interpreter keeps the rings in simulated shared memory at their offsets."""
    kernel, log2e = _kernel()
    torch.manual_seed(0)
    heads, block_m, block_n = 2, 32, 16
    q, k, v = (torch.randn(heads, n, d).to(dtype) for _ in range(3))
    out, lse = torch.empty_like(q), torch.empty(heads, n)
    stages = interpret_gpu_stages(
        kernel, (math.ceil(n / block_m), heads), (q, k, v, out, lse, n, log2e / math.sqrt(d)),
        [out, lse], dict(HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n, CAUSAL=causal,
                         EVEN_N=False), num_warps=2, num_stages=num_stages)
    expected = _reference(q, k, v, causal)
    assert "tile.gpu.insert_barriers" in stages and len(stages) == 6
    tolerance = 1e-2 if dtype == torch.float16 else 4e-2
    for stage, (o, _) in stages.items():
        error = (o.double() - expected).abs().max().item()
        assert error < tolerance, f"{stage}: max error {error}"


def _compile(d, block_m, block_n, num_warps, causal, n=4096, num_stages=2):
    kernel, _ = _kernel()
    q = torch.empty(2 * n, d, dtype=torch.float16)
    return gpu.compile_for_gpu(kernel, q, q, q, q, torch.empty(2 * n), n, 0.1, HEAD_DIM=d,
                               BLOCK_M=block_m, BLOCK_N=block_n, CAUSAL=causal, EVEN_N=True,
                               num_warps=num_warps, num_stages=num_stages)


def _loop_body(ir: str) -> list[str]:
    lines = ir.splitlines()
    start = next(i for i, line in enumerate(lines) if "tile.for" in line)
    end = next(i for i in range(start, len(lines)) if "tile.yield" in lines[i])
    return lines[start:end]


@pytest.mark.parametrize("causal", [False, True])
def test_the_loop_keeps_statistics_and_p_in_registers(causal):
    """Row max and sum are reduced in the accumulator's layout; P reaches the second dot in
    registers; every layout change inside the K/V loop is a renumbering of registers. Inside
    the loop shared memory is written with K^T and V only: Q is written once, before it."""
    ir = _compile(64, 128, 64, 8, causal).asm["tile.gpu.allocate_shared_memory"]
    body = _loop_body(ir)
    before = ir[:ir.index("tile.for")]
    assert before.count("gpu.local_alloc") == 1  # Q, shared by both loops of the causal split
    reductions = [line for line in body if "tile.reduce" in line]
    assert len(reductions) == 2 and all("parent=#mma" in r for r in reductions), reductions
    converts = [line for line in body if "gpu.convert_layout" in line]
    assert converts and all("in_registers = true" in c for c in converts), converts
    assert any("#dot_op<a" in c for c in converts), converts
    allocs = [line for line in body if "gpu.local_alloc" in line]
    assert len(allocs) == 2, allocs  # K^T and V; not P, not Q
    dots = [line for line in body if "tile.dot" in line]
    assert len(dots) == 2 and all("wpb=[8, 1]" in d for d in dots), dots


# (HEAD_DIM, BLOCK_M, BLOCK_N, num_warps, CAUSAL) that ptxas assembles without spills
NO_SPILL = [(64, 64, 64, 4, False), (64, 64, 64, 4, True), (64, 128, 64, 8, False),
            (64, 128, 64, 8, True), (128, 128, 64, 8, False)]


@needs_ptxas
@pytest.mark.parametrize("d,block_m,block_n,num_warps,causal", NO_SPILL)
def test_ptx_assembles_without_spills(d, block_m, block_n, num_warps, causal):
    compiled = _compile(d, block_m, block_n, num_warps, causal)
    assert "mma.sync.aligned.m16n8k16" in compiled.ptx
    report = gpu.ptxas_report(compiled).kernel()
    assert report.spill_store_bytes == 0 and report.spill_load_bytes == 0, report


# with num_stages = 3: K and V through cp.async rings in dynamic shared memory
NO_SPILL_ASYNC = [(64, 128, 64, 8, False), (64, 128, 64, 8, True), (128, 128, 64, 8, False),
                  (128, 128, 64, 8, True)]


@needs_ptxas
@pytest.mark.parametrize("d,block_m,block_n,num_warps,causal", NO_SPILL_ASYNC)
def test_cp_async_pipeline_assembles_without_spills(d, block_m, block_n, num_warps, causal):
    compiled = _compile(d, block_m, block_n, num_warps, causal, num_stages=3)
    assert "cp.async" in compiled.ptx and "ldmatrix" in compiled.ptx
    # Q once, and three slots of K and of V
    assert compiled.dynamic_shared_bytes == 2 * block_m * d + 2 * 3 * 2 * block_n * d
    report = gpu.ptxas_report(compiled).kernel()
    assert report.spill_store_bytes == 0 and report.spill_load_bytes == 0, report


@needs_ptxas
def test_causal_head_dim_128_assembles():
    """Causal D = 128 at 128x64 on 8 warps assembles; ptxas reports 24 bytes of spills (the causal
    split's two loops keep more state live than one); the bound catches a regression."""
    report = gpu.ptxas_report(_compile(128, 128, 64, 8, True)).kernel()
    assert report.registers <= 255 and report.spill_store_bytes < 256, report


GPU_CONFIGS = {64: (128, 64, 8), 128: (128, 64, 8)}


@needs_gpu
@pytest.mark.parametrize("n", [1000, 4097])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_forward_on_gpu_matches_torch(n, causal, d, dtype):
    kernel, log2e = _kernel()
    torch.manual_seed(0)
    heads = 4
    block_m, block_n, num_warps = GPU_CONFIGS[d]
    q, k, v = (torch.randn(heads, n, d, device="cuda", dtype=dtype) for _ in range(3))
    out = torch.full_like(q, float("nan"))
    lse = torch.full((heads, n), float("nan"), device="cuda")
    gpu.run_on_gpu(kernel, (math.ceil(n / block_m), heads), q, k, v, out, lse, n,
                   log2e / math.sqrt(d), HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n,
                   CAUSAL=causal, EVEN_N=n % block_m == 0 and n % block_n == 0,
                   num_warps=num_warps)
    torch.cuda.synchronize()
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), is_causal=causal)
    tolerance = 1e-2 if dtype == torch.float16 else 3e-2
    torch.testing.assert_close(out.float(), expected, atol=tolerance, rtol=tolerance)


_COMPILED: dict = {}


def _mini_compiler_kernel():
    """One ``mini_compiler.jit`` of the kernel for the whole session, as a program would keep
    it (its compiled code must outlive every launch)."""
    if "kernel" not in _COMPILED:
        import mini_compiler
        from course.kernels.attention import attention_fwd_kernel
        _COMPILED["kernel"] = mini_compiler.jit(attention_fwd_kernel)
    return _COMPILED["kernel"]


def _wrapper_run(device, n, d, dtype, causal, config):
    from course.kernels.attention import attention_forward

    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, n, d, device=device, dtype=dtype) for _ in range(3))
    out, lse = attention_forward(q, k, v, causal=causal, config=config,
                                 kernel=_mini_compiler_kernel())
    expected = _reference(q.reshape(6, n, d), k.reshape(6, n, d), v.reshape(6, n, d), causal)
    return (out.reshape(6, n, d).double() - expected).abs().max().item(), lse


@pytest.mark.parametrize("causal", [False, True])
def test_lesson_wrapper_runs_mini_compiler_on_the_cpu(causal):
    """``attention_forward(..., kernel=mini_compiler.jit(attention_fwd_kernel))``: the same
    kernel, compiled to x86 by mini_compiler, through the lesson's wrapper."""
    from course.env import configure

    if configure().device != "cpu":
        pytest.skip("where there is a GPU the course's wrappers take GPU tensors (the GPU tests "
                    "below); COURSE_DEVICE=cpu runs this one there")
    from course.kernels.attention import FwdConfig
    error, lse = _wrapper_run("cpu", 77, 64, torch.float32, causal, FwdConfig(64, 32))
    assert error < 1e-4 and torch.isfinite(lse).all()


@needs_gpu
@pytest.mark.parametrize("n", [1000, 4097])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lesson_wrapper_runs_mini_compiler_on_the_gpu(n, causal, d, dtype):
    from course.kernels.attention import FwdConfig
    block_m, block_n, num_warps = GPU_CONFIGS[d]
    for num_stages in (2, 3):
        error, lse = _wrapper_run("cuda", n, d, dtype, causal,
                                  FwdConfig(block_m, block_n, num_warps, num_stages))
        assert error < (1e-2 if dtype == torch.float16 else 3e-2), (num_stages, error)
        assert torch.isfinite(lse).all()


@pytest.mark.parametrize("block_n,d", [(16, 64), (64, 64), (64, 128)])
def test_transposed_view_of_a_ring_slot_is_the_same_bytes(block_n, d):
    """K lands in its ring slot as a (BLOCK_N, D) row-major tile; Q K^T reads it as the
    (D, BLOCK_N) tile K^T through a shared layout with the order swapped
    (``dot.lower_trans``): every element must be found at the byte it was written to."""
    from mini_compiler.passes.gpu.mma_layouts import SharedLayout, swizzle
    slot = SharedLayout((1, 0), 8, swizzle)
    view = SharedLayout((0, 1), 8, swizzle)
    offsets = {view.element_offset((d, block_n), (j, i)) for i in range(block_n)
               for j in range(d)}
    assert len(offsets) == block_n * d
    for i in range(block_n):
        for j in range(d):
            assert (view.element_offset((d, block_n), (j, i))
                    == slot.element_offset((block_n, d), (i, j)))
