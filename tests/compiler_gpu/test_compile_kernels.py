"""CI without a GPU: the course's kernels and ours compile to PTX for sm_90, the PTX is free of
unresolved intrinsics, ptxas assembles it, and nothing spills to local memory."""

from __future__ import annotations

import pytest
import torch

from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report
from mini_compiler.backends.gpu.lint import lint_ptx
from mini_compiler.errors import CompilationError

from . import kernels
from .conftest import needs_ptxas


def _vector_add():
    from course.kernels.vector_add import add_kernel

    x = torch.empty(1 << 20)
    return add_kernel, (x, x, x, 1 << 20), {"BLOCK_SIZE": 1024}


def _course_softmax(n_cols, num_warps):
    def build():
        from course.kernels.softmax import softmax_kernel

        x = torch.empty(4, n_cols)
        return softmax_kernel, (x, x, 4, n_cols, n_cols, n_cols), {
            "BLOCK_SIZE": n_cols, "num_warps": num_warps}
    return build


def _row_softmax(n_cols, num_warps):
    def build():
        x = torch.empty(4, n_cols)
        return kernels.row_softmax, (x, x, n_cols, n_cols), {"BLOCK": n_cols,
                                                             "num_warps": num_warps}
    return build


def _sum_rows_and_columns():
    x = torch.empty(64, 128)
    return kernels.sum_rows_and_columns, (x, x[0], x[0], 64, 128, 128), {
        "BLOCK_M": 16, "BLOCK_N": 128, "num_warps": 4}


def _scale_rows_2d():
    x = torch.empty(64, 256)
    return kernels.scale_rows_2d, (x, x[0], x[0], x, 64, 256, 256), {
        "BLOCK_M": 16, "BLOCK_N": 64, "num_warps": 4}


def _gelu_like():
    x = torch.empty(4096)
    return kernels.gelu_like, (x, x, 4096), {"BLOCK": 1024, "num_warps": 4}


def _row_sums_plus_vector():
    x = torch.empty(64, 128)
    return kernels.row_sums_plus_vector, (x, x[0], x[0], 64, 128), {
        "BLOCK_M": 16, "BLOCK_N": 128, "num_warps": 4}


def _online_softmax():
    from course.kernels.softmax import online_softmax_kernel

    x = torch.empty(4, 20000)
    return online_softmax_kernel, (x, x, 20000, 20000, 20000), {
        "BLOCK_SIZE": 4096, "num_warps": 16}


def _row_sums_looped():
    x = torch.empty(4, 5000)
    return kernels.row_sums_looped, (x, x[0], 5000, 5000), {"BLOCK": 1024, "num_warps": 4}


CASES = {
    "course_online_softmax": _online_softmax,
    "row_sums_looped": _row_sums_looped,
    "row_sums_plus_vector": _row_sums_plus_vector,
    "vector_add": _vector_add,
    "course_softmax_1024_w4": _course_softmax(1024, 4),
    "course_softmax_4096_w16": _course_softmax(4096, 16),
    "course_softmax_16384_w16": _course_softmax(16384, 16),
    "row_softmax_1024_w4": _row_softmax(1024, 4),
    "row_softmax_16384_w16": _row_softmax(16384, 16),
    "sum_rows_and_columns": _sum_rows_and_columns,
    "scale_rows_2d": _scale_rows_2d,
    "gelu_like": _gelu_like,
}


