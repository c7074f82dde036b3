"""Shared-memory allocation by liveness: give every buffer its bytes.

Input: Tile IR after :mod:`.assign_layouts`.
Output: the same IR; each op that owns a shared-memory buffer gets the attributes ``smem_offset``
and ``smem_bytes``; the function gets ``fn.attrs["shared_memory_plan"]``, a
:class:`SharedMemoryPlan` that prints as a table (buffer, offset, size, live range); the pass
returns the block's total (static) shared memory.

Which ops own a buffer:

* ``gpu.local_alloc`` (a ``tl.dot`` operand): written there, read by its ``gpu.local_load``;
  live from the one to the last of the other;
* ``gpu.alloc_ring`` (the ``num_stages`` slots of a dot operand in a ``cp.async`` pipeline):
  live from before the loop until the ``gpu.async_wait`` after it;
* ``gpu.convert_layout`` (a tile changing layouts goes through shared memory) and a
  ``tile.reduce`` whose reduced dimension is spread over several warps (each warp leaves its
  partial results for the others): scratch, written and read inside the op itself.

Idea: as a register allocator does, number the ops in program order, give each buffer the
interval of op numbers during which it holds data (its *live range*), and let buffers whose
ranges do not overlap share bytes. A buffer defined outside a loop and used inside it stays live
to the end of the loop (the next iteration reads it again). Placement is *first fit*: biggest
buffers first, each at the lowest offset where it overlaps no placed buffer that is live at the
same time. :mod:`.insert_barriers` then makes the reuse safe.

The placement is a rule (``place_buffers(buffers) -> offsets``) that can be replaced, as a
learner's exercise does: ``GpuOptions(place_buffers=mine)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...ir.ops import Block, Function, Op, Value
from .assign_layouts import CONVERT_LAYOUT
from .dot_layouts import LOCAL_ALLOC, LOCAL_LOAD, RING_LOAD
from .layouts import BlockedLayout, distinct_warps

ALIGNMENT = 16  # bytes: ldmatrix rows and 128-bit accesses
ALLOC_RING = "gpu.alloc_ring"  # num_stages slots of a dot operand (.async_pipeline)


def element_bytes(element) -> int:
    """Bytes one element takes in a scratch buffer (pointers 8, booleans 1, bf16 as f32)."""
    if element.is_pointer:
        return 8
    return 4 if element.name == "bf16" else element.size_bytes


def buffer_bytes(op: Op) -> int:
    """The shared memory ``op`` owns (0 for most ops)."""
    if op.name in (LOCAL_ALLOC, ALLOC_RING):  # fp16/bf16 operands, 2 bytes each
        return op.result.type.numel * 2
    if op.name == CONVERT_LAYOUT and op.attrs.get("in_registers"):
        return 0  # a renumbering of each thread's registers (.register_maps)
    if op.name == CONVERT_LAYOUT:  # bf16 goes as its 16 bits here
        value = op.result
        bf16 = value.type.element.name == "bf16"
        return value.type.numel * (2 if bf16 else element_bytes(value.type.element))
    if op.name == "tile.reduce":
        source = op.operands[0]
        layout = op.layout.parent  # a reduction's result is a slice of its operand's layout
        if not isinstance(layout, BlockedLayout):
            return 0  # over #mma: shuffles within each warp only (.register_maps)
        warps = distinct_warps(layout, source.type.shape, op.attrs["axis"])
        if warps == 1:
            return 0
        outputs = op.result.type.numel
        return outputs * warps * element_bytes(source.type.element)
    return 0


# Kept for the callers that knew the scratch buffers only.
scratch_bytes = buffer_bytes


@dataclass
class LiveBuffer:
    """One buffer to place: its size and its live range (first and last op number)."""

    name: str
    size: int
    start: int
    end: int

    def live_with(self, other: LiveBuffer) -> bool:
        return not (self.end < other.start or other.end < self.start)


PlaceRule = Callable[[list[LiveBuffer]], list[int]]


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


def place_buffers(buffers: list[LiveBuffer]) -> list[int]:
    """First fit, biggest first: each buffer's offset, in the order of ``buffers``.

    A buffer goes at the lowest offset where it shares no byte with any buffer already placed
    whose live range overlaps its own. Offsets are multiples of 16; sizes already are.
    """
    offsets: dict[int, int] = {}
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].start))
    for i in order:
        buffer, offset = buffers[i], 0
        moved = True
        while moved:
            moved = False
            for j, placed in offsets.items():
                other = buffers[j]
                if (buffer.live_with(other) and offset < placed + other.size
                        and placed < offset + buffer.size):
                    offset = align(placed + other.size)
                    moved = True
        offsets[i] = offset
    return [offsets[i] for i in range(len(buffers))]


@dataclass
class Allocation:
    buffer: LiveBuffer
    op: Op
    offset: int


@dataclass
class SharedMemoryPlan:
    """The allocator's result: what lies where, and when."""

    allocations: list[Allocation]
    total: int

    def __str__(self) -> str:
        rows = [f"shared memory: {self.total} bytes",
                f"{'buffer':<12} {'op':<20} {'offset':>7} {'bytes':>7}  live (op numbers)"]
        for a in sorted(self.allocations, key=lambda a: (a.buffer.start, a.offset)):
            b = a.buffer
            rows.append(f"{b.name:<12} {a.op.name:<20} {a.offset:>7} {b.size:>7}  "
                        f"{b.start}..{b.end}")
        return "\n".join(rows)


