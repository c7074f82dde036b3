"""Barrier insertion: make reuse of shared memory between ops safe.

Input: Tile IR after :mod:`.allocate_shared_memory` (ops with ``smem_offset``/``smem_bytes``).
Output: the same IR with ``gpu.barrier`` ops (``__syncthreads()``) inserted where needed.

Idea: threads of a block run at different speeds. Inside one op the lowering already puts a
barrier between the writes and the reads of its scratch buffer. Between two ops that use
overlapping bytes, a fast warp could start writing the second op's data while a slow warp is still
reading the first op's: a write-after-read hazard. So, walking the ops in order, remember the byte
ranges touched since the last barrier and insert a barrier before any op whose range overlaps one
of them. Ops that touch disjoint bytes need none. A loop body that uses shared memory starts
with a barrier (its first op may overlap the last op of the previous iteration, or of the code
before the loop), and after the loop every range the body used counts as touched.
"""

from __future__ import annotations

from ...ir.ops import Block, Function, Op, walk_ops

BARRIER = "gpu.barrier"


def _range(op: Op) -> tuple[int, int] | None:
    if "smem_bytes" not in op.attrs:
        return None
    start = op.attrs["smem_offset"]
    return start, start + op.attrs["smem_bytes"]


def _insert(block: Block, touched: list[tuple[int, int]]) -> None:
    for op in list(block.ops):
        if op.name == BARRIER:
            touched.clear()
            continue
        if op.regions:
            for region in op.regions:
                spans = [s for s in (_range(inner) for inner in walk_ops(region)) if s]
                if spans:
                    region.ops.insert(0, Op(BARRIER, [], [], loc=op.loc))
                    _insert(region, [])
                    touched.extend(spans)
            continue
        span = _range(op)
        if span is not None:
            if any(span[0] < end and start < span[1] for start, end in touched):
                barrier = Op(BARRIER, [], [], loc=op.loc)
                block.ops.insert(block.ops.index(op), barrier)
                touched.clear()
            touched.append(span)


def insert_barriers(fn: Function) -> Function:
    """Insert ``gpu.barrier`` ops into ``fn`` in place; returns ``fn``."""
    _insert(fn.body, [])
    return fn
