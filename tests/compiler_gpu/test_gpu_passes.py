"""The GPU passes on real kernels: axis info seeds from specialisation and flows through
arithmetic, coalescing picks 128-bit accesses only where legal, layouts make reductions and
broadcasts free of shared memory, and barriers separate reuses of shared memory."""

from __future__ import annotations

import torch

import mini_compiler.language as tl
from mini_compiler.backends.gpu import compile_for_gpu, tile_layouts
from mini_compiler.frontend.codegen import build_tile_ir, kernel_source
from mini_compiler.ir.ops import walk_ops
from mini_compiler.passes.gpu.axis_info import analyse_axis_info
from mini_compiler.passes.gpu.coalesce import vector_width
from mini_compiler.passes.gpu.layouts import BlockedLayout, SliceLayout
from mini_compiler.passes.pipeline import PassManager
from mini_compiler.runtime.specialization import specialise

from . import kernels


def tile_ir_of(kernel, *args, **constexprs):
    fn = getattr(kernel, "fn", kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    return PassManager(record=False).run(build_tile_ir(fn, spec.params))


def vector_add_args(n):
    x = torch.empty(max(n, 16))
    return x, x, x, n


def test_axis_info_of_vector_add():
    from course.kernels.vector_add import add_kernel

    fn = tile_ir_of(add_kernel, *vector_add_args(4096), BLOCK_SIZE=1024)
    info = analyse_axis_info(fn)
    loads = [op for op in walk_ops(fn.body) if op.name == "tile.load"]
    pointer_info = info[loads[0].operands[0]]
    assert pointer_info.contiguity == (1024,)
    assert pointer_info.divisibility == (16,)  # bytes: the tensor's address is 16-aligned
    mask_info = info[loads[0].operands[1]]
    assert mask_info.constancy == (16,)  # offsets < n with n % 16 == 0


def test_mask_is_not_uniform_when_n_is_not_a_multiple_of_16():
    from course.kernels.vector_add import add_kernel

    fn = tile_ir_of(add_kernel, *vector_add_args(1000), BLOCK_SIZE=1024)
    info = analyse_axis_info(fn)
    load = next(op for op in walk_ops(fn.body) if op.name == "tile.load")
    assert info[load.operands[1]].constancy == (1,)


def test_vector_width_rule():
    assert vector_width(1024, 16, 4) == 4
    assert vector_width(1024, 16, 2) == 8
    assert vector_width(1024, 8, 4) == 2
    assert vector_width(1024, 4, 4) == 1
    assert vector_width(2, 16, 4) == 2
    assert vector_width(1024, 1 << 30, 8) == 2


def test_vector_add_gets_predicated_128_bit_accesses():
    from course.kernels.vector_add import add_kernel

    compiled = compile_for_gpu(add_kernel, *vector_add_args(1 << 20), BLOCK_SIZE=1024)
    assert "vector_width = 4" in compiled.asm["tile.gpu"]
    assert compiled.ptx.count("ld.global.v4.b32") == 4  # 2 operands x 2 repetitions
    assert compiled.ptx.count("st.global.v4.b32") == 2
    unaligned = compile_for_gpu(add_kernel, *vector_add_args(1000), BLOCK_SIZE=1024)
    assert "ld.global.v4" not in unaligned.ptx  # the mask changes inside a vector: scalars
    assert "@%p" in unaligned.ptx


def test_row_reduction_needs_no_shared_memory_for_broadcast_back():
    x = torch.empty(64, 256)
    compiled = compile_for_gpu(kernels.scale_rows_2d, x, x[0], x[0], x, 64, 256, 256,
                               BLOCK_M=16, BLOCK_N=64, num_warps=4)
    names = [op.name for op in walk_ops(compiled.layout_ir.body)]
    assert "gpu.convert_layout" not in names
    layouts = {t.op: t.layout for t in tile_layouts(compiled)}
    assert isinstance(layouts["tile.reduce"], SliceLayout)
    assert isinstance(layouts["tile.expand_dims"], BlockedLayout)


def test_softmax_has_two_cross_warp_reductions_separated_by_a_barrier():
    x = torch.empty(8, 1024)
    compiled = compile_for_gpu(kernels.row_softmax, x, x, 1024, 1024, BLOCK=1024, num_warps=4)
    ops = [op for op in walk_ops(compiled.layout_ir.body)]
    reduces = [i for i, op in enumerate(ops) if op.name == "tile.reduce"]
    barriers = [i for i, op in enumerate(ops) if op.name == "gpu.barrier"]
    assert len(reduces) == 2 and len(barriers) == 1
    assert reduces[0] < barriers[0] < reduces[1]
    assert all(ops[i].attrs["smem_offset"] == 0 for i in reduces)  # lifetimes do not overlap
    assert compiled.shared_bytes == 16  # one float per warp


def test_one_warp_reduction_uses_only_shuffles():
    x = torch.empty(8, 32)
    compiled = compile_for_gpu(kernels.row_softmax, x, x, 32, 32, BLOCK=32, num_warps=1)
    assert compiled.shared_bytes == 0
    assert "gpu.barrier" not in compiled.asm["tile.gpu"]
    # 32 floats, 4 per thread: 8 lanes hold distinct data (the other 24 hold copies), so each
    # of the two reductions takes log2(8) = 3 shuffles.
    assert compiled.ptx.count("shfl.sync.bfly") == 6


def test_a_value_needed_in_two_layouts_is_recomputed_or_converted():
    x = torch.empty(64, 128)
    compiled = compile_for_gpu(kernels.sum_rows_and_columns, x, x[0], x[0], 64, 128, 128,
                               BLOCK_M=16, BLOCK_N=128)
    text = compiled.asm["tile.gpu"]
    assert "#slice<dim=1" in text and "#slice<dim=0" in text


def test_layouts_that_disagree_meet_through_shared_memory():
    x = torch.empty(64, 128)
    compiled = compile_for_gpu(kernels.row_sums_plus_vector, x, x[0], x[0], 64, 128,
                               BLOCK_M=16, BLOCK_N=128)
    converts = [op for op in walk_ops(compiled.layout_ir.body)
                if op.name == "gpu.convert_layout"]
    assert len(converts) == 1
    assert converts[0].attrs["smem_bytes"] == 16 * 4
    assert "bar.sync" in compiled.ptx or "barrier.sync" in compiled.ptx


def test_accesses_are_never_wider_than_a_threads_contiguous_run():
    # The 16 row scales may be loaded 4 at a time (aligned, uniform mask), but in the slice of
    # a layout with one element per thread along the rows, a thread's 4 scales are 4 rows
    # apart: the access must stay scalar. (A 128-bit access here read the wrong addresses.)
    x = torch.empty(64, 1000)
    compiled = compile_for_gpu(kernels.scale_rows_2d, x, x[:, 0].contiguous(), x[0], x, 64,
                               1000, 1000, BLOCK_M=16, BLOCK_N=64, num_warps=8)
    scale_load = [op for op in walk_ops(compiled.layout_ir.body) if op.name == "tile.load"][1]
    assert scale_load.attrs["vector_width"] == 4
    assert "ld.global.v" not in compiled.ptx


def _int64_rows(x_ptr, out_ptr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    tl.store(out_ptr + rows, tl.load(x_ptr + rows))


def _int64_truncated(x_ptr, out_ptr, BLOCK: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64).to(tl.int16)
    tl.store(out_ptr + rows, tl.load(x_ptr + rows))


def test_widening_an_offset_to_int64_keeps_its_runs():
    """``.to(tl.int64)`` keeps every value, so a run of offsets stays a run (lesson 4's kernels
    add an int64 head offset to int32 tiles); narrowing may wrap and keeps nothing."""
    x = torch.empty(4096, dtype=torch.float16)
    for kernel, width in ((_int64_rows, 8), (_int64_truncated, 1)):
        fn = tile_ir_of(kernel, x, x, BLOCK=256)
        info = analyse_axis_info(fn)
        load = next(op for op in walk_ops(fn.body) if op.name == "tile.load")
        got = vector_width(info[load.operands[0]].contiguity[0],
                           info[load.operands[0]].divisibility[0], 2)
        assert got == width, (kernel.__name__, info[load.operands[0]])


def test_lesson4_backward_loads_are_vectorised_where_rows_are_contiguous():
    """Q, dO and the dQ store of the dQ kernel (int64 head offset plus int32 tiles): 16 bytes
    per access; K^T and V^T, contiguous along their first dimension, stay one element wide."""
    from course.kernels.attention import attention_bwd_dq_kernel

    x, rows = torch.empty(8192, 64, dtype=torch.float16), torch.empty(8192)
    compiled = compile_for_gpu(attention_bwd_dq_kernel, x, x, x, x, rows, rows, x, 4096, 0.1, 0.1,
                               HEAD_DIM=64, BLOCK_M=64, BLOCK_N=64, CAUSAL=False, EVEN_N=True,
                               num_warps=4, num_stages=3)
    ir = compiled.asm["tile.gpu.coalesce"].splitlines()
    tiles = [line for line in ir if "tile<64x64" in line and "vector_width" in line]
    assert [line.split("vector_width = ")[1][0] for line in tiles if "tile.load" in line] == \
        ["8", "8"]
    assert all("vector_width = 1" in line for line in ir if "gpu.async_copy" in line)
