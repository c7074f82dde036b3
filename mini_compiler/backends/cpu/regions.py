"""How the CPU back end lowers ops with regions or a loop of their own: ``tile.for``,
``tile.while``, ``tile.if`` (carried values in stack slots), reductions, scans, reshapes and
``tl.dot`` (a triple loop)."""

from __future__ import annotations

from llvmlite import ir

from ...ir.ops import (
    Op,
    Value,
    dot_parts,
    for_parts,
)
from ...ir.types import TileType
from .. import llvm_core
from ..llvm_core import (
    F16,
    F32,
    F64,
    I1,
    I64,
    loop_condition,
    row_major_strides,
)
from ..llvm_core import register_type as compute_type

_row_major_strides = row_major_strides
PTR = ir.PointerType()
convert_element = llvm_core.convert


class RegionLowering:
    def store_value_into(self, v: Value, target) -> None:
        """Copy ``v`` (tile or scalar) into ``target`` (an array, or a scalar slot)."""
        if v.type.is_scalar:
            self.builder.store(self.scalars[v], target)
            return
        element = compute_type(v.type.element)

        def copy(idx):
            slot = self.builder.gep(target, [self.flat_index(v.type.shape, idx)],
                                    source_etype=element)
            self.builder.store(self.element(v, idx), slot)

        self.loop_nest(v.type.shape, copy)

    def slot_for(self, type_: TileType) -> ir.Value:
        if type_.is_scalar:
            return self.alloca(compute_type(type_.element))
        return self.alloca_tile(type_)

    def bind_slot(self, v: Value, slot: ir.Value) -> None:
        if v.type.is_scalar:
            self.scalars[v] = self.builder.load(slot, typ=compute_type(v.type.element))
        else:
            self.buffers[v] = slot

    def lower_for(self, op: Op) -> None:
        b = self.builder
        lower, upper, step, inits = for_parts(op)
        body = op.regions[0]
        carried = body.args[1:]
        slots = [self.slot_for(v.type) for v in carried]
        for init, slot in zip(inits, slots, strict=False):
            self.store_value_into(init, slot)
        iv_type = compute_type(lower.type.element)
        iv_slot = self.alloca(iv_type)
        b.store(self.scalars[lower], iv_slot)
        fn = b.function
        header = fn.append_basic_block("for_header")
        loop_body = fn.append_basic_block("for_body")
        exit_block = fn.append_basic_block("for_exit")
        b.branch(header)
        b.position_at_end(header)
        iv = b.load(iv_slot, typ=iv_type)
        b.cbranch(loop_condition(b, iv, self.scalars[upper], self.scalars[step]), loop_body,
                  exit_block)
        b.position_at_end(loop_body)
        self.scalars[body.args[0]] = iv
        for arg, slot in zip(carried, slots, strict=False):
            self.bind_slot(arg, slot)
        yielded = self.lower_block(body)
        # Compute every new carried value before overwriting any slot (a yield may swap values).
        staged = []
        for v in yielded:
            if v.type.is_scalar or (v in self.buffers and v not in carried):
                staged.append((v, None))
            else:
                temp = self.slot_for(v.type)
                self.store_value_into(v, temp)
                staged.append((v, temp))
        for (v, temp), slot in zip(staged, slots, strict=False):
            if v.type.is_scalar:
                b.store(self.scalars[v], slot)
            else:
                source = temp if temp is not None else self.buffers[v]
                self.copy_array(source, slot, v.type)
        b.store(b.add(iv, self.scalars[step]), iv_slot)
        b.branch(header)
        b.position_at_end(exit_block)
        for result, slot in zip(op.results, slots, strict=False):
            self.bind_slot(result, slot)

    def lower_while(self, op: Op) -> None:
        """Carried values live in stack slots; the condition region runs in the loop header."""
        b = self.builder
        before, body = op.regions
        slots = [self.slot_for(v.type) for v in op.operands]
        for init, slot in zip(op.operands, slots, strict=True):
            self.store_value_into(init, slot)
        fn = b.function
        header = fn.append_basic_block("while_header")
        loop_body = fn.append_basic_block("while_body")
        exit_block = fn.append_basic_block("while_exit")
        b.branch(header)
        b.position_at_end(header)
        for arg, slot in zip(before.args, slots, strict=True):
            self.bind_slot(arg, slot)
        (go,) = self.lower_block(before)
        b.cbranch(self.scalars[go], loop_body, exit_block)
        b.position_at_end(loop_body)
        for arg, slot in zip(body.args, slots, strict=True):
            self.bind_slot(arg, slot)
        yielded = self.lower_block(body)
        staged = []
        for v in yielded:  # every new value first, then overwrite (a yield may swap values)
            if v.type.is_scalar:
                staged.append((v, None))
            else:
                temp = self.slot_for(v.type)
                self.store_value_into(v, temp)
                staged.append((v, temp))
        for (v, temp), slot in zip(staged, slots, strict=True):
            if v.type.is_scalar:
                b.store(self.scalars[v], slot)
            else:
                self.copy_array(temp, slot, v.type)
        b.branch(header)
        b.position_at_end(exit_block)
        for result, slot in zip(op.results, slots, strict=True):
            self.bind_slot(result, slot)

    def copy_array(self, source: ir.Value, target: ir.Value, type_: TileType) -> None:
        element = compute_type(type_.element)
        size = type_.numel * max(1, element.width // 8 if isinstance(element, ir.IntType)
                                 else {F16: 2, F32: 4, F64: 8}.get(element, 8))
        if isinstance(element, ir.IntType) and element.width == 1:
            size = type_.numel
        memcpy = self.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        self.builder.call(memcpy, [target, source, ir.Constant(I64, size), ir.Constant(I1, 0)])

    def lower_if(self, op: Op) -> None:
        b = self.builder
        slots = [self.slot_for(r.type) for r in op.results]
        fn = b.function
        then_block = fn.append_basic_block("if_then")
        else_block = fn.append_basic_block("if_else")
        merge = fn.append_basic_block("if_join")
        b.cbranch(self.scalars[op.operands[0]], then_block, else_block)
        for region, block in zip(op.regions, (then_block, else_block), strict=False):
            b.position_at_end(block)
            for v, slot in zip(self.lower_block(region), slots, strict=False):
                self.store_value_into(v, slot)
            b.branch(merge)
        b.position_at_end(merge)
        for result, slot in zip(op.results, slots, strict=False):
            self.bind_slot(result, slot)

    def lower_reduce(self, op: Op) -> None:
        b = self.builder
        (x,) = op.operands
        axis, kind = op.attrs["axis"], op.attrs["kind"]
        element = op.result.type.element
        t = compute_type(element)
        identity = llvm_core.reduce_identity(kind, element)

        def combine(acc, v):  # fast math: LLVM may vectorise the loop (see llvm_core)
            return llvm_core.reduce_combine(b, kind, element, acc, v, fast_math=True)

        out_shape = op.result.type.shape
        accumulator = self.alloca(t)
        result_array = None if not out_shape else self.alloca_tile(op.result.type)
        shape = x.type.shape
        # Reduce along the axis innermost: a scalar accumulator per output element.
        outer_dims = [d for d in range(len(shape)) if d != axis]

        def outer(out_idx):
            b.store(self.constant(identity, element), accumulator)
            saved = self.memo

            def inner(k):
                full = list(out_idx)
                full.insert(axis, k)
                v = self.element(x, tuple(full))
                b.store(combine(b.load(accumulator, typ=t), v), accumulator)

            self.memo = {}
            self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, shape[axis]),
                              ir.Constant(I64, 1), inner)
            self.memo = saved
            total = b.load(accumulator, typ=t)
            if result_array is not None:
                b.store(total, b.gep(result_array, [self.flat_index(out_shape, out_idx)],
                                     source_etype=t))
            return total

        if not out_shape:
            self.memo = {}
            self.scalars[op.result] = outer(())
            self.memo = None
        else:
            self.loop_nest(tuple(shape[d] for d in outer_dims), outer)
            self.buffers[op.result] = result_array

    def reshape_index(self, op: Op, idx: tuple) -> tuple:
        """The source index of element ``idx`` of a ``tile.reshape`` (both row-major)."""
        b = self.builder
        flat = self.flat_index(op.result.type.shape, idx)
        source_shape = op.operands[0].type.shape
        out = []
        for size, stride in zip(source_shape, _row_major_strides(source_shape), strict=True):
            out.append(b.urem(b.udiv(flat, ir.Constant(I64, stride)), ir.Constant(I64, size)))
        return tuple(out)

    def lower_scan(self, op: Op) -> None:
        """A running sum along ``axis`` (from the end when ``reverse``), into a stack array."""
        b = self.builder
        (x,) = op.operands
        axis, reverse = op.attrs["axis"], op.attrs.get("reverse", False)
        element = op.result.type.element
        t = compute_type(element)
        shape = x.type.shape
        result = self.alloca_tile(op.result.type)
        accumulator = self.alloca(t)
        size = shape[axis]

        def outer(rest):
            b.store(self.constant(0, element), accumulator)

            def inner(k):
                position = b.sub(ir.Constant(I64, size - 1), k) if reverse else k
                full = list(rest)
                full.insert(axis, position)
                total = llvm_core.reduce_combine(b, "sum", element, b.load(accumulator, typ=t),
                                                 self.element(x, tuple(full)))
                b.store(total, accumulator)
                b.store(total, b.gep(result, [self.flat_index(shape, tuple(full))],
                                     source_etype=t))

            saved = self.memo
            self.memo = {}
            self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, size), ir.Constant(I64, 1),
                              inner)
            self.memo = saved

        self.loop_nest(tuple(d for i, d in enumerate(shape) if i != axis), outer)
        self.buffers[op.result] = result

    def lower_dot(self, op: Op) -> None:
        b = self.builder
        a, bb, acc = dot_parts(op)
        for operand in (a, bb):
            if operand not in self.buffers:
                self.materialise(operand, lambda idx, v=operand: self.compute(v.owner, idx))
        (m, k), (_, n) = a.type.shape, bb.type.shape
        element = op.result.type.element
        t = compute_type(element)
        result = self.alloca_tile(op.result.type)
        if acc is not None:
            self.store_value_into(acc, result)
        else:
            zero = ir.Constant(ir.ArrayType(t, m * n), None)
            b.store(zero, result)
        fast = ("contract", "reassoc")

        def as_result_type(v: Value, idx):
            raw = b.load(self.buffer_slot(v, idx), typ=compute_type(v.type.element))
            return convert_element(b, raw, v.type.element, element)

        def row(i):
            def middle(kk):
                a_ik = as_result_type(a, (i, kk))

                def inner(j):
                    slot = b.gep(result, [self.flat_index((m, n), (i, j))], source_etype=t)
                    product = b.fmul(a_ik, as_result_type(bb, (kk, j)), flags=fast)
                    b.store(b.fadd(b.load(slot, typ=t), product, flags=fast), slot)

                self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, n), ir.Constant(I64, 1),
                                  inner)

            self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, k), ir.Constant(I64, 1),
                              middle)

        self.memo = {}
        self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, m), ir.Constant(I64, 1), row)
        self.memo = None
        self.buffers[op.result] = result
