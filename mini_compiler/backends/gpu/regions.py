"""How the GPU back end lowers ops with regions or that exchange data between threads: loops
(``tile.for``, ``tile.while``: every register of a carried value is a phi), ``tile.if`` (phis
in the join block), and reductions (within a thread, across a warp with butterfly shuffles,
across warps through shared memory)."""

from __future__ import annotations

import itertools

from llvmlite import ir

from ...ir.ops import Op
from ...passes.gpu.layouts import (
    BlockedLayout,
    SliceLayout,
    distinct_lanes,
    distinct_warps,
    lane_stride,
    warp_stride,
)
from ...passes.gpu.mma_layouts import MmaLayout
from ...passes.gpu.register_maps import mma_reduction
from .. import llvm_core
from ..llvm_core import loop_condition
from . import nvvm
from .thread_tile import ThreadTile, bit_index, register_bytes

_bit_index, _register_bytes = bit_index, register_bytes


class RegionLowering:
    def lower_for(self, op: Op) -> None:
        """A counted loop; every register of a carried value becomes a phi in the header.

        The test is ``range``'s: ``iv < upper`` for a positive step, ``iv > upper`` otherwise.
        """
        b = self.builder
        lower, upper, step = (self.scalar(v) for v in op.operands[:3])
        inits = [self.values[v] for v in op.operands[3:]]
        preheader = b.block
        header = b.append_basic_block("loop.header")
        body_block = b.append_basic_block("loop.body")
        exit_block = b.append_basic_block("loop.exit")
        b.branch(header)
        b.position_at_end(header)
        induction = b.phi(lower.type, name="iv")
        induction.add_incoming(lower, preheader)
        carried, phis = self._carried_phis(inits, preheader)
        b.cbranch(loop_condition(b, induction, upper, step), body_block, exit_block)
        b.position_at_end(body_block)
        region = op.regions[0]
        self.values[region.args[0]] = induction
        for arg, value in zip(region.args[1:], carried, strict=False):
            self.values[arg] = value
        for inner in region.ops:
            if inner.name == "tile.yield":
                yielded = [self.values[v] for v in inner.operands]
            else:
                self.lower_op(inner)
        latch = b.block
        induction.add_incoming(b.add(induction, step), latch)
        self._close_phis(phis, yielded, latch)
        b.branch(header)
        b.position_at_end(exit_block)
        for result, value in zip(op.results, carried, strict=False):
            self.values[result] = value

    def lower_while(self, op: Op) -> None:
        """A loop whose header runs the condition region; carried registers are phis."""
        b = self.builder
        before, body = op.regions
        inits = [self.values[v] for v in op.operands]
        preheader = b.block
        header = b.append_basic_block("while.header")
        body_block = b.append_basic_block("while.body")
        exit_block = b.append_basic_block("while.exit")
        b.branch(header)
        b.position_at_end(header)
        carried, phis = self._carried_phis(inits, preheader)
        for region in (before, body):
            for arg, value in zip(region.args, carried, strict=True):
                self.values[arg] = value
        go = self._lower_region(before)[0]
        b.cbranch(go, body_block, exit_block)
        b.position_at_end(body_block)
        yielded = self._lower_region(body)
        latch = b.block
        self._close_phis(phis, yielded, latch)
        b.branch(header)
        b.position_at_end(exit_block)
        for result, value in zip(op.results, carried, strict=True):
            self.values[result] = value

    def _carried_phis(self, inits: list, preheader) -> tuple[list, list[list[ir.PhiInstr]]]:
        """One phi per register of each loop-carried value, entered from ``preheader``; returns
        the carried values as the loop body sees them and the phis, one row per value."""
        b = self.builder
        carried: list[ir.Value | ThreadTile] = []
        phis: list[list[ir.PhiInstr]] = []
        for init in inits:
            registers = init.values if isinstance(init, ThreadTile) else [init]
            row = []
            for register in registers:
                phi = b.phi(register.type)
                phi.add_incoming(register, preheader)
                row.append(phi)
            phis.append(row)
            carried.append(ThreadTile(init.layout, init.shape, list(row))
                           if isinstance(init, ThreadTile) else row[0])
        return carried, phis

    @staticmethod
    def _close_phis(phis: list[list[ir.PhiInstr]], yielded: list, latch) -> None:
        """Feed what the body yields back into the header's phis, from ``latch``."""
        for row, value in zip(phis, yielded, strict=True):
            registers = value.values if isinstance(value, ThreadTile) else [value]
            for phi, register in zip(row, registers, strict=True):
                phi.add_incoming(register, latch)

    def _lower_region(self, region) -> list:
        """Lower a region's ops; return what its ``tile.yield`` yields."""
        yielded = []
        for inner in region.ops:
            if inner.name == "tile.yield":
                yielded = [self.values[v] for v in inner.operands]
            else:
                self.lower_op(inner)
        return yielded

    def lower_if(self, op: Op) -> None:
        """Two blocks and a join; every register of a result becomes a phi in the join."""
        b = self.builder
        then_block = b.append_basic_block("if.then")
        else_block = b.append_basic_block("if.else")
        join = b.append_basic_block("if.join")
        b.cbranch(self.scalar(op.operands[0]), then_block, else_block)
        incoming = []
        for region, block in zip(op.regions, (then_block, else_block), strict=True):
            b.position_at_end(block)
            yielded = []
            for inner in region.ops:
                if inner.name == "tile.yield":
                    yielded = [self.values[v] for v in inner.operands]
                else:
                    self.lower_op(inner)
            incoming.append((b.block, yielded))
            b.branch(join)
        b.position_at_end(join)
        for index, result in enumerate(op.results):
            sides = [(block, values[index]) for block, values in incoming]
            first = sides[0][1]
            registers = first.values if isinstance(first, ThreadTile) else [first]
            phis = []
            for k, register in enumerate(registers):
                phi = b.phi(register.type)
                for block, value in sides:
                    phi.add_incoming(value.values[k] if isinstance(value, ThreadTile) else value,
                                     block)
                phis.append(phi)
            self.values[result] = (ThreadTile(first.layout, first.shape, phis)
                                   if isinstance(first, ThreadTile) else phis[0])

    def lower_reduce(self, op: Op) -> None:
        source = self.tile(op.operands[0])
        layout = source.layout
        if isinstance(layout, MmaLayout):
            self._reduce_mma(op, source)
            return
        assert isinstance(layout, BlockedLayout), "assign_layouts gives reductions a blocked input"
        axis = op.attrs["axis"]
        kind = op.attrs["kind"]
        element = op.operands[0].type.element
        shape = source.shape
        b = self.builder

        def combine(x: ir.Value, y: ir.Value) -> ir.Value:
            return llvm_core.reduce_combine(b, kind, element, x, y)

        # 1. within a thread: fold the elements along the axis.
        counts = source.counts
        other_counts = [c for d, c in enumerate(counts) if d != axis]
        partials = []
        for rest in itertools.product(*(range(c) for c in other_counts)):
            acc = None
            for k in range(counts[axis]):
                ks = list(rest[:axis]) + [k] + list(rest[axis:])
                index = 0
                for kk, n in zip(ks, counts, strict=False):
                    index = index * n + kk
                value = source.values[index]
                acc = value if acc is None else combine(acc, value)
            partials.append(acc)
        # 2. across the lanes of a warp: butterfly shuffles over the lanes along the axis.
        lanes = distinct_lanes(layout, shape, axis)
        offsets = list(self.butterfly_offsets(lanes, lane_stride(layout, axis)))
        partials = [nvvm.warp_reduce(b, p, combine, offsets) for p in partials]
        # 3. across warps: each warp leaves its partials in shared memory, then all combine them.
        warps = distinct_warps(layout, shape, axis)
        result_shape = op.result.type.shape
        if warps > 1:
            size = _register_bytes(element)
            base = op.attrs["smem_offset"]
            warp_along_axis = b.and_(
                b.lshr(self.warp, self.const(_bit_index(warp_stride(layout, axis)))),
                self.const(warps - 1))
            if result_shape:
                slots = [self.linear_index(c, result_shape)
                         for c in self.coordinates(SliceLayout(axis, layout), result_shape)]
            else:
                slots = [self.const(0)]
            for slot, partial in zip(slots, partials, strict=False):
                index = b.add(b.mul(slot, self.const(warps)), warp_along_axis)
                address = self.shared_address(b.add(b.mul(index, self.const(size)),
                                                    self.const(base)))
                b.store(partial, address, align=size)
            nvvm.barrier(b)
            combined = []
            for slot in slots:
                acc = None
                for w in range(warps):
                    index = b.add(b.mul(slot, self.const(warps)), self.const(w))
                    address = self.shared_address(b.add(b.mul(index, self.const(size)),
                                                        self.const(base)))
                    value = b.load(address, typ=partials[0].type, align=size)
                    acc = value if acc is None else combine(acc, value)
                combined.append(acc)
            partials = combined
        if not result_shape:
            self.define(op, partials[0])
        else:
            self.define(op, ThreadTile(op.layout, result_shape, partials))

    def _reduce_mma(self, op: Op, source: ThreadTile) -> None:
        """A row (or column) statistic of a ``#mma`` tile: fold each group of the thread's
        registers, then combine across the lanes that share the row (``shfl.xor``); no warp
        holds part of another's rows, so no shared memory (``register_maps.mma_reduction``)."""
        axis, kind = op.attrs["axis"], op.attrs["kind"]
        element = op.operands[0].type.element
        b = self.builder
        groups, offsets = mma_reduction(source.layout, source.shape, axis)

        def combine(x: ir.Value, y: ir.Value) -> ir.Value:
            return llvm_core.reduce_combine(b, kind, element, x, y)

        partials = []
        for group in groups:
            acc = source.values[group[0]]
            for index in group[1:]:
                acc = combine(acc, source.values[index])
            partials.append(nvvm.warp_reduce(b, acc, combine, offsets))
        self.define(op, ThreadTile(op.layout, op.result.type.shape, partials))
