"""The liveness-based shared-memory allocator (``gpu.allocate_shared_memory``) and barrier
insertion from read/write hazards (``gpu.insert_barriers``)."""

from __future__ import annotations

import itertools
import random

import pytest

from mini_compiler.ir.ops import walk_ops
from mini_compiler.passes.gpu.allocate_shared_memory import LiveBuffer, place_buffers
from mini_compiler.passes.gpu.insert_barriers import needs_barrier

from .test_dot_gpu import compile_lesson_matmul


def _share_bytes(a: LiveBuffer, oa: int, b: LiveBuffer, ob: int) -> bool:
    return oa < ob + b.size and ob < oa + a.size


@pytest.mark.parametrize("seed", range(20))
def test_buffers_live_at_the_same_time_never_share_bytes(seed):
    rng = random.Random(seed)
    buffers = []
    for i in range(rng.randint(1, 12)):
        start = rng.randint(0, 40)
        buffers.append(LiveBuffer(f"b{i}", 16 * rng.randint(1, 64), start,
                                  start + rng.randint(0, 15)))
    offsets = place_buffers(buffers)
    assert all(o % 16 == 0 and o >= 0 for o in offsets)
    for (a, oa), (b, ob) in itertools.combinations(zip(buffers, offsets, strict=True), 2):
        if a.live_with(b):
            assert not _share_bytes(a, oa, b, ob), (a, oa, b, ob)


def test_buffers_live_at_different_times_reuse_bytes():
    buffers = [LiveBuffer("a", 4096, 0, 5), LiveBuffer("b", 4096, 1, 5),
               LiveBuffer("epilogue", 8192, 9, 9)]
    offsets = place_buffers(buffers)
    assert offsets[0] != offsets[1]
    assert offsets[2] == 0  # the epilogue's scratch takes the operands' bytes once they are dead
    assert max(o + b.size for o, b in zip(offsets, buffers, strict=True)) == 8192


def test_lesson_matmul_plan():
    compiled = compile_lesson_matmul(block=(64, 64, 32))
    plan = compiled.layout_ir.attrs["shared_memory_plan"]
    operands = [a for a in plan.allocations if a.op.name == "gpu.local_alloc"]
    epilogue = [a for a in plan.allocations if a.op.name == "gpu.convert_layout"]
    assert [a.buffer.size for a in operands] == [64 * 32 * 2, 32 * 64 * 2]
    assert operands[0].offset != operands[1].offset
    assert epilogue and epilogue[0].offset == 0  # reuses the operands' bytes
    assert plan.total == compiled.shared_bytes == 64 * 64 * 2
    # the operand buffers live until the dot, which reads them with ldmatrix (op numbers are
    # those of the IR the allocator saw, before barriers were inserted)
    ops = [op for op in walk_ops(compiled.layout_ir.body) if op.name != "gpu.barrier"]
    dot_number = next(i for i, op in enumerate(ops) if op.name == "tile.dot")
    assert all(a.buffer.end == dot_number for a in operands)
    text = compiled.asm["shared_memory"]
    assert "gpu.local_alloc" in text and "live" in text and str(plan.total) in text


def test_a_buffer_made_before_a_loop_and_read_in_it_lives_to_the_loop_end():
    """Staged once before the loop and read by every iteration: its bytes stay taken until
    the loop ends, not only until the read's place in the first iteration."""
    from mini_compiler.passes.gpu.allocate_shared_memory import live_buffers

    fn = compile_lesson_matmul(block=(64, 64, 32)).layout_ir
    outer = fn.body.ops
    loop = next(op for op in outer if op.name == "tile.for")
    body = loop.regions[0].ops
    alloc = next(op for op in body if op.name == "gpu.local_alloc")
    alloc.operands = [loop.operands[3]]  # any tile defined before the loop will do
    body.remove(alloc)
    outer.insert(outer.index(loop), alloc)
    ops = list(walk_ops(fn.body))
    loop_end = ops.index(loop) + sum(1 for _ in walk_ops(loop.regions[0]))
    found = {id(op): buffer for buffer, op in live_buffers(fn)}
    assert found[id(alloc)].start < ops.index(loop)
    assert found[id(alloc)].end == loop_end


@pytest.mark.parametrize("reads,writes,read_since,written_since,expected", [
    ([(0, 64)], [], [], [(0, 64)], True),  # read after write
    ([], [(0, 64)], [(32, 96)], [], True),  # write after read
    ([], [(0, 64)], [], [(0, 64)], True),  # write after write
    ([(0, 64)], [], [(0, 64)], [], False),  # read after read
    ([(0, 64)], [], [], [(64, 128)], False),  # disjoint bytes
])
def test_barriers_follow_read_write_hazards(reads, writes, read_since, written_since, expected):
    assert needs_barrier(reads, writes, read_since, written_since) is expected