def compile_case(name):
    kernel, args, options = CASES[name]()
    return compile_for_gpu(kernel, *args, **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_ptx_is_generated_and_clean(name):
    compiled = compile_case(name)
    assert f".entry {compiled.name}" in compiled.ptx
    assert ".target sm_90" in compiled.ptx
    assert lint_ptx(compiled.ptx) == []
    assert ".extern .func" not in compiled.ptx
    assert "layout = " in compiled.asm["tile.gpu"]


@needs_ptxas
@pytest.mark.parametrize("name", sorted(CASES))
def test_ptxas_assembles_without_spills(name):
    compiled = compile_case(name)
    report = ptxas_report(compiled)
    kernel = report.kernel(compiled.name)
    assert not kernel.spills, f"{name} uses local memory:\n{report.log}"
    assert kernel.shared_memory_bytes == compiled.shared_bytes


def test_softmax_loads_and_stores_are_128_bit_when_rows_are_aligned():
    compiled = compile_case("row_softmax_1024_w4")
    assert "ld.global.v4.b32" in compiled.ptx and "st.global.v4.b32" in compiled.ptx
    assert "ex2.approx" in compiled.ptx


def test_course_softmax_compiles_its_row_loop():
    compiled = compile_case("course_softmax_1024_w4")
    assert "tile.for" in compiled.asm["tile.gpu"]
    assert "ld.global.v4.b32" in compiled.ptx


def test_half_precision_loads_use_eight_halves_per_access():
    from course.kernels.softmax import softmax_kernel

    x = torch.empty(4, 1024, dtype=torch.float16)
    compiled = compile_for_gpu(softmax_kernel, x, x, 4, 1024, 1024, 1024, BLOCK_SIZE=1024)
    assert "vector_width = 8" in compiled.asm["tile.gpu"]
    assert "ld.global.v4.b32" in compiled.ptx


def test_unsupported_ops_name_the_source_line():
    import mini_compiler
    import mini_compiler.language as tl
    from mini_compiler.errors import CompilationError

    @mini_compiler.jit
    def uses_dot(a_ptr, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        a = tl.load(a_ptr + offsets[:, None] * BLOCK + offsets[None, :])
        tl.store(a_ptr + offsets[:, None] * BLOCK + offsets[None, :], tl.dot(a, a))

    a = torch.empty(16, 16)  # fp32: the tensor cores' fp16/bf16 path does not take it
    with pytest.raises(CompilationError, match="fp16 or bf16") as error:
        compile_for_gpu(uses_dot, a, BLOCK=16)
    assert "tl.dot(a, a)" in str(error.value)


def test_num_warps_must_be_a_power_of_two():
    kernel, args, options = _gelu_like()
    options["num_warps"] = 3
    with pytest.raises(ValueError, match="power of two"):
        compile_for_gpu(kernel, *args, **options)


def test_a_pointer_carried_through_a_loop_compiles_with_narrow_accesses():
    """A pointer carried through a loop is known by what holds of its initial value and of
    what each iteration yields (the coalescing pass once raised KeyError on it): advanced by a
    multiple of the block, it keeps 128-bit accesses."""
    import triton
    import triton.language as tl

    @triton.jit
    def copy_in_steps(x_ptr, out_ptr, steps, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        x_ptrs = x_ptr + offsets
        out_ptrs = out_ptr + offsets
        for _ in range(steps):
            tl.store(out_ptrs, tl.load(x_ptrs))
            x_ptrs += BLOCK
            out_ptrs += BLOCK

    x = torch.empty(4 * 256)
    compiled = compile_for_gpu(copy_in_steps, x, x, 4, BLOCK=256)
    assert ".entry" in compiled.ptx and "ld.global.nc.v4" in compiled.ptx


def test_the_capstone_matmul_in_fp32_is_refused_with_a_location_not_a_crash():
    from course.kernels.linear import linear_kernel

    x, w, out = torch.empty(8, 32), torch.empty(16, 32), torch.empty(8, 16)
    with pytest.raises(CompilationError, match=r"linear\.py:\d+:\d+.*fp16 or bf16"):
        compile_for_gpu(linear_kernel, x, w, out, out, 8, 16, 32, 32, 32, 16, 16, BLOCK_M=16,
                        BLOCK_N=16, BLOCK_K=32, GROUP_SIZE=8, EPILOGUE="none", EVEN_K=True)


def test_the_capstone_matmul_in_bf16_compiles_onto_tensor_cores():
    from course.kernels.linear import linear_kernel

    x, w = torch.empty(8, 32, dtype=torch.bfloat16), torch.empty(16, 32, dtype=torch.bfloat16)
    out = torch.empty(8, 16, dtype=torch.bfloat16)
    compiled = compile_for_gpu(linear_kernel, x, w, out, out, 8, 16, 32, 32, 32, 16, 16,
                               BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, GROUP_SIZE=8,
                               EPILOGUE="none", EVEN_K=True, num_warps=1)
    assert "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in compiled.ptx
