"""Barrier insertion: make every use of shared memory see the right data.

Input: Tile IR after :mod:`.allocate_shared_memory` (buffers have ``smem_offset``/``smem_bytes``).
Output: the same IR with ``gpu.barrier`` ops (``__syncthreads()``) inserted where needed.

Idea: threads of a block run at different speeds, so an access to shared memory may need to
wait for the other threads' accesses to the same bytes. Each op that touches shared memory
*writes* and/or *reads* byte ranges:

==========================  ====================================================
``gpu.local_alloc``         writes its buffer
``gpu.local_load``          reads its operand's buffer
``tile.dot``                reads its operands' buffers (the fragments are loaded there)
``gpu.convert_layout``,     write and read their scratch buffer (the barrier between the
``tile.reduce``             two is inside the op)
``gpu.alloc_ring``          writes its ring (the copies before the loop fill it)
``gpu.ring_load``           reads its ring
==========================  ====================================================

The ``cp.async`` pipeline (:mod:`.async_pipeline`) brings its own synchronisation: each
``gpu.async_wait`` ends with a barrier (so it counts as one here, and a loop body that starts
with it needs no other), and a ``gpu.async_copy`` in the loop writes the slot that every thread
finished reading before that barrier, so it races with nothing since.

Walking the ops in order and remembering what was accessed since the last barrier, a barrier
goes before an op when it would read bytes written since (read after write: the data may not be
there yet) or write bytes accessed since (write after read or write: another thread may still
need the old data). Reads after reads need none. A loop body that uses shared memory starts with
a barrier (its first write may meet the previous iteration's last reads), and after the loop
everything its body accessed counts as accessed.
"""

from __future__ import annotations

from ...ir.ops import Block, Function, Op, walk_ops

BARRIER = "gpu.barrier"
ASYNC_WAIT = "gpu.async_wait"

Span = tuple[int, int]


def _span(op: Op) -> Span | None:
    if "smem_bytes" not in op.attrs:
        return None
    start = op.attrs["smem_offset"]
    return start, start + op.attrs["smem_bytes"]


def accesses(op: Op) -> tuple[list[Span], list[Span]]:
    """(ranges ``op`` reads, ranges it writes) of shared memory."""
    if op.name in ("gpu.local_alloc", "gpu.alloc_ring"):
        return [], [s for s in (_span(op),) if s]
    if op.name == "gpu.async_copy":
        return [], []  # into the slot the last gpu.async_wait freed (see the docstring)
    if op.name in ("gpu.local_load", "gpu.ring_load", "tile.dot"):
        reads = []
        for operand in op.operands:
            source = operand.owner
            if isinstance(source, Op) and source.name == "tile.trans":  # a view of a slot
                source = source.operands[0].owner
            if isinstance(source, Op) and source.name in ("gpu.local_load", "gpu.ring_load"):
                source = source.operands[0].owner
            if isinstance(source, Op) and source.name in ("gpu.local_alloc", "gpu.alloc_ring") \
                    and _span(source):
                reads.append(_span(source))
        return reads, []
    span = _span(op)
    return ([span], [span]) if span else ([], [])


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def needs_barrier(reads: list[Span], writes: list[Span], read_since: list[Span],
                  written_since: list[Span]) -> bool:
    """Would these accesses race with those since the last barrier?"""
    return (any(_overlap(r, w) for r in reads for w in written_since)
            or any(_overlap(w, s) for w in writes for s in read_since + written_since))


def _insert(block: Block, read_since: list[Span], written_since: list[Span]) -> None:
    for op in list(block.ops):
        if op.name in (BARRIER, ASYNC_WAIT):  # a gpu.async_wait ends with bar.sync
            read_since.clear()
            written_since.clear()
            continue
        if op.regions:
            for region in op.regions:
                inner = [accesses(o) for o in walk_ops(region)]
                reads = [s for r, _ in inner for s in r]
                writes = [s for _, w in inner for s in w]
                if not reads and not writes:
                    continue
                # the body's first write may meet the previous iteration's last reads; a body
                # that starts with gpu.async_wait has that barrier already
                if not (region.ops and region.ops[0].name == ASYNC_WAIT):
                    region.ops.insert(0, Op(BARRIER, [], [], loc=op.loc))
                _insert(region, [], [])  # and the hazards inside one iteration
                read_since.extend(reads)
                written_since.extend(writes)
            continue
        reads, writes = accesses(op)
        if not reads and not writes:
            continue
        if needs_barrier(reads, writes, read_since, written_since):
            block.ops.insert(block.ops.index(op), Op(BARRIER, [], [], loc=op.loc))
            read_since.clear()
            written_since.clear()
        read_since.extend(reads)
        written_since.extend(writes)


def insert_barriers(fn: Function) -> Function:
    """Insert ``gpu.barrier`` ops into ``fn`` in place; returns ``fn``."""
    _insert(fn.body, [], [])
    return fn
