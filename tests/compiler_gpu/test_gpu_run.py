"""On a GPU: kernels compiled by mini_compiler run through ``kernel[grid](...)`` on CUDA tensors
and match torch, on random inputs whose sizes are not multiples of the block, with outputs
poisoned with NaN so that an element never written is caught."""

from __future__ import annotations

import pytest
import torch

import mini_compiler

from . import kernels
from .conftest import needs_gpu

pytestmark = needs_gpu

CLOSE = {"rtol": 1e-5, "atol": 1e-6}


def poisoned(*shape, dtype=torch.float32):
    return torch.full(shape, float("nan"), device="cuda", dtype=dtype)


def cdiv(a, b):
    return (a + b - 1) // b


@pytest.mark.parametrize("n", [1, 1000, 4096 + 16, 98_765, 1 << 20])
def test_vector_add(n):
    from course.kernels.vector_add import add_kernel

    kernel = mini_compiler.jit(add_kernel)
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = poisoned(n)
    kernel[(cdiv(n, 1024),)](x, y, out, n, BLOCK_SIZE=1024)
    torch.testing.assert_close(out, x + y)


@pytest.mark.parametrize("shape", [(37, 100), (128, 1024), (7, 4096 + 3), (5, 16384)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_course_softmax(shape, dtype):
    from course.kernels.softmax import block_size_for, num_warps_for, softmax_kernel

    kernel = mini_compiler.jit(softmax_kernel)
    rows, cols = shape
    x = torch.randn(shape, device="cuda", dtype=dtype) * 4
    out = poisoned(*shape, dtype=dtype)
    block = block_size_for(cols)
    kernel[(rows,)](x, out, rows, cols, x.stride(0), out.stride(0), BLOCK_SIZE=block,
                    num_warps=num_warps_for(block))
    expected = torch.softmax(x.float(), dim=-1).to(dtype)
    torch.testing.assert_close(out, expected, **(CLOSE if dtype == torch.float32 else {}))


def test_course_softmax_with_fewer_programs_than_rows():
    from course.kernels.softmax import softmax_kernel

    kernel = mini_compiler.jit(softmax_kernel)
    x = torch.randn(37, 300, device="cuda")
    out = poisoned(37, 300)
    kernel[(5,)](x, out, 37, 300, x.stride(0), out.stride(0), BLOCK_SIZE=512, num_warps=4)
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), **CLOSE)


@pytest.mark.parametrize("shape", [(3, 20_000), (5, 4097)])
def test_course_online_softmax(shape):
    from course.kernels.softmax import online_softmax_kernel

    kernel = mini_compiler.jit(online_softmax_kernel)
    rows, cols = shape
    x = torch.randn(shape, device="cuda") * 3
    out = poisoned(*shape)
    kernel[(rows,)](x, out, cols, x.stride(0), out.stride(0), BLOCK_SIZE=1024, num_warps=4)
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), **CLOSE)


@pytest.mark.parametrize("shape", [(7, 5000), (3, 1024), (2, 100)])
def test_tile_carried_through_a_loop(shape):
    rows, cols = shape
    x = torch.randn(shape, device="cuda")
    out = poisoned(rows)
    kernels.row_sums_looped[(rows,)](x, out, cols, x.stride(0), BLOCK=1024, num_warps=4)
    torch.testing.assert_close(out, x.sum(dim=1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,num_warps", [((37, 100), 4), ((64, 1024), 4), ((9, 4096), 8),
                                             ((3, 16384), 16), ((11, 30), 1)])
def test_row_softmax(shape, num_warps):
    rows, cols = shape
    x = torch.randn(shape, device="cuda") * 3
    out = poisoned(*shape)
    block = 1 << (cols - 1).bit_length()
    kernels.row_softmax[(rows,)](x, out, cols, cols, BLOCK=block, num_warps=num_warps)
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), **CLOSE)


@pytest.mark.parametrize("shape,blocks,num_warps", [((100, 77), (16, 128), 4),
                                                    ((33, 20), (8, 32), 2),
                                                    ((130, 200), (32, 256), 8)])
