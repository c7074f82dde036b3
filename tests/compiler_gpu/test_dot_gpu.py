"""Lesson 3's ``matmul_kernel``, unchanged, through the GPU back end without a GPU: tensor-core
PTX (``mma.sync``, ``ldmatrix``) that ptxas assembles with no spills and no stack, for fp16 and
bf16, transposed operands, with and without the epilogue; clear errors where the tensor cores
cannot be used."""

from __future__ import annotations

import pytest
import torch

import mini_compiler
import mini_compiler.language as tl
from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report
from mini_compiler.errors import CompilationError

from .conftest import needs_ptxas


def compile_lesson_matmul(dtype=torch.float16, block=(64, 64, 64), num_warps=4, even_k=True,
                          activation="leaky_relu", transposed_b=False, **options):
    from course.kernels.matmul import matmul_kernel

    m, n, k = 256, 256, 256
    a = torch.empty(m, k, dtype=dtype)
    b = torch.empty(n, k, dtype=dtype).t() if transposed_b else torch.empty(k, n, dtype=dtype)
    c = torch.empty(m, n, dtype=dtype)
    bm, bn, bk = block
    return compile_for_gpu(matmul_kernel, a, b, c, m, n, k, a.stride(0), a.stride(1),
                           b.stride(0), b.stride(1), c.stride(0), c.stride(1), BLOCK_M=bm,
                           BLOCK_N=bn, BLOCK_K=bk, GROUP_SIZE=8, ACTIVATION=activation,
                           EVEN_K=even_k, num_warps=num_warps, **options)


CASES = {
    "fp16 64x64x64 4 warps": {},
    "bf16 64x64x64 4 warps": {"dtype": torch.bfloat16},
    "fp16 ragged K, no epilogue": {"even_k": False, "activation": None},
    "fp16 transposed B": {"transposed_b": True},
    "fp16 128x128x64 8 warps": {"block": (128, 128, 64), "num_warps": 8},
    "bf16 128x128x32 4 warps": {"dtype": torch.bfloat16, "block": (128, 128, 32)},
}


@needs_ptxas
@pytest.mark.parametrize("case", list(CASES))
def test_lesson_matmul_assembles_onto_tensor_cores(case):
    compiled = compile_lesson_matmul(**CASES[case])
    ptx = compiled.ptx
    assert "mma.sync.aligned.m16n8k16.row.col.f32" in ptx
    kind = "bf16" if CASES[case].get("dtype") == torch.bfloat16 else "f16"
    assert f".f32.{kind}.{kind}.f32" in ptx
    assert "ldmatrix.sync.aligned.m8n8.x4" in ptx
    resources = ptxas_report(compiled).kernel()
    assert resources.spill_store_bytes == 0 and resources.spill_load_bytes == 0, resources
    assert resources.stack_frame_bytes == 0, resources
    assert resources.shared_memory_bytes == compiled.shared_bytes > 0


def test_operand_loads_are_128_bit_through_the_loop_and_the_wrap_around():
    """The pointers are loop-carried and the columns wrapped with ``% N``: the axis info
    follows both (N divisible by 16 keeps runs of 16), so A and B load 8 fp16 at a time."""
    ir = compile_lesson_matmul().asm["tile.gpu"]
    loads = [line for line in ir.splitlines() if "tile.load" in line]
    # two before the loop (the first tiles) and two in it (the next ones): num_stages = 2
    assert len(loads) == 4 and all("vector_width = 8" in line for line in loads)


def test_the_k_loop_loads_one_iteration_ahead():
    ir = compile_lesson_matmul(even_k=False).asm["tile.gpu.pipeline_loads"]
    assert "{num_stages = 2}" in ir
    loop = ir[ir.index("tile.for"):]
    body = loop[:loop.index("tile.yield")]
    # the next tiles are loaded before this iteration's dot, masked past the last iteration
    assert body.index("tile.load") < body.index("tile.dot")
    assert ir.index("tile.load") < ir.index("tile.for")  # the prologue
    unpipelined = compile_lesson_matmul(even_k=False, num_stages=1).asm["tile.gpu"]
    assert "num_stages" not in unpipelined and unpipelined.count("tile.load") == 2


def test_operands_pass_through_shared_memory_and_barriers():
    ir = compile_lesson_matmul().asm["tile.gpu"]
    assert ir.count("gpu.local_alloc") == 2 and ir.count("gpu.local_load") == 2
    assert "#dot_op<a" in ir and "#dot_op<b" in ir and "#mma<m16n8k16" in ir
    loop = ir[ir.index("tile.for"):]
    # one barrier at the top of the loop body (the last iteration's reads), one between the
    # writes of both operands and their reads: not one per operand
    assert loop[:loop.index("tile.dot")].count("gpu.barrier") == 2


def test_ldmatrix_transposes_exactly_the_operands_whose_k_is_not_contiguous():
    plain = compile_lesson_matmul().ptx
    # A (M x K, K contiguous) without .trans; B (K x N, N contiguous) with it
    assert "ldmatrix.sync.aligned.m8n8.x4.shared.b16" in plain
    assert "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in plain
    # tl.trans(b) of a row-major N x K tile: K is contiguous, so B needs no .trans
    assert ".trans" not in _a_times_b_transposed().ptx


