"""Interpret after every pass, GPU pipeline included: the IR after each common pass and after
each GPU pass (``tile.gpu.coalesce`` ... ``tile.gpu.insert_barriers``) runs in the reference
interpreter on CPU tensors and must give what the front end's IR gives. Layouts, vector widths,
layout conversions and barriers change how the GPU computes, never what."""

from __future__ import annotations

import copy

import pytest
import torch

from mini_compiler.backends.gpu.compiler import GpuOptions, gpu_passes
from mini_compiler.driver import interpret_with_runtime_args
from mini_compiler.frontend.codegen import build_tile_ir, kernel_source
from mini_compiler.passes.pipeline import PassManager
from mini_compiler.runtime.specialization import specialise

from . import kernels


def _cases():
    from course.kernels.matmul import matmul_kernel
    from course.kernels.softmax import softmax_kernel
    from course.kernels.vector_add import add_kernel

    x = torch.randn(1000)
    m = torch.randn(13, 100)
    h = torch.randn(30, 30).half()

    def matmul_case(dtype, m_, n_, k_, transposed, activation, even_k=False):
        a = torch.randn(m_, k_).to(dtype)
        b = (torch.randn(n_, k_).to(dtype).t() if transposed else torch.randn(k_, n_).to(dtype))
        c = torch.empty(m_, n_, dtype=dtype)
        grid = (triton_cdiv(m_, 64) * triton_cdiv(n_, 64),)
        return (matmul_kernel, grid, lambda: (a, b, c, m_, n_, k_, a.stride(0), a.stride(1),
                                              b.stride(0), b.stride(1), c.stride(0), c.stride(1)),
                {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_SIZE": 2,
                 "ACTIVATION": activation, "EVEN_K": even_k}, [2])

    return {
        "a @ trans(b)": (kernels.dot_transposed, (1,),
                         lambda: (h, h * 2, torch.empty(30, 30), 30), {"BLOCK": 64}, [2]),
        "lesson matmul fp16 ragged": matmul_case(torch.float16, 70, 100, 40, False, "leaky_relu"),
        "lesson matmul bf16 transposed B": matmul_case(torch.bfloat16, 65, 64, 64, True, None,
                                                       even_k=True),
        "lesson vector add": (add_kernel, (8,), lambda: (x, x * 2, torch.empty(1000), 1000),
                              {"BLOCK_SIZE": 128}, [2]),
        "lesson softmax": (softmax_kernel, (13,), lambda: (m, torch.empty(13, 100), 13, 100,
                                                           100, 100), {"BLOCK_SIZE": 128}, [1]),
        "row softmax": (kernels.row_softmax, (13,), lambda: (m, torch.empty(13, 100), 100, 100),
                        {"BLOCK": 128}, [1]),
        "sums both axes": (kernels.sum_rows_and_columns, (2,),
                           lambda: (m, torch.empty(13), torch.empty(2 * 100), 13, 100, 100),
                           {"BLOCK_M": 8, "BLOCK_N": 128}, [1, 2]),
        "looped row sums": (kernels.row_sums_looped, (13,),
                            lambda: (m, torch.empty(13), 100, 100), {"BLOCK": 32}, [1]),
    }


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _interpret(fn, spec, grid, outputs):
    for t in outputs:
        t.fill_(float("nan"))
    interpret_with_runtime_args(copy.deepcopy(fn), spec.runtime_args, grid)
    return [t.clone() for t in outputs]


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("num_warps", [1, 4])
def test_every_gpu_stage_computes_the_same(name, num_warps):
    kernel, grid, make_args, meta, output_positions = _cases()[name]
    args = make_args()
    outputs = [args[i] for i in output_positions]
    fn = getattr(kernel, "fn", kernel)
    spec = specialise(kernel_source(fn), args, meta)
    common = PassManager(record=False, snapshots=True)
    optimised = common.run(build_tile_ir(fn, spec.params))
    gpu = PassManager(gpu_passes(GpuOptions(num_warps=num_warps)), record=False, snapshots=True,
                      first_stage=None)
    gpu.run(copy.deepcopy(optimised))
    stages = common.snapshots + gpu.snapshots
    assert [n for n, _ in gpu.snapshots] == ["tile.gpu.pipeline_loads", "tile.gpu.coalesce",
                                             "tile.gpu.assign_layouts",
                                             "tile.gpu.allocate_shared_memory",
                                             "tile.gpu.insert_barriers"]
    reference = _interpret(stages[0][1], spec, grid, outputs)
    assert not any(r.isnan().all() for r in reference)
    for stage, fn_at_stage in stages[1:]:
        got = _interpret(fn_at_stage, spec, grid, outputs)
        for g, r in zip(got, reference, strict=True):
            torch.testing.assert_close(g, r, equal_nan=True, msg=lambda m, s=stage: f"{s}: {m}")
