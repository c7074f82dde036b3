"""The ``cp.async`` pipeline of a ``tl.dot`` loop (``num_stages`` 3 or more), without a GPU: the
IR it prints, the PTX ptxas assembles (no spills, no stack), the allocator's rings, the barriers,
and the IR after every GPU pass run through the interpreter against a float64 product."""

from __future__ import annotations

import re

import pytest
import torch

import mini_compiler.language as tl
from mini_compiler import jit
from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report
from mini_compiler.tools.gpu_stages import interpret_gpu_stages

from .conftest import needs_ptxas
from .test_dot_gpu import compile_lesson_matmul


def _loop_body(ir: str) -> str:
    loop = ir[ir.index("tile.for"):]
    return loop[:loop.index("tile.yield")]


@pytest.mark.parametrize("stages", [3, 4])
def test_the_loop_reads_rings_that_copies_fill_stages_minus_one_ahead(stages):
    ir = compile_lesson_matmul(num_stages=stages, even_k=False).asm["tile.gpu.pipeline_loads"]
    assert f"{{num_stages = {stages}}}" in ir
    assert ir.count(f"gpu.alloc_ring {{num_stages = {stages}}}") == 2  # one ring for A, one B
    before, after = ir[:ir.index("tile.for")], ir[ir.index("tile.for"):]
    # the prologue: tiles 0 .. stages - 2 of A and B, one commit group per iteration
    assert before.count("gpu.async_copy") == 2 * (stages - 1)
    assert before.count("gpu.async_commit") == stages - 1
    body = _loop_body(ir)
    assert "tile.load" not in body  # every operand arrives by cp.async
    lines = [line.strip() for line in body.splitlines()[1:]]
    assert lines[0] == f"gpu.async_wait {{pending = {stages - 2}}} :"
    assert [line.split("=")[1].split()[0] for line in lines[1:3]] == ["gpu.ring_load"] * 2
    # the copies for `stages - 1` iterations ahead are issued before the dot multiplies
    assert body.count("gpu.async_copy") == 2 and body.count("gpu.async_commit") == 1
    assert body.index("gpu.async_commit") < body.index("tile.dot")
    # after the loop nothing may still be in flight
    assert after[after.index("tile.yield"):].count("gpu.async_wait {pending = 0}") == 1


def test_a_loop_with_two_stages_keeps_the_register_pipeline():
    ir = compile_lesson_matmul(num_stages=2).asm["tile.gpu.pipeline_loads"]
    assert "{num_stages = 2}" in ir and "gpu.async_copy" not in ir


@jit
def _dot_loop_filling_ones(a_ptr, b_ptr, c_ptr, K, BLOCK: tl.constexpr):
    rows = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
    for k in range(0, K, BLOCK):
        ks = k + rows
        a = tl.load(a_ptr + rows[:, None] * K + ks[None, :], mask=ks[None, :] < K, other=1.0)
        b = tl.load(b_ptr + ks[:, None] * BLOCK + rows[None, :])
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + rows[:, None] * BLOCK + rows[None, :], acc)


def test_a_load_that_fills_with_nonzero_keeps_the_register_pipeline():
    """cp.async fills masked-off elements with zeros only: ``other=1.0`` must not go through
    it."""
    a = torch.empty(32, 64, dtype=torch.float16)
    b = torch.empty(64, 32, dtype=torch.float16)
    c = torch.empty(32, 32)
    compiled = compile_for_gpu(_dot_loop_filling_ones, a, b, c, 64, BLOCK=32, num_warps=4,
                               num_stages=3)
    ir = compiled.asm["tile.gpu.pipeline_loads"]
    assert "gpu.async_copy" not in ir and "{num_stages = 2}" in ir


def test_rings_live_through_the_loop_and_the_epilogue_reuses_their_bytes():
    compiled = compile_lesson_matmul(num_stages=3, block=(128, 128, 64), num_warps=8)
    plan = compiled.layout_ir.attrs["shared_memory_plan"]
    rings = [a for a in plan.allocations if a.op.name == "gpu.alloc_ring"]
    assert [a.buffer.size for a in rings] == [3 * 128 * 64 * 2] * 2
    first, second = sorted(rings, key=lambda a: a.offset)
    assert first.offset + first.buffer.size <= second.offset  # live together: apart
    epilogue = [a for a in plan.allocations if a.op.name == "gpu.convert_layout"]
    assert epilogue and all(a.buffer.start > first.buffer.end for a in epilogue)
    assert plan.total == compiled.shared_bytes == compiled.dynamic_shared_bytes == 2 * 49152
    body = _loop_body(compiled.asm["tile.gpu"])
    # the wait ends with bar.sync: no other barrier in the loop
    assert "gpu.barrier" not in body and "gpu.local_alloc" not in body


