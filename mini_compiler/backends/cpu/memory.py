"""How the CPU back end reads and writes memory: masked and bounds-checked loads and stores,
atomic adds, which loads may be fused into a store's loop, and the loop versions for masks
(see ``lowering.py``'s docstring for the ideas)."""

from __future__ import annotations

from llvmlite import ir

from ...ir.ops import (
    Block,
    Op,
    Value,
    for_parts,
    load_parts,
    store_parts,
    walk_ops,
)
from ...ir.types import ScalarType
from .. import llvm_core
from ..llvm_core import (
    I1,
    I64,
    memory_type,
    row_major_strides,
)

_row_major_strides = row_major_strides
PTR = ir.PointerType()
convert_element = llvm_core.convert


class MemoryLowering:
    def _pointer_provenance(self) -> dict[Value, int | None]:
        """For each pointer value, the index of the parameter it points into (None: unknown)."""
        origin: dict[Value, int | None] = {}
        for i, arg in enumerate(self.fn.args):
            if arg.type.element.is_pointer:
                origin[arg] = i

        def visit(block: Block):
            for op in block.ops:
                if op.name in ("tile.splat", "tile.broadcast", "tile.expand_dims", "tile.trans",
                               "tile.addptr"):
                    if op.operands[0] in origin:
                        origin[op.result] = origin[op.operands[0]]
                elif op.name == "tile.where" and op.result.type.element.is_pointer:
                    a, c = origin.get(op.operands[1]), origin.get(op.operands[2])
                    origin[op.result] = a if a == c else None
                elif op.name == "tile.for":
                    _, _, _, inits = for_parts(op)
                    carried = zip(op.regions[0].args[1:], inits, op.results, strict=True)
                    for arg, init, result in carried:
                        if init in origin:
                            origin[arg] = origin[result] = origin[init]
                    visit(op.regions[0])
                elif op.name == "tile.if":
                    for region in op.regions:
                        visit(region)
                    yields = [r.ops[-1].operands for r in op.regions]
                    for k, result in enumerate(op.results):
                        a, c = origin.get(yields[0][k]), origin.get(yields[1][k])
                        if a is not None and a == c:
                            origin[result] = a

        visit(self.fn.body)
        return origin

    def check_bounds(self, op: Op, pointer_value: Value, address: ir.Value) -> None:
        """Bounds-checked mode: leave the kernel with an error record if ``address`` is outside
        the tensor ``pointer_value`` was derived from."""
        b = self.builder
        element = pointer_value.type.element.pointee
        size = ir.Constant(I64, max(1, element.bits // 8))
        address_int = b.ptrtoint(address, I64)
        param = self.provenance.get(pointer_value)
        candidates = [param] if param is not None else self.pointer_params
        inside = ir.Constant(I1, 0)
        offset = None
        for p in candidates:
            base = b.ptrtoint(self.params[p], I64)
            delta = b.sub(address_int, base)
            ok = b.and_(b.icmp_signed(">=", delta, ir.Constant(I64, 0)),
                        b.icmp_signed("<=", b.add(delta, size), self.extents[p]))
            inside = b.or_(inside, ok)
            if offset is None:
                offset = b.sdiv(delta, size)
        self.checked_ops.append(op)
        fn = b.function
        bad = fn.append_basic_block("out_of_bounds")
        good = fn.append_basic_block("in_bounds")
        b.cbranch(inside, good, bad)
        b.position_at_end(bad)
        record = [ir.Constant(I64, 1), *(b.zext(p, I64) for p in self.pids),
                  ir.Constant(I64, len(self.checked_ops) - 1),
                  offset if offset is not None else ir.Constant(I64, -1)]
        for k, v in enumerate(record):
            b.store(v, b.gep(self.error_ptr, [ir.Constant(I64, k)], source_etype=I64))
        b.atomic_rmw("xchg", self.failed_flag, ir.Constant(I64, 1), "release")
        b.branch(self.return_block)
        b.position_at_end(good)

    def read_memory(self, address: ir.Value, element: ScalarType) -> ir.Value:
        raw = self.builder.load(address, typ=memory_type(element))
        return llvm_core.from_memory(self.builder, raw, element)

    def write_memory(self, address: ir.Value, value: ir.Value, element: ScalarType) -> None:
        self.builder.store(llvm_core.to_memory(self.builder, value, element), address)

    def guarded(self, condition: ir.Value | None, then, otherwise=None) -> ir.Value | None:
        """``then()`` only where ``condition`` holds; returns the phi of then()/otherwise()."""
        if condition is None or (isinstance(condition, ir.Constant) and condition.constant == 1):
            return then()
        b = self.builder
        fn = b.function
        then_block = fn.append_basic_block("masked_on")
        merge = fn.append_basic_block("masked_join")
        before = b.block
        b.cbranch(condition, then_block, merge)
        b.position_at_end(then_block)
        value = then()
        then_end = b.block
        b.branch(merge)
        b.position_at_end(merge)
        if value is None:
            return None
        phi = b.phi(value.type)
        phi.add_incoming(value, then_end)
        phi.add_incoming(otherwise, before)
        return phi

    def load_element(self, op: Op, idx: tuple) -> ir.Value:
        ptr, mask, other = load_parts(op)
        element = ptr.type.element.pointee
        address = self.element(ptr, idx)
        condition = self.element(mask, idx) if mask is not None else None
        fallback = self.element(other, idx) if other is not None else \
            self.constant(0, op.result.type.element)

        def do_load():
            if self.bounds_check:
                self.check_bounds(op, ptr, address)
            return self.read_memory(address, element)

        return self.guarded(condition, do_load, fallback)

    def atomic_add_element(self, op: Op, idx: tuple) -> ir.Value:
        """``atomicrmw add`` (``fadd`` for floats) of one element, if its mask allows."""
        ptr, value = op.operands[0], op.operands[1]
        mask = op.operands[2] if op.attrs.get("has_mask") else None
        element = ptr.type.element.pointee
        address = self.element(ptr, idx)
        v = self.element(value, idx)
        condition = self.element(mask, idx) if mask is not None else None

        def add():
            if self.bounds_check:
                self.check_bounds(op, ptr, address)
            return self.builder.atomic_rmw("fadd" if element.is_float else "add", address, v,
                                           "monotonic")

        return self.guarded(condition, add, self.constant(0, element))

    def store(self, op: Op) -> None:
        ptr, value, mask = store_parts(op)
        element = ptr.type.element.pointee

        def store_at(idx):
            address = self.element(ptr, idx)
            v = self.element(value, idx)
            condition = self.element(mask, idx) if mask is not None else None

            def do_store():
                if self.bounds_check:
                    self.check_bounds(op, ptr, address)
                self.write_memory(address, v, element)

            self.guarded(condition, do_store)

        if ptr.type.is_scalar:
            self.memo = {}
            store_at(())
            self.memo = None
        else:
            masks = ([mask] if mask is not None else []) + self.masks_in(value)
            self.versioned_loop_nest(ptr.type.shape, masks, store_at)

    def _fusable_loads(self) -> set[Op]:
        """The tile loads that may stay lazy and be read inside the loop of a later store.

        Delaying a load from its own position to the store's loop is safe, and reads each element
        exactly once, when

        * the load and everything between it and the store form a **single-use chain** of
          elementwise ops (``x -> x + y -> store``): a value read twice would be loaded twice,
          and a value read after the store could see memory the store changed;
        * the chain ends in a ``tile.store`` of the **same block**, and that store is the
          **first write** after the load (no store, and no loop or ``if`` containing one, in
          between): otherwise the delayed load could read a value written in the meantime;
        * no op of the chain repeats elements (``broadcast``, ``trans``), which would turn one
          load into many;
        * the load and the store go through **different pointer parameters** (known from
          :meth:`_pointer_provenance`): a store into the buffer being read (a shift, an in-place
          reverse) would otherwise overwrite elements the delayed load has not read yet.
          (Two parameters that name overlapping memory are taken to be distinct, as in Triton,
          whose programs also run in no fixed order.)

        Bounds-checked mode fuses nothing, so its checks run in program order.
        """
        if self.bounds_check:
            return set()
        chain_ops = set(self.rules) | {"tile.cast", "tile.where", "tile.addptr",
                                       "tile.expand_dims"}

        def writes(op: Op) -> bool:
            return any(inner.name in ("tile.store", "tile.atomic_add")
                       for inner in walk_ops(Block(ops=[op])))

        fused: set[Op] = set()

        def visit(block: Block) -> None:
            users: dict[Value, list[Op]] = {}
            for op in block.ops:
                for inner in walk_ops(Block(ops=[op])):
                    for v in inner.operands:
                        users.setdefault(v, []).append(op)
            for i, op in enumerate(block.ops):
                for region in op.regions:
                    visit(region)
                if op.name != "tile.load" or op.result.type.is_scalar:
                    continue
                loaded_from = self.provenance.get(op.operands[0])
                first_write = next((w for w in block.ops[i + 1:] if writes(w)), None)
                v = op.result
                while len(users.get(v, ())) == 1 and self.uses.get(v) == 1:
                    user = users[v][0]
                    if user.name == "tile.store":
                        stored_to = self.provenance.get(user.operands[0])
                        if user is first_write and loaded_from is not None and \
                                stored_to is not None and stored_to != loaded_from:
                            fused.add(op)
                        break
                    if user.name not in chain_ops or user.regions or len(user.results) != 1:
                        break
                    v = user.result

        visit(self.fn.body)
        return fused

    def masks_in(self, v: Value) -> list[Value]:
        """The masks of the fused loads that computing an element of ``v`` performs."""
        found: list[Value] = []
        seen: set[Value] = set()

        def visit(x: Value) -> None:
            if x in seen or x.type.is_scalar or x in self.buffers or x.owner is None:
                return
            seen.add(x)
            if x.owner.name == "tile.load":
                if x.owner not in self.fused_loads:
                    return
                _, mask, _ = load_parts(x.owner)
                if mask is not None and mask not in found:
                    found.append(mask)
            for operand in x.owner.operands:
                visit(operand)

        visit(v)
        return found

    def versioned_loop_nest(self, shape: tuple[int, ...], masks: list[Value], body) -> None:
        """``loop_nest(shape, body)``, twice: a fast version for when every mask is all true.

        ::

            all_valid = and(mask[i] for every mask and every i)   # one vectorised pass
            if all_valid:  body(i) for every i, every mask known true  (plain vector accesses)
            else:          body(i) for every i, accesses guarded       (masked vector accesses)
        """
        masks = [m for m in masks if m not in self.known_true]
        if not masks or self.bounds_check:
            self.loop_nest(shape, body)
            return
        b = self.builder
        flag = self.alloca(I1)
        b.store(ir.Constant(I1, 1), flag)

        def accumulate(idx):
            valid = b.load(flag, typ=I1)
            for m in masks:
                valid = b.and_(valid, self.element(m, idx))
            b.store(valid, flag)

        self.loop_nest(shape, accumulate)
        fn = b.function
        fast = fn.append_basic_block("all_lanes_valid")
        partial = fn.append_basic_block("partial_block")
        join = fn.append_basic_block("versions_join")
        b.cbranch(b.load(flag, typ=I1), fast, partial)
        b.position_at_end(fast)
        saved = self.known_true
        self.known_true = saved | set(masks)
        self.loop_nest(shape, body)
        self.known_true = saved
        b.branch(join)
        b.position_at_end(partial)
        self.loop_nest(shape, body)
        b.branch(join)
        b.position_at_end(join)
