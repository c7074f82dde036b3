"""Phase-1 infrastructure without Tile IR: hand-built LLVM IR kernels go through NVPTX, the PTX
lint and ptxas; the lint catches unresolved intrinsics; the ptxas report is parsed."""

from __future__ import annotations

import pytest
from llvmlite import ir

from mini_compiler.backends.gpu import lint, nvvm, ptx, ptxas

from .conftest import needs_ptxas


def hand_built_vector_add() -> str:
    """out[i] = x[i] + y[i], 4 floats per thread, one predicated 128-bit access per operand."""
    module = nvvm.new_module("vector_add")
    kernel = nvvm.new_kernel(module, "vector_add", [nvvm.global_ptr] * 3 + [nvvm.i32],
                             ["x", "y", "out", "n"])
    b = ir.IRBuilder(kernel.append_basic_block("entry"))
    x, y, out, n = kernel.args
    start = b.add(b.mul(nvvm.block_id(b), ir.Constant(nvvm.i32, 512)),
                  b.mul(nvvm.thread_id(b), ir.Constant(nvvm.i32, 4)))
    index = b.sext(start, nvvm.i64)
    inside = b.icmp_signed("<", start, n)
    zeros = [ir.Constant(nvvm.f32, 0.0)] * 4
    xs = nvvm.predicated_load(b, b.gep(x, [index], source_etype=nvvm.f32), inside, zeros)
    ys = nvvm.predicated_load(b, b.gep(y, [index], source_etype=nvvm.f32), inside, zeros)
    sums = [b.fadd(a, c) for a, c in zip(xs, ys, strict=True)]
    nvvm.predicated_store(b, b.gep(out, [index], source_etype=nvvm.f32), inside, sums)
    b.ret_void()
    return str(module)


def hand_built_row_sum(num_warps: int = 4) -> str:
    """One row of 32 * num_warps floats per block: shuffle tree, then shared memory, then exp."""
    module = nvvm.new_module("row_sum")
    kernel = nvvm.new_kernel(module, "row_sum", [nvvm.global_ptr] * 2, ["x", "out"])
    nvvm.set_max_threads(kernel, num_warps * 32)
    scratch = nvvm.shared_memory(module, "partials", 4 * num_warps)
    b = ir.IRBuilder(kernel.append_basic_block("entry"))
    x, out = kernel.args
    lane, warp = nvvm.lane_and_warp(b)
    row = nvvm.block_id(b)
    index = b.add(b.mul(row, ir.Constant(nvvm.i32, 32 * num_warps)), nvvm.thread_id(b))
    value = b.load(b.gep(x, [b.sext(index, nvvm.i64)], source_etype=nvvm.f32), typ=nvvm.f32)
    value = nvvm.warp_reduce(b, value, b.fadd, nvvm.butterfly_offsets(32))
    slot = b.gep(scratch, [b.mul(warp, ir.Constant(nvvm.i32, 4))], source_etype=nvvm.i8)
    b.store(value, slot)
    nvvm.barrier(b)
    total = None
    for w in range(num_warps):
        part = b.load(b.gep(scratch, [ir.Constant(nvvm.i32, 4 * w)], source_etype=nvvm.i8),
                      typ=nvvm.f32)
        total = part if total is None else b.fadd(total, part)
    is_first = b.icmp_unsigned("==", nvvm.thread_id(b), ir.Constant(nvvm.i32, 0))
    nvvm.predicated_store(b, b.gep(out, [b.sext(row, nvvm.i64)], source_etype=nvvm.f32),
                          is_first, [nvvm.exp(b, total)])
    del lane
    b.ret_void()
    return str(module)


def test_vector_add_ptx_uses_predicated_128_bit_accesses():
    text = ptx.llvm_ir_to_ptx(hand_built_vector_add())
    assert ".entry vector_add" in text
    assert text.count("ld.global.v4.b32") == 2
    assert "st.global.v4.b32" in text
    assert lint.lint_ptx(text) == []


def test_row_sum_ptx_has_shuffles_barrier_and_ex2():
    text = ptx.llvm_ir_to_ptx(hand_built_row_sum())
    assert text.count("shfl.sync.bfly") == 5
    assert "bar.sync" in text or "barrier.sync" in text
    assert "ex2.approx" in text
    assert ".shared" in text
    assert ".maxntid 128" in text


def test_butterfly_offsets_cover_the_group():
    assert nvvm.butterfly_offsets(32) == [16, 8, 4, 2, 1]
    assert nvvm.butterfly_offsets(8, lane_stride=4) == [16, 8, 4]
    assert nvvm.butterfly_offsets(1) == []


def test_lint_rejects_unresolved_intrinsics():
    module = nvvm.new_module("bad")
    kernel = nvvm.new_kernel(module, "bad", [nvvm.global_ptr])
    b = ir.IRBuilder(kernel.append_basic_block())
    made_up = nvvm.intrinsic(module, "llvm.nvvm.no.such.intrinsic", nvvm.f32, [nvvm.f32])
    b.store(b.call(made_up, [ir.Constant(nvvm.f32, 1.0)]), kernel.args[0])
    b.ret_void()
    text = ptx.llvm_ir_to_ptx(str(module))
    problems = lint.lint_ptx(text)
    assert [p.symbol for p in problems] == ["llvm.nvvm.no.such.intrinsic"]
    with pytest.raises(lint.PtxLintError, match="llvm.nvvm.no.such.intrinsic"):
        lint.check_ptx(text)


def test_lint_wants_an_entry():
    problems = lint.lint_ptx(".version 8.0\n.target sm_90\n.visible .func f() { ret; }")
    assert "ptx_kernel" in problems[0].message


def test_ptxas_report_parser():
    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 64 bytes smem, 368 bytes cmem[0]
"""
    report = ptxas.parse_ptxas_report(log, "sm_90").kernel("k")
    assert (report.registers, report.shared_memory_bytes) == (40, 64)
    assert (report.stack_frame_bytes, report.spill_store_bytes, report.spill_load_bytes) == (
        8, 4, 4)
    assert report.spills


@needs_ptxas
@pytest.mark.parametrize("build", [hand_built_vector_add, hand_built_row_sum])
def test_hand_built_kernels_assemble_for_sm90_without_spills(build):
    report = ptxas.assemble(ptx.llvm_ir_to_ptx(build()))
    kernel = report.kernel()
    assert not kernel.spills, report.log
    assert 0 < kernel.registers <= 255


@needs_ptxas
def test_ptxas_errors_are_reported():
    with pytest.raises(ptxas.PtxasError, match="ptxas failed"):
        ptxas.assemble(".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k() {"
                       " bogus.instruction; }")


def test_missing_ptxas_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MINI_COMPILER_PTXAS", str(tmp_path / "nowhere" / "ptxas"))
    assert ptxas.find_ptxas() is None
    with pytest.raises(FileNotFoundError, match="MINI_COMPILER_PTXAS"):
        ptxas.assemble("")