CONFIGS = {
    "fp16 64x64x32 4 warps, 3 stages": {"block": (64, 64, 32), "num_stages": 3},
    "fp16 128x128x64 8 warps, 3 stages": {"block": (128, 128, 64), "num_warps": 8,
                                          "num_stages": 3},
    "fp16 128x128x64 8 warps, 4 stages": {"block": (128, 128, 64), "num_warps": 8,
                                          "num_stages": 4},
    "bf16 128x128x64 8 warps, 3 stages": {"dtype": torch.bfloat16, "block": (128, 128, 64),
                                          "num_warps": 8, "num_stages": 3},
    "fp16 128x256x64 8 warps, 3 stages": {"block": (128, 256, 64), "num_warps": 8,
                                          "num_stages": 3},
    "fp16 ragged K, 3 stages": {"even_k": False, "num_stages": 3},
}


@needs_ptxas
@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_pipeline_assembles_with_cp_async_and_no_spills(case):
    options = CONFIGS[case]
    compiled = compile_lesson_matmul(**options)
    ptx = compiled.ptx
    stages = options["num_stages"]
    bm, bn, bk = options.get("block", (64, 64, 64))
    threads = 32 * options.get("num_warps", 4)
    copies_per_stage = (bm * bk + bk * bn) // (8 * threads)  # 16 bytes = 8 elements a copy
    assert ptx.count("cp.async.cg.shared.global") == stages * copies_per_stage
    assert "cp.async.commit_group" in ptx
    assert f"cp.async.wait_group {stages - 2}" in ptx and "cp.async.wait_group 0" in ptx
    assert "mma.sync.aligned.m16n8k16" in ptx and "ldmatrix.sync.aligned.m8n8.x4" in ptx
    assert not re.search(r"ld\.global", ptx)  # the operands never pass through registers
    resources = ptxas_report(compiled).kernel()
    assert resources.spill_store_bytes == resources.spill_load_bytes == 0, resources
    assert resources.stack_frame_bytes == 0, resources
    if compiled.shared_bytes > 48 * 1024:
        assert compiled.dynamic_shared_bytes == compiled.shared_bytes
        assert ".extern .shared .align 128 .b8 dynamic_scratch[];" in ptx


def test_a_transposed_operand_falls_back_to_single_element_copies():
    """B stored column by column: along the tile's rows no two elements are neighbours in
    memory, so its copies are 2-byte loads and stores (cp.async moves 4, 8 or 16 bytes)."""
    compiled = compile_lesson_matmul(num_stages=3, transposed_b=True)
    assert "cp.async.cg.shared.global" in compiled.ptx and "ld.global" in compiled.ptx


