"""How the GPU back end lowers ``tl.dot`` onto tensor cores, and ``tl.trans``.

By the time the lowering sees a ``tile.dot``, the passes have rewritten each operand as

    %s = gpu.local_alloc %a  {layout = #shared<...>, smem_offset = ...}   (write to shared memory)
    %f = gpu.local_load %s   {layout = #dot_op<a, #mma<...>>}              (read into fragments)

and given the dot and its accumulator the ``#mma`` layout (``passes/gpu/mma_layouts.py``).

* ``gpu.local_alloc``: every thread writes the elements it holds to shared memory, at the
  places the ``#shared`` layout's swizzle gives them (vector stores where a thread holds
  consecutive elements).
* ``gpu.local_load`` emits nothing by itself: it notes where the operand lies. The dot then
  loads fragments one K step (16) at a time, right before the ``mma`` instructions that use
  them, so only one step's fragments are live in registers next to the accumulator.
* ``tile.dot``: per K step, ``ldmatrix.x4`` brings each warp its A fragments (one per 16 rows
  it owns) and B fragments (two 8-column tiles per ``ldmatrix``), then one
  ``mma.sync.m16n8k16`` per (16 rows, 8 columns) tile of the warp's accumulator.
* ``tile.trans`` moves no data: the transposed tile's layout is the blocked layout with its
  dimensions swapped, and each thread keeps its registers (in transposed order).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir.ops import Op, Value, dot_parts
from ...passes.gpu.layouts import BlockedLayout, elements_per_thread
from ...passes.gpu.mma_layouts import (
    INSTR_K,
    INSTR_M,
    INSTR_N,
    DotOperandLayout,
    MmaLayout,
    SharedLayout,
    ldmatrix_rows,
)
from .. import llvm_core
from . import nvvm
from .ir_int import IRInt, as_value
from .thread_tile import ThreadTile


@dataclass
class SharedOperand:
    """A dot operand waiting in shared memory: what ``gpu.local_load`` defines."""

    shared: SharedLayout
    shape: tuple[int, int]
    byte_offset: int
    element_bytes: int
    layout: DotOperandLayout


class DotLowering:
    """Mixed into ``KernelLowering`` (``lowering.py``)."""

    def ir_int(self, value: ir.Value) -> IRInt:
        return IRInt(self.builder, value)

    def shared_byte_address(self, byte_offset) -> ir.Value:
        """The 32-bit shared-memory address of ``byte_offset`` (an int or an IRInt)."""
        return nvvm.shared_address_32(self.builder, self.shared_address(as_value(byte_offset)))

    # ----- tl.trans ----------------------------------------------------------------------------
    def lower_trans(self, op: Op) -> None:
        source = self.values[op.operands[0]]
        if isinstance(source, SharedOperand):  # a ring slot, read as the transposed tile
            order = source.shared.order
            self.define(op, SharedOperand(
                SharedLayout((order[1], order[0]), source.shared.vec, source.shared.rule),
                tuple(op.result.type.shape), source.byte_offset, source.element_bytes,
                op.layout))
            return
        source = self.tile(op.operands[0])
        rows, cols = elements_per_thread(source.layout, source.shape)
        values = [source.values[r * cols + c] for c in range(cols) for r in range(rows)]
        self.define(op, ThreadTile(op.layout, op.result.type.shape, values))

    # ----- operands into shared memory -------------------------------------------------------
    def lower_local_alloc(self, op: Op) -> None:
        source = self.tile(op.operands[0])
        shared: SharedLayout = op.layout
        shape = op.result.type.shape
        element = op.result.type.element
        stored = llvm_core.memory_type(element)
        size = stored.width // 8 if isinstance(stored, ir.IntType) else element.size_bytes
        base = op.attrs["smem_offset"]
        b = self.builder
        width = self._store_width(source, shared)
        coordinates = self.coordinates(source.layout, shape)
        data = [llvm_core.to_memory(b, v, element) for v in source.values]
        for start in range(0, len(data), width):
            coordinate = tuple(self.ir_int(c) for c in coordinates[start])
            offset = shared.element_offset(shape, coordinate)
            address = self.shared_address(as_value(offset * size + base))
            if width == 1:
                b.store(data[start], address, align=size)
                continue
            vector = ir.Constant(ir.VectorType(stored, width), ir.Undefined)
            for i in range(width):
                vector = b.insert_element(vector, data[start + i], self.const(i))
            b.store(vector, address, align=size * width)

    @staticmethod
    def _store_width(source: ThreadTile, shared: SharedLayout) -> int:
        """How many consecutive registers go to consecutive shared addresses: the thread's run
        along the last dimension, when that is also the contiguous one in shared memory."""
        layout = source.layout
        if not isinstance(layout, BlockedLayout) or layout.order[0] != 1 or shared.order[0] != 1:
            return 1
        return max(1, min(layout.size_per_thread[1], source.shape[1], shared.vec))

    def lower_local_load(self, op: Op) -> None:
        alloc = op.operands[0].owner
        element = op.result.type.element
        self.values[op.result] = SharedOperand(
            alloc.layout, op.result.type.shape, alloc.attrs["smem_offset"],
            llvm_core.memory_type(element).width // 8 if element.name == "bf16"
            else element.size_bytes, op.layout)

    # ----- the cp.async pipeline's rings (passes/gpu/async_pipeline.py) ------------------------
    def lower_alloc_ring(self, op: Op) -> None:
        self.values[op.result] = op  # no code: the copies and reads find the ring's bytes

    def _slot_offset(self, ring: Op, slot: Value) -> IRInt:
        """The byte offset of slot ``slot`` (an i32 known when the kernel runs) of ``ring``."""
        slot_bytes = ring.result.type.numel // ring.attrs["num_stages"] * 2
        return self.ir_int(self.scalar(slot)) * slot_bytes + ring.attrs["smem_offset"]

    def lower_async_copy(self, op: Op) -> None:
        """Each thread copies its elements of the tile, a group of consecutive ones per
        ``cp.async`` (16 bytes: 8 fp16), to the places the ring's swizzled layout gives them;
        masked-off groups are zero-filled. A group too narrow for ``cp.async`` (2 bytes: a mask
        or an alignment that allows only single elements) is loaded and stored instead, which
        the wait's barrier orders just as well."""
        ring_value, slot, pointers, mask = op.operands
        ring: Op = ring_value.owner
        shared: SharedLayout = ring.layout
        shape = ring.result.type.shape[1:]
        element = ring.result.type.element
        stored = llvm_core.memory_type(element)
        b = self.builder
        base = self._slot_offset(ring, slot)
        pointer_tile, masks = self.tile(pointers), self.tile(mask).values
        width, groups = self._groups(op, pointer_tile)
        if shared.order[0] != 1:  # consecutive registers are not consecutive in shared memory
            width, groups = 1, [range(i, i + 1) for i in range(len(pointer_tile.values))]
        coordinates = self.coordinates(pointer_tile.layout, shape)
        for group in groups:
            first = group[0]
            coordinate = tuple(self.ir_int(c) for c in coordinates[first])
            offset = shared.element_offset(shape, coordinate) * 2 + base
            if width * 2 >= 4:
                nvvm.cp_async(b, self.shared_byte_address(offset), pointer_tile.values[first],
                              width * 2, masks[first])
                continue
            (value,) = nvvm.predicated_load(b, pointer_tile.values[first], masks[first],
                                            [ir.Constant(stored, 0)])
            b.store(value, self.shared_address(as_value(offset)), align=2)

    def lower_async_commit(self, op: Op) -> None:
        nvvm.cp_async_commit(self.builder)

    def lower_async_wait(self, op: Op) -> None:
        """Wait for all but the newest ``pending`` groups, then for every thread: each
        thread's copies have landed, so all of them are visible to every thread."""
        nvvm.cp_async_wait(self.builder, op.attrs["pending"])
        nvvm.barrier(self.builder)

    def lower_ring_load(self, op: Op) -> None:
        ring: Op = op.operands[0].owner
        self.values[op.result] = SharedOperand(
            ring.layout, op.result.type.shape, self._slot_offset(ring, op.operands[1]), 2,
            op.layout)

    # ----- the dot -----------------------------------------------------------------------------
    def _fragments(self, operand: SharedOperand, outer_start, outer_step, k_start,
                   count: int) -> list[ir.Value]:
        """``ldmatrix.x{count}`` of one operand piece; trans when K is not contiguous."""
        index = operand.layout.index
        k_dim = 1 if index == 0 else 0
        trans = operand.shared.order[0] != k_dim
        lane = self.ir_int(self.lane)
        coordinate = ldmatrix_rows(index, trans, outer_start, outer_step, k_start, lane)
        offset = operand.shared.element_offset(operand.shape, coordinate)
        address = self.shared_byte_address(offset * operand.element_bytes
                                           + operand.byte_offset)
        return nvvm.ldmatrix(self.builder, address, count, trans)

    def _packed_fragment(self, a: ThreadTile, element, mr: int, kr: int,
                         reps_k: int) -> list[ir.Value]:
        """The four 32-bit A registers of piece (``mr``, ``kr``) from a ``#dot_op<a>`` tile in
        registers: its values run (repetition, k step, register, half), two halves a register
        (``mma_layouts.operand_coordinates``), packed as the instruction wants them."""
        b = self.builder
        registers = []
        for r in range(4):
            first = ((mr * reps_k + kr) * 4 + r) * 2
            halves = [llvm_core.to_memory(b, v, element) for v in a.values[first:first + 2]]
            pair = ir.Constant(ir.VectorType(halves[0].type, 2), ir.Undefined)
            for h, half in enumerate(halves):
                pair = b.insert_element(pair, half, self.const(h))
            registers.append(b.bitcast(pair, ir.IntType(32)))
        return registers

    def lower_dot(self, op: Op) -> None:
        a_value, b_value, acc_value = dot_parts(op)
        a, bb = self.values[a_value], self.values[b_value]
        assert isinstance(bb, SharedOperand), "the GPU passes stage B through shared memory"
        assert isinstance(a, (SharedOperand, ThreadTile)), "A: shared memory or fragments"
        layout: MmaLayout = op.layout
        wm, wn = layout.warps_per_block
        m, n = op.result.type.shape
        k = a.shape[1]
        reps_m, reps_n = layout.repetitions((m, n))
        if acc_value is not None:
            acc = list(self.tile(acc_value).values)
        else:
            acc = [ir.Constant(nvvm.f32, 0.0)] * (reps_m * reps_n * 4)
        warp = self.ir_int(self.warp)
        warp_m, warp_n = warp // wn, warp % wn
        kind = "bf16" if op.operands[0].type.element.name == "bf16" else "f16"
        for k_start in range(0, k, INSTR_K):
            if isinstance(a, ThreadTile):  # already in registers (P of attention)
                a_fragments = [self._packed_fragment(a, op.operands[0].type.element, mr,
                                                    k_start // INSTR_K, k // INSTR_K)
                               for mr in range(reps_m)]
            else:
                a_fragments = [self._fragments(a, mr * INSTR_M * wm + warp_m * INSTR_M, 0,
                                               k_start, 4) for mr in range(reps_m)]
            b_fragments: list[list[ir.Value]] = []
            for nr in range(0, reps_n, 2):
                outer = nr * INSTR_N * wn + warp_n * INSTR_N
                if nr + 1 < reps_n:
                    registers = self._fragments(bb, outer, INSTR_N * wn, k_start, 4)
                    b_fragments += [registers[:2], registers[2:]]
                else:
                    b_fragments.append(self._fragments(bb, outer, 0, k_start, 2))
            for mr in range(reps_m):
                for nr in range(reps_n):
                    first = (mr * reps_n + nr) * 4
                    acc[first:first + 4] = nvvm.mma_m16n8k16(
                        self.builder, a_fragments[mr], b_fragments[nr], acc[first:first + 4],
                        kind)
        self.define(op, ThreadTile(layout, (m, n), acc))