def _a_times_b_transposed():
    @mini_compiler.jit
    def a_times_b_transposed(a_ptr, b_ptr, c_ptr, BLOCK: tl.constexpr):
        rows = tl.arange(0, BLOCK)
        a = tl.load(a_ptr + rows[:, None] * BLOCK + rows[None, :])
        b = tl.load(b_ptr + rows[:, None] * BLOCK + rows[None, :])
        c = tl.dot(a, tl.trans(b))
        tl.store(c_ptr + rows[:, None] * BLOCK + rows[None, :], c)

    x = torch.empty(32, 32, dtype=torch.float16)
    return compile_for_gpu(a_times_b_transposed, x, x, torch.empty(32, 32), BLOCK=32,
                           num_warps=2)


def test_tl_trans_moves_no_data():
    compiled = _a_times_b_transposed()
    ir = compiled.asm["tile.gpu"]
    trans_line = next(line for line in ir.splitlines() if "tile.trans" in line)
    assert "order=[0, 1]" in trans_line  # the transposed blocked layout
    assert ir.count("gpu.convert_layout") == 1  # only the result, on its way to the store
    assert "mma.sync" in compiled.ptx


def _dot_kernel():
    @mini_compiler.jit
    def square(a_ptr, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        a = tl.load(a_ptr + offsets[:, None] * BLOCK + offsets[None, :])
        tl.store(a_ptr + offsets[:, None] * BLOCK + offsets[None, :], tl.dot(a, a))
    return square


def test_fp32_dot_is_a_located_error_that_says_what_to_do():
    with pytest.raises(CompilationError, match="fp16 or bf16") as error:
        compile_for_gpu(_dot_kernel(), torch.empty(16, 16), BLOCK=16)
    assert "tl.dot(a, a)" in str(error.value) and ".to(tl.float16)" in str(error.value)


def test_a_dot_too_small_for_the_warps_says_so():
    with pytest.raises(CompilationError, match="num_warps"):
        compile_for_gpu(_dot_kernel(), torch.empty(16, 16, dtype=torch.float16), BLOCK=16,
                        num_warps=4)
    assert "mma.sync" in compile_for_gpu(_dot_kernel(), torch.empty(16, 16, dtype=torch.float16),
                                         BLOCK=16, num_warps=1).ptx


def test_a_loop_that_stores_is_not_pipelined():
    """Loading the next tiles early would move a load across a store to the same memory."""
    @mini_compiler.jit
    def accumulate_in_place(a_ptr, c_ptr, steps, BLOCK: tl.constexpr):
        rows = tl.arange(0, BLOCK)
        acc = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
        for _ in range(steps):
            a = tl.load(a_ptr + rows[:, None] * BLOCK + rows[None, :])
            acc = tl.dot(a, a, acc)
            tl.store(a_ptr + rows[:, None] * BLOCK + rows[None, :], acc.to(tl.float16))
        tl.store(c_ptr + rows[:, None] * BLOCK + rows[None, :], acc)

    x = torch.empty(32, 32, dtype=torch.float16)
    ir = compile_for_gpu(accumulate_in_place, x, torch.empty(32, 32), 3, BLOCK=32,
                         num_warps=2).asm["tile.gpu.pipeline_loads"]
    assert "num_stages" not in ir


@pytest.mark.parametrize("k", [0, 16, 40])
def test_pipelined_loops_of_zero_one_and_two_iterations_compute_the_product(k):
    """The prologue's loads are masked off when the loop does not run, the last iteration's
    look-ahead loads past the end: the interpreter after every GPU pass agrees with float64."""
    from course.kernels.matmul import matmul_kernel
    from mini_compiler.tools.gpu_stages import interpret_gpu_stages

    m, n = 33, 40
    a, b = torch.randn(m, k).half(), torch.randn(k, n).half()
    c = torch.empty(m, n, dtype=torch.float16)
    constexprs = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_SIZE": 2,
                  "ACTIVATION": None, "EVEN_K": k % 32 == 0}
    stages = interpret_gpu_stages(matmul_kernel, (4,), (a, b, c, m, n, k, max(k, 1), 1, n, 1, n, 1),
                                  [c], constexprs, num_warps=2)
    assert "tile.gpu.pipeline_loads" in stages
    want = a.double() @ b.double()
    for stage, (got,) in stages.items():
        torch.testing.assert_close(got.double(), want, rtol=2e-3, atol=2e-2,
                                   msg=lambda text, s=stage: f"{s}: {text}")


@needs_ptxas
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_shared_memory_beyond_48_kb_is_dynamic(dtype):
    """128x256x64 tiles need 64 KB of shared memory: more than static shared memory's 48 KB,
    so the PTX declares it with no size (``.extern``) and the launch gives it."""
    compiled = compile_lesson_matmul(dtype=dtype, block=(128, 256, 64), num_warps=8,
                                     num_stages=1)
    assert compiled.shared_bytes == compiled.dynamic_shared_bytes == 64 * 1024
    assert ".extern .shared .align 128 .b8 dynamic_scratch[];" in compiled.ptx
    assert "mma.sync.aligned.m16n8k16" in compiled.ptx
    resources = ptxas_report(compiled).kernel()
    assert resources.spill_store_bytes == resources.spill_load_bytes == 0, resources
    assert resources.stack_frame_bytes == 0, resources
    assert resources.shared_memory_bytes == 0  # ptxas counts static shared memory only


@needs_ptxas
def test_shared_memory_up_to_48_kb_stays_static():
    compiled = compile_lesson_matmul()
    assert compiled.dynamic_shared_bytes == 0 and ".extern .shared" not in compiled.ptx
    assert ptxas_report(compiled).kernel().shared_memory_bytes == compiled.shared_bytes


def test_more_shared_memory_than_a_block_may_have_is_a_clear_error():
    with pytest.raises(CompilationError, match="at most 232448"):
        compile_lesson_matmul(block=(256, 512, 128), num_warps=8, num_stages=1)