def _matmul_case(m, n, k, dtype=torch.float16, transposed=False, activation=None, block=64,
                 bk=32):
    from course.kernels.matmul import matmul_kernel

    torch.manual_seed(m * n + k)
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(n, k).to(dtype).t() if transposed else torch.randn(k, n).to(dtype)
    c = torch.empty(m, n, dtype=dtype)
    grid = (-(-m // block) * -(-n // block),)
    args = (a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
            c.stride(1))
    meta = {"BLOCK_M": block, "BLOCK_N": block, "BLOCK_K": bk, "GROUP_SIZE": 2,
            "ACTIVATION": activation, "EVEN_K": k % bk == 0}
    want = a.double() @ b.double()
    if activation:
        want = torch.where(want >= 0, want, 0.01 * want)
    return matmul_kernel, grid, args, [c], meta, want


STAGE_CASES = {
    "fp16 ragged 70x100x40": dict(m=70, n=100, k=40, activation="leaky_relu"),
    "bf16 transposed B 65x64x64": dict(m=65, n=64, k=64, dtype=torch.bfloat16, transposed=True),
    "fp16 five iterations": dict(m=64, n=64, k=160),
    "fp16 one iteration": dict(m=64, n=64, k=32),
    "fp16 two iterations, ragged": dict(m=64, n=48, k=50),
    "fp16 zero iterations": dict(m=16, n=16, k=0),
}


@pytest.mark.parametrize("stages", [3, 4])
@pytest.mark.parametrize("case", list(STAGE_CASES))
def test_every_gpu_stage_of_the_pipeline_computes_the_product(case, stages):
    kernel, grid, args, outputs, meta, want = _matmul_case(**STAGE_CASES[case])
    results = interpret_gpu_stages(kernel, grid, args, outputs, meta, num_warps=4,
                                   num_stages=stages)
    assert "tile.gpu.insert_barriers" in results
    tolerance = 2e-2 if args[0].dtype == torch.bfloat16 else 2e-3
    for stage, (got,) in results.items():
        torch.testing.assert_close(got.double(), want, rtol=tolerance, atol=tolerance * 8,
                                   msg=lambda m, s=stage: f"{s}: {m}")


def test_rings_placed_on_each_other_give_a_wrong_product_in_the_interpreter():
    """The interpreter keeps each ring's slots at the bytes the allocator chose: a placement
    that puts A's ring on B's is caught without a GPU."""
    kernel, grid, args, outputs, meta, want = _matmul_case(64, 64, 160)

    def everything_at_zero(buffers):
        return [0] * len(buffers)

    results = interpret_gpu_stages(kernel, grid, args, outputs, meta, num_warps=4,
                                   num_stages=3, place_buffers=everything_at_zero)
    torch.testing.assert_close(results["tile.gpu.assign_layouts"][0].double(), want,
                               rtol=2e-3, atol=2e-2)
    assert not torch.allclose(results["tile.gpu.allocate_shared_memory"][0].double(), want,
                              rtol=2e-3, atol=2e-2)


def _unguarded_hazards(block, found=None) -> list[str]:
    """Pairs of ops in one block (a loop body included) that touch the same shared bytes, one of
    them writing, with no ``gpu.barrier`` or ``gpu.async_wait`` between them."""
    from mini_compiler.passes.gpu.insert_barriers import ASYNC_WAIT, BARRIER, accesses

    found = [] if found is None else found
    since = []  # (op, reads, writes) since the last barrier
    for op in block.ops:
        if op.name in (BARRIER, ASYNC_WAIT):
            since.clear()
            continue
        for region in op.regions:
            _unguarded_hazards(region, found)
        reads, writes = accesses(op)
        def overlap(spans, others):
            return any(a[0] < b[1] and b[0] < a[1] for a in spans for b in others)

        for other, other_reads, other_writes in since:
            if overlap(writes, other_reads + other_writes) or overlap(reads, other_writes):
                found.append(f"{other.name} then {op.name}")
        if reads or writes:
            since.append((op, reads, writes))
    return found


@pytest.mark.parametrize("stages", [2, 3])
def test_the_hazard_finder_sees_the_race_it_guards_against(stages):
    """The checker below must fail on a body whose barriers were taken out."""
    from mini_compiler.passes.gpu.insert_barriers import BARRIER
    body = _attention_backward(2, stages).layout_ir.body
    loop = next(op for op in body.ops if op.regions)
    loop.regions[0].ops[:] = [op for op in loop.regions[0].ops if op.name != BARRIER]
    assert _unguarded_hazards(body)


def _attention_backward(kernel_index, stages, d=64):
    from course.kernels.attention import BACKWARD_KERNELS
    n = 4096
    x, rows = torch.empty(2 * n, d, dtype=torch.float16), torch.empty(2 * n)
    outputs = (x, x) if kernel_index == 1 else (x,)
    return compile_for_gpu(BACKWARD_KERNELS[kernel_index], *(x,) * 4, rows, rows, *outputs, n,
                           0.1, 0.1, HEAD_DIM=d, BLOCK_M=64, BLOCK_N=64, CAUSAL=False,
                           EVEN_N=True, num_warps=4, num_stages=stages)


@pytest.mark.parametrize("stages", [2, 3])
@pytest.mark.parametrize("kernel_index", [1, 2])
def test_a_pipelined_loop_body_gets_its_own_barriers(kernel_index, stages):
    """The dQ loop converts two loop-invariant vectors (lse, delta) through the same scratch
    bytes, one after the other. A loop body that starts with ``gpu.async_wait`` needs no
    barrier at its start, but it still needs one between those two conversions: without it a
    fast warp overwrites the scratch while a slow one is still reading (seen on the H200 as
    wrong dQ rows with ``num_stages = 3``; the interpreter, one thread at a time, cannot see
    it)."""
    compiled = _attention_backward(kernel_index, stages)
    assert _unguarded_hazards(compiled.layout_ir.body) == []