def _number_ops(block: Block, loops: tuple, table: dict, counter: list) -> None:
    """Op number -> (op, enclosing loop ops); and each loop's last number (``table['end']``)."""
    for op in block.ops:
        table["ops"].append((counter[0], op, loops))
        table["number"][id(op)] = counter[0]
        counter[0] += 1
        inner = loops + (op,) if op.name in ("tile.for", "tile.while") else loops
        for region in op.regions:
            _number_ops(region, inner, table, counter)
        table["end"][id(op)] = counter[0] - 1


def live_buffers(fn: Function) -> list[tuple[LiveBuffer, Op]]:
    """Every buffer of ``fn`` with its live range (see the module docstring)."""
    table: dict = {"ops": [], "number": {}, "end": {}}
    _number_ops(fn.body, (), table, [0])
    users: dict[Value, list[tuple[int, tuple]]] = {}
    for number, op, loops in table["ops"]:
        for operand in op.operands:
            users.setdefault(operand, []).append((number, loops))
    found = []
    for number, op, loops in table["ops"]:
        size = buffer_bytes(op)
        if not size:
            continue
        end = number
        if op.name in (LOCAL_ALLOC, ALLOC_RING):
            # a ring's copies may still land until the ``gpu.async_wait`` after its loop
            after = 1 if op.name == ALLOC_RING else 0
            for use, use_loops in _reads(op, users, table):
                end = max(end, use)
                for loop in use_loops:  # used in a loop the buffer was made outside of
                    if loop not in loops:
                        end = max(end, table["end"][id(loop)] + after)
        name = f"%{op.result.name_hint or number}" if op.results else f"op{number}"
        found.append((LiveBuffer(f"#{len(found)} {name}"[:12], align(size), number, end), op))
    return found


def _reads(alloc: Op, users: dict, table: dict) -> list[tuple[int, tuple]]:
    """Where a ``local_alloc``'s buffer is read: by its ``local_load`` ops, and by the ops
    that use what those load (the dot reads its fragments from shared memory itself)."""
    reads = []
    for number, loops in users.get(alloc.result, []):
        reads.append((number, loops))
        load = table["ops"][number][1]
        if load.name in (LOCAL_LOAD, RING_LOAD):
            reads.extend(users.get(load.result, []))
    return reads


def allocate_shared_memory(fn: Function, rule: PlaceRule = place_buffers) -> int:
    """Place every buffer of ``fn``; record the plan; return the total bytes."""
    found = live_buffers(fn)
    buffers = [b for b, _ in found]
    offsets = rule([LiveBuffer(b.name, b.size, b.start, b.end) for b in buffers])
    _check_offsets(rule, buffers, offsets)
    allocations = []
    for (buffer, op), offset in zip(found, offsets, strict=True):
        op.attrs["smem_offset"] = offset
        op.attrs["smem_bytes"] = buffer.size
        allocations.append(Allocation(buffer, op, offset))
    total = max((a.offset + a.buffer.size for a in allocations), default=0)
    fn.attrs["shared_memory_plan"] = SharedMemoryPlan(allocations, total)
    return total


def _check_offsets(rule: PlaceRule, buffers: list[LiveBuffer], offsets) -> None:
    name = getattr(rule, "__name__", "the placement rule")
    if not isinstance(offsets, (list, tuple)) or len(offsets) != len(buffers):
        raise ValueError(f"{name} must return one offset per buffer ({len(buffers)}), "
                         f"got {offsets!r}")
    for buffer, offset in zip(buffers, offsets, strict=True):
        if not isinstance(offset, int) or offset < 0 or offset % ALIGNMENT:
            raise ValueError(f"{name} gave buffer {buffer.name} the offset {offset!r}: offsets "
                             f"must be non-negative multiples of {ALIGNMENT}")


__all__ = ["LOCAL_LOAD", "LiveBuffer", "SharedMemoryPlan", "allocate_shared_memory",
           "buffer_bytes", "live_buffers", "place_buffers"]
