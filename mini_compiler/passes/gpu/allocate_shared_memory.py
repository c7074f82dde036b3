"""Shared-memory allocation: give every op that exchanges data between warps its bytes.

Input: Tile IR after :mod:`.assign_layouts`.
Output: the same IR; each op that needs scratch shared memory gets the attributes
``smem_offset`` and ``smem_bytes``; the return value is the block's total (static) shared memory.

Which ops need it: a ``tile.reduce`` whose reduced dimension is spread over several warps (each
warp leaves one partial result per output element, which the others must read), and every
``gpu.convert_layout`` (all of a tile goes through shared memory on its way between layouts).

Idea: allocate by liveness, as for registers. A buffer is live from the op that writes it to the
last op that reads it; buffers whose lifetimes do not overlap may share bytes. Every scratch
buffer here is written and read inside one op, so lifetimes never overlap and all buffers start
at offset 0; :mod:`.insert_barriers` then makes the reuse safe. (A ``tl.dot`` operand staged in
shared memory would live across many ops, and this allocator would place it apart.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir.ops import Function, Op, walk_ops
from .assign_layouts import CONVERT_LAYOUT
from .layouts import distinct_warps


def element_bytes(element) -> int:
    """Bytes one element takes in shared memory (pointers 8, booleans 1)."""
    if element.is_pointer:
        return 8
    return 4 if element.name == "bf16" else element.size_bytes  # bf16 is exchanged as f32


def scratch_bytes(op: Op) -> int:
    """The shared memory ``op`` needs while it runs (0 for most ops)."""
    if op.name == CONVERT_LAYOUT:
        value = op.result
        return value.type.numel * element_bytes(value.type.element)
    if op.name == "tile.reduce":
        source = op.operands[0]
        layout = op.layout.parent  # a reduction's result is a slice of its operand's layout
        warps = distinct_warps(layout, source.type.shape, op.attrs["axis"])
        if warps == 1:
            return 0
        outputs = op.result.type.numel
        return outputs * warps * element_bytes(source.type.element)
    return 0


@dataclass
class _Buffer:
    op: Op
    start: int  # index of the first op that uses it
    end: int  # index of the last op that uses it
    size: int
    offset: int = 0


def _align(n: int, alignment: int = 16) -> int:
    return (n + alignment - 1) // alignment * alignment


def allocate_shared_memory(fn: Function) -> int:
    """Place every scratch buffer of ``fn`` (first fit over live ranges); return total bytes."""
    buffers: list[_Buffer] = []
    for index, op in enumerate(walk_ops(fn.body)):
        size = scratch_bytes(op)
        if size:
            buffers.append(_Buffer(op, index, index, _align(size)))
    placed: list[_Buffer] = []
    for buffer in sorted(buffers, key=lambda b: -b.size):
        offset = 0
        for other in sorted(placed, key=lambda b: b.offset):
            overlaps_in_time = not (buffer.end < other.start or other.end < buffer.start)
            if overlaps_in_time and offset + buffer.size > other.offset and (
                    offset < other.offset + other.size):
                offset = other.offset + other.size
        buffer.offset = offset
        placed.append(buffer)
    for buffer in buffers:
        buffer.op.attrs["smem_offset"] = buffer.offset
        buffer.op.attrs["smem_bytes"] = buffer.size
    return max((b.offset + b.size for b in buffers), default=0)
