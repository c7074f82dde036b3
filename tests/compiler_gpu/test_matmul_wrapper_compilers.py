"""The lesson's ``matmul`` wrapper runs either compiler: Triton or mini_compiler."""

from __future__ import annotations

import pytest
import torch

from .conftest import needs_gpu, needs_ptxas


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
    from course.env import configure

    if configure().device != "cpu":
        pytest.skip("where there is a GPU the course's wrappers take GPU tensors (the GPU tests "
                    "below); COURSE_DEVICE=cpu runs this one there")
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


@needs_ptxas
@pytest.mark.parametrize("transposed", [False, True])
def test_the_wrapper_s_gpu_tiles_assemble_without_spills(transposed):
    """The wrapper's GPU configurations (the fastest measured, cp.async in 3 stages) compile to
    PTX that ptxas assembles with no spills and no stack: 128x256 for row-major operands,
    128x128 where B is transposed (128x256 would spill there)."""
    from course.kernels.matmul import MINI_COMPILER_CONFIGS, matmul_kernel
    from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report

    config = dict(MINI_COMPILER_CONFIGS["gpu_transposed" if transposed else "gpu"])
    m = n = k = 4096
    a = torch.empty(m, k, dtype=torch.float16)
    b = torch.empty(n, k, dtype=torch.float16).t() if transposed else torch.empty(
        k, n, dtype=torch.float16)
    c = torch.empty(m, n, dtype=torch.float16)
    compiled = compile_for_gpu(matmul_kernel, a, b, c, m, n, k, a.stride(0), a.stride(1),
                               b.stride(0), b.stride(1), c.stride(0), c.stride(1),
                               ACTIVATION="leaky_relu", EVEN_K=True, **config)
    report = ptxas_report(compiled).kernel()
    assert report.spill_store_bytes == report.spill_load_bytes == 0, report
    assert report.stack_frame_bytes == 0, report
    assert "cp.async" in compiled.ptx and "mma.sync" in compiled.ptx