def test_reductions_along_both_axes(shape, blocks, num_warps):
    rows, cols = shape
    block_m, block_n = blocks
    x = torch.randn(shape, device="cuda")
    programs = cdiv(rows, block_m)
    row_sum, col_max = poisoned(rows), poisoned(programs, cols)
    kernels.sum_rows_and_columns[(programs,)](x, row_sum, col_max, rows, cols, x.stride(0),
                                              BLOCK_M=block_m, BLOCK_N=block_n,
                                              num_warps=num_warps)
    want_sum, want_max = kernels.torch_reference("sum_rows_and_columns")(x, block_m)
    torch.testing.assert_close(row_sum, want_sum, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(col_max, want_max)


@pytest.mark.parametrize("shape,num_warps", [((100, 77), 4), ((19, 300), 2)])
def test_layout_conversion_through_shared_memory(shape, num_warps):
    rows, cols = shape
    x, v = torch.randn(shape, device="cuda"), torch.randn(rows, device="cuda")
    out = poisoned(rows)
    kernels.row_sums_plus_vector[(cdiv(rows, 16),)](x, v, out, rows, cols, BLOCK_M=16,
                                                    BLOCK_N=512, num_warps=num_warps)
    torch.testing.assert_close(out, x.sum(dim=1) + v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,num_warps", [((100, 300), 4), ((17, 64), 2), ((64, 1000), 8)])
def test_broadcasts_in_two_dimensions(shape, num_warps):
    rows, cols = shape
    x = torch.randn(shape, device="cuda")
    scale, bias = torch.randn(rows, device="cuda"), torch.randn(cols, device="cuda")
    out = poisoned(*shape)
    grid = (cdiv(rows, 16), cdiv(cols, 64))
    kernels.scale_rows_2d[grid](x, scale, bias, out, rows, cols, x.stride(0),
                                BLOCK_M=16, BLOCK_N=64, num_warps=num_warps)
    want = kernels.torch_reference("scale_rows_2d")(x, scale, bias, 64)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n,block", [(1000, 1024), (12_345, 512), (1 << 16, 256)])
def test_elementwise_math(n, block):
    x = torch.randn(n, device="cuda") * 3
    out = poisoned(n)
    kernels.gelu_like[(cdiv(n, block),)](x, out, n, BLOCK=block)
    torch.testing.assert_close(out, kernels.torch_reference("gelu_like")(x), rtol=1e-5,
                               atol=1e-5)


def test_launch_is_ordered_on_torchs_current_stream():
    from course.kernels.vector_add import add_kernel

    kernel = mini_compiler.jit(add_kernel)
    n = 1 << 22
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x = torch.randn(n, device="cuda")
        y = x * 2  # queued on `stream`; the kernel must run after it
        out = poisoned(n)
        kernel[(cdiv(n, 1024),)](x, y, out, n, BLOCK_SIZE=1024)
        result = out * 1  # and this after the kernel
    stream.synchronize()
    torch.testing.assert_close(result, 3 * x)


def test_exercise_checks_run_the_reference_rules_on_the_gpu():
    from mini_compiler.backends.gpu import nvvm
    from mini_compiler.passes.gpu.coalesce import vector_width
    from mini_compiler.tools import gpu_exercises as exercises

    exercises.check_butterfly_offsets(nvvm.butterfly_offsets, run=True)
    exercises.check_vector_width(vector_width, run=True)


def test_warm_launches_take_the_packed_path_and_see_new_arguments():
    """After the first launch, ``kernel[grid](...)`` goes through the packed launcher (one call
    into libcuda); the driver must accept it (never the silent fallback), and each launch must
    use its own tensors and sizes, not the previous launch's."""
    import warnings

    from course.kernels.vector_add import add_kernel

    kernel = mini_compiler.jit(add_kernel)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for n in (1000, 5000, 3, 5000):
            x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
            out = poisoned(n)
            kernel[(cdiv(n, 1024),)](x, y, out, n, BLOCK_SIZE=1024)
            torch.testing.assert_close(out, x + y)
    packed = [p for compiled in kernel.cache.fast.values()
              for p in compiled.artifact._packed.values()]
    assert packed, "the warm launches did not go through the packed launcher"
    assert all(p.refused is None and p._refusals == 0 for p in packed), \
        [(p.refused, p._refusals) for p in packed]
