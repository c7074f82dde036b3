"""Tile IR -> LLVM IR for the host CPU.

How tiles become code
---------------------
A tile is a fixed-size array; its shape is known at compile time. Rather than one LLVM vector per
tile (huge vectors make LLVM slow and spill), a tile is either

* **materialised**: an array on the stack (``alloca [N x T]``, row-major), filled by a loop nest
  over its shape. Loads, reductions, dots, loop-carried tiles and expensive values used more than
  once (``exp`` of a tile read twice, say) are materialised; or
* **lazy**: a recipe for one element. ``offsets = pid * B + tl.arange(0, B)`` costs nothing by
  itself; when a loop nest needs element ``i`` of it, the recipe emits ``pid * B + i`` right there.

So a chain of elementwise ops is fused into the loop of the op that consumes it, and the loops
LLVM sees are simple. ``tl.dot`` is a triple loop ``m, k, n`` with ``n`` innermost over contiguous
rows, which vectorises. A program's scalars (program ids, loop counters, the kernel's parameters)
are ordinary SSA registers.

Making masked memory access fast
--------------------------------
Two ideas turn ``out = x + y`` into the loop a C programmer would write. On data that fits in the
caches this made the vector add of ``benchmarks/bench_cpu_backend.py`` (n = 98,432, one thread)
about 1.7x faster than copying each masked load into a stack array; on data streamed from memory
both forms wait on memory bandwidth, and the threads (``launcher.py``) are what matters.

1. **Load fusion.** A load read by exactly one chain of elementwise ops that ends in a store, with
   no other store in between, need not be copied to a stack array first: it stays lazy, and the
   store's loop reads memory directly: ``out[i] = x[i] + y[i]`` in one loop instead of three
   (two copies into stack arrays, then the add). :meth:`TileToLLVM._fusable_loads` checks the
   conditions that make moving the load down to the store safe.
2. **Mask versioning** (an "all lanes valid" check hoisted out of the loop). In a grid of blocks
   only the last block is partial, yet a masked access tests its mask element by element. So a
   masked loop is emitted twice: first one cheap vectorised pass computes ``all(mask)`` (an
   ``and``-reduction of the mask recipe), then a branch picks the **fast version**, where every
   mask is known true, so the accesses are plain vector loads and stores, or the **partial
   version**, where each access is guarded by its lane of the mask. LLVM's vectoriser if-converts
   those guards into ``llvm.masked.load`` / ``llvm.masked.store`` (``vmaskmov`` on AVX2, mask
   registers on AVX-512), so even the partial block runs in SIMD.

The bounds-checked mode keeps the simple form (every load materialised, one version of each
loop): it exists to find bugs, not to be fast.

The generated function is ``void kernel(i64* args, i64* work, i64 last_pid, i64* error)``: it
runs linear program ids below ``last_pid`` itself, so a launch is one call per thread (see
``launcher.py``). ``args`` holds one 64-bit slot per parameter (pointers as addresses, floats as
doubles), then the grid size, then the byte size of each pointer's tensor (used only by the
bounds-checked mode, in which every load and store compares its address with its tensor's range
and, if outside, records ``(1, pid x, pid y, pid z, op number, element offset)`` in ``error`` and
returns).

The threads share the counter ``work[0]`` (the next program id to run): each takes the next
``work[1]`` ids with one atomic add and runs them, until none are left. This **dynamic
scheduling** keeps every thread busy to the end even when one starts late (waking a thread takes
tens of microseconds) or runs slower (a shared core). After each batch a thread adds the number
of programs it finished to ``work[2]``; a failed bounds check sets ``work[3]`` (then every thread
stops taking work), and each call adds 1 to ``work[4]`` as it returns. The module's second
function, ``void wait_all(i64* work, i64 last_pid)``, spins until every program is done (or one
failed): the launching thread waits there instead of sleeping on a lock, because being woken up
again would cost more than the wait itself.

**Exercise hook.** How each elementwise op becomes LLVM instructions is a table,
:data:`ELEMENTWISE_LOWERINGS`: op name -> ``rule(builder, operands) -> llvmlite value``, where
``operands`` are llvmlite values of one type (use :func:`is_float` to tell floats from integers)::

    def lower_maximum(builder, operands):
        a, b = operands
        bigger = builder.fcmp_ordered(">", a, b) if is_float(a) else builder.icmp_signed(">", a, b)
        return builder.select(bigger, a, b)

    with mini_compiler.hooks.override(lowering={"tile.maximum": lower_maximum}):
        kernel[grid](...)
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ...errors import CompilationError
from ...ir.ops import (
    Block,
    Function,
    Op,
    Value,
    count_uses,
    dot_parts,
    for_parts,
    load_parts,
    store_parts,
    walk_ops,
)
from ...ir.types import ScalarType, TileType
from .. import llvm_core
from ..llvm_core import (
    F16,
    F32,
    F64,
    I1,
    I32,
    I64,
    bf16_bits,
    bf16_to_float,
    is_float,
    memory_type,
    round_to_bf16,
)

PTR = ir.PointerType()
__all__ = ["ELEMENTWISE_LOWERINGS", "bf16_bits", "bf16_to_float", "is_float", "lower_to_llvm",
           "round_to_bf16"]


def compute_type(element) -> ir.Type:
    """The register type of an element (bf16 is computed in float and stored in 16 bits)."""
    return llvm_core.register_type(element, PTR)


def convert_element(builder: ir.IRBuilder, x: ir.Value, source, target) -> ir.Value:
    """Convert a register value of element type ``source`` to ``target`` (see llvm_core)."""
    return llvm_core.convert(builder, x, source, target)


ElementwiseRule = Callable[[ir.IRBuilder, list], ir.Value]


def _learner_form(name: str) -> ElementwiseRule:
    """The shared rule of ``name`` in the hook table's form ``rule(builder, operands)``.

    The table's form has no element type, so it treats integers as signed; the lowering calls
    the shared rule itself (with the element type) while the table entry is this default."""
    core_rule = llvm_core.ELEMENT_RULES[name]

    def rule(builder: ir.IRBuilder, operands):
        guess = _guess_element(operands[0])
        return core_rule(builder, guess, *operands)

    rule.core_rule = core_rule
    return rule


def _guess_element(value: ir.Value):
    from ...ir.types import SCALAR_TYPES

    t = value.type
    if isinstance(t, ir.IntType):
        return SCALAR_TYPES["i1"] if t.width == 1 else SCALAR_TYPES[f"i{t.width}"]
    return SCALAR_TYPES[{F16: "f16", F32: "f32", F64: "f64"}[t]]


ELEMENTWISE_LOWERINGS: dict[str, ElementwiseRule] = {
    name: _learner_form(name) for name in llvm_core.ELEMENT_RULES
}

# Tiles computed by these ops are always stored in a stack array (see the module docstring).
ALWAYS_MATERIALISED = {"tile.load", "tile.reduce", "tile.dot", "tile.scan", "tile.atomic_add"}
# These are worth storing when more than one op reads them (recomputing would repeat the work).
EXPENSIVE = {"tile.exp", "tile.exp2", "tile.log", "tile.log2", "tile.sqrt", "tile.sin",
             "tile.cos", "tile.div", "tile.mod", "tile.floordiv", "tile.trans", "tile.reshape"}


def _row_major_strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


class TileToLLVM:
    """Lowers one Tile IR Function to an LLVM module with the kernel function described above."""

    def __init__(self, fn: Function, kernel_name: str, bounds_check: bool = False,
                 rules: dict[str, ElementwiseRule] | None = None):
        self.fn = fn
        self.kernel_name = kernel_name
        self.bounds_check = bounds_check
        self.rules = dict(ELEMENTWISE_LOWERINGS if rules is None else rules)
        self.module = ir.Module(name=kernel_name)
        self.scalars: dict[Value, ir.Value] = {}
        self.buffers: dict[Value, ir.Value] = {}
        self.memo: dict | None = None
        self.uses = count_uses(fn.body)
        self.op_numbers = {id(op): i for i, op in enumerate(walk_ops(fn.body))}
        self.checked_ops: list[Op] = []  # op number -> op, for error messages
        self.pointer_params = [i for i, a in enumerate(fn.args) if a.type.element.is_pointer]
        self.provenance = self._pointer_provenance()
        self.fused_loads = self._fusable_loads()
        self.known_true: set[Value] = set()  # masks known to be all true (fast loop version)

    # ---------------------------------------------------------------- entry point
    def lower(self) -> ir.Module:
        fnty = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, PTR])
        kernel = ir.Function(self.module, fnty, name="kernel")
        args_ptr, work, last, error = kernel.args
        for a in (args_ptr, error):
            a.add_attribute("noalias")
        self.entry = kernel.append_basic_block("entry")
        self.alloca_builder = ir.IRBuilder(self.entry)
        body_start = kernel.append_basic_block("start")
        b = self.builder = ir.IRBuilder(body_start)
        self.error_ptr = error
        n = len(self.fn.args)
        slots = [b.load(b.gep(args_ptr, [ir.Constant(I64, i)], source_etype=I64), typ=I64)
                 for i in range(n + 3 + len(self.pointer_params))]
        self.params = []
        for value, slot in zip(self.fn.args, slots, strict=False):
            element = value.type.element
            if element.is_pointer:
                self.params.append(b.inttoptr(slot, PTR))
            elif element.is_float:
                self.params.append(convert_element(b, b.bitcast(slot, F64),
                                                   ScalarType("f64", "float", 64), element))
            else:
                self.params.append(b.trunc(slot, compute_type(element))
                                   if element.bits < 64 else slot)
        grid = slots[n:n + 3]
        self.extents = dict(zip(self.pointer_params, slots[n + 3:], strict=False))
        self.grid_i32 = [b.trunc(g, I32) for g in grid]
        # The grid loop: pid runs over the ids this thread takes; (x, y, z) with x fastest, as in
        # Triton.
        self.return_block = kernel.append_basic_block("return")

        def program(pid):
            x = b.urem(pid, grid[0])
            rest = b.udiv(pid, grid[0])
            y = b.urem(rest, grid[1])
            z = b.udiv(rest, grid[1])
            self.pids = [b.trunc(v, I32) for v in (x, y, z)]
            self.scalars = {}
            self.buffers = {}
            for value, param in zip(self.fn.args, self.params, strict=False):
                self.scalars[value] = param
            self.lower_block(self.fn.body)

        # while (first = fetch_add(&work[0], grab)) < last: run [first, min(first + grab, last))
        grab = b.load(b.gep(work, [ir.Constant(I64, 1)], source_etype=I64), typ=I64)
        done = b.gep(work, [ir.Constant(I64, 2)], source_etype=I64)
        self.failed_flag = b.gep(work, [ir.Constant(I64, 3)], source_etype=I64)
        take = kernel.append_basic_block("take_work")
        run = kernel.append_basic_block("run_programs")
        b.branch(take)
        b.position_at_end(take)
        first = b.atomic_rmw("add", work, grab, "monotonic")
        failed = b.load_atomic(self.failed_flag, "monotonic", 8, typ=I64)
        more = b.and_(b.icmp_signed("<", first, last),
                      b.icmp_signed("==", failed, ir.Constant(I64, 0)))
        b.cbranch(more, run, self.return_block)
        b.position_at_end(run)
        end = b.add(first, grab)
        stop = b.select(b.icmp_signed("<", end, last), end, last)
        self.counted_loop(first, stop, ir.Constant(I64, 1), program)
        b.atomic_rmw("add", done, b.sub(stop, first), "release")  # publishes this batch's writes
        b.branch(take)
        leave = ir.IRBuilder(self.return_block)
        returned = leave.gep(work, [ir.Constant(I64, 4)], source_etype=I64)
        leave.atomic_rmw("add", returned, ir.Constant(I64, 1), "release")
        leave.ret_void()
        self.alloca_builder.position_at_end(self.entry)
        self.alloca_builder.branch(body_start)
        self.lower_wait_all()
        return self.module

    def lower_wait_all(self) -> None:
        """``void wait_all(i64* work, i64 last_pid)``: spin until ``work[2] >= last_pid`` (every
        program done) or ``work[3] != 0`` (a bounds check failed)."""
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, I64]), name="wait_all")
        work, last = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        spin = fn.append_basic_block("spin")
        leave = fn.append_basic_block("leave")
        b.branch(spin)
        b.position_at_end(spin)
        done = b.load_atomic(b.gep(work, [ir.Constant(I64, 2)], source_etype=I64), "acquire", 8,
                             typ=I64)
        failed = b.load_atomic(b.gep(work, [ir.Constant(I64, 3)], source_etype=I64), "acquire", 8,
                               typ=I64)
        finished = b.or_(b.icmp_signed(">=", done, last),
                         b.icmp_signed("!=", failed, ir.Constant(I64, 0)))
        b.cbranch(finished, leave, spin)
        b.position_at_end(leave)
        b.ret_void()

    # ---------------------------------------------------------------- helpers
    def counted_loop(self, start: ir.Value, stop: ir.Value, step: ir.Value, body,
                     signed: bool = True) -> None:
        """``for i in range(start, stop, step): body(i)`` (step > 0) at the builder's position."""
        b = self.builder
        fn = b.function
        header = fn.append_basic_block("loop")
        loop_body = fn.append_basic_block("body")
        exit_block = fn.append_basic_block("after")
        before = b.block
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(start.type)
        i.add_incoming(start, before)
        b.cbranch(b.icmp_signed("<", i, stop), loop_body, exit_block)
        b.position_at_end(loop_body)
        body(i)
        following = b.add(i, step)
        i.add_incoming(following, b.block)
        b.branch(header)
        b.position_at_end(exit_block)

    def loop_nest(self, shape: tuple[int, ...], body) -> None:
        """Nested loops over ``shape`` (last dimension innermost); ``body(indices)``."""
        self.memo = {}

        def level(dim: int, indices: list):
            if dim == len(shape):
                body(tuple(indices))
                return
            self.counted_loop(ir.Constant(I64, 0), ir.Constant(I64, shape[dim]),
                              ir.Constant(I64, 1), lambda i: level(dim + 1, indices + [i]))

        level(0, [])
        self.memo = None

    def alloca(self, type_: ir.Type) -> ir.Value:
        """A stack slot in the entry block (so loops reuse it), as an opaque pointer."""
        slot = self.alloca_builder.alloca(type_)
        slot.align = 64  # whole cache lines: aligned vector loads and stores
        slot.type = PTR  # llvmlite types allocas as typed pointers; LLVM 22 has opaque ones
        return slot

    def alloca_tile(self, type_: TileType) -> ir.Value:
        element = compute_type(type_.element)
        return self.alloca(ir.ArrayType(element, type_.numel))

    def flat_index(self, shape: tuple[int, ...], idx: tuple) -> ir.Value:
        b = self.builder
        flat = None
        for i, stride in zip(idx, _row_major_strides(shape), strict=False):
            term = i if stride == 1 else b.mul(i, ir.Constant(I64, stride))
            flat = term if flat is None else b.add(flat, term)
        return flat if flat is not None else ir.Constant(I64, 0)

    def buffer_slot(self, v: Value, idx: tuple) -> ir.Value:
        array = self.buffers[v]
        element = compute_type(v.type.element)
        return self.builder.gep(array, [self.flat_index(v.type.shape, idx)],
                                source_etype=element)

    def materialise(self, v: Value, compute) -> None:
        """Give ``v`` a stack array and fill it with ``compute(indices)``."""
        array = self.alloca_tile(v.type)
        element = compute_type(v.type.element)

        def fill(idx):
            slot = self.builder.gep(array, [self.flat_index(v.type.shape, idx)],
                                    source_etype=element)
            self.builder.store(compute(idx), slot)

        masks = self.masks_in(v) if v.owner is not None and v.owner.name == "tile.load" else []
        self.versioned_loop_nest(v.type.shape, masks, fill)
        self.buffers[v] = array

    # ---------------------------------------------------------------- element recipes
    def element(self, v: Value, idx: tuple) -> ir.Value:
        """Element ``idx`` of ``v`` (a scalar's only element when ``v`` is a scalar)."""
        if v in self.known_true:
            return ir.Constant(I1, 1)
        if v.type.is_scalar:
            return self.scalars[v]
        if v in self.buffers:
            return self.builder.load(self.buffer_slot(v, idx), typ=compute_type(v.type.element))
        key = (v, tuple(id(i) for i in idx))
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        result = self.compute(v.owner, idx)
        if self.memo is not None:
            self.memo[key] = result
        return result

    def compute(self, op: Op, idx: tuple) -> ir.Value:
        """Element ``idx`` of ``op``'s result, computed from its operands' elements."""
        b = self.builder
        name = op.name
        result_type = op.result.type
        if name == "tile.constant" or name == "tile.full":
            return self.constant(op.attrs["value"], result_type.element)
        if name == "tile.arange":
            return b.add(b.trunc(idx[0], I32), ir.Constant(I32, op.attrs["start"]))
        if name == "tile.program_id":
            return self.pids[op.attrs["axis"]]
        if name == "tile.num_programs":
            return self.grid_i32[op.attrs["axis"]]
        if name == "tile.splat":
            return self.scalars[op.operands[0]]
        if name == "tile.broadcast":
            source = op.operands[0]
            src_idx = tuple(ir.Constant(I64, 0) if d == 1 else i
                            for d, i in zip(source.type.shape, idx, strict=False))
            return self.element(source, src_idx)
        if name == "tile.expand_dims":
            axis = op.attrs["axis"]
            return self.element(op.operands[0], idx[:axis] + idx[axis + 1:])
        if name == "tile.trans":
            return self.element(op.operands[0], (idx[1], idx[0]))
        if name == "tile.cast":
            source = op.operands[0]
            return convert_element(b, self.element(source, idx), source.type.element,
                                   result_type.element)
        if name == "tile.addptr":
            ptr, offset = op.operands
            offset_value = self.element(offset, idx)
            if offset_value.type != I64:
                offset_value = b.sext(offset_value, I64)
            return b.gep(self.element(ptr, idx), [offset_value],
                         source_etype=memory_type(ptr.type.element.pointee))
        if name == "tile.where":
            c, x, y = (self.element(o, idx) for o in op.operands)
            return b.select(c, x, y)
        if name == "tile.load":
            return self.load_element(op, idx)
        if name == "tile.atomic_add":
            return self.atomic_add_element(op, idx)
        if name == "tile.bitcast":
            source = op.operands[0]
            return llvm_core.bitcast(b, self.element(source, idx), source.type.element,
                                     result_type.element)
        if name == "tile.reshape":
            return self.element(op.operands[0], self.reshape_index(op, idx))
        rule = self.rules.get(name)
        if rule is None:
            raise CompilationError(f"the CPU back end cannot lower {name}", op.loc,
                                   self.kernel_name)
        operands = [self.element(o, idx) for o in op.operands]
        core_rule = getattr(rule, "core_rule", None)
        if core_rule is not None:  # the shared rule, told the element type
            element = op.operands[0].type.element if op.operands else result_type.element
            return core_rule(b, element, *operands)
        return rule(b, operands)

    def constant(self, value, element) -> ir.Value:
        t = compute_type(element)
        if isinstance(t, ir.IntType):
            return ir.Constant(t, int(value))
        return ir.Constant(t, float(value))

    # ---------------------------------------------------------------- memory
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

    # ---------------------------------------------------------------- fast masked access
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

    # ---------------------------------------------------------------- ops in program order
    def lower_block(self, block: Block) -> list:
        for op in block.ops:
            if op.name == "tile.yield":
                return list(op.operands)
            self.lower_op(op)
        return []

    def should_materialise(self, op: Op) -> bool:
        if op in self.fused_loads:
            return False  # read directly by the store's loop (see _fusable_loads)
        if op.name in ALWAYS_MATERIALISED:
            return True
        return op.name in EXPENSIVE and self.uses.get(op.result, 0) > 1

    def lower_op(self, op: Op) -> None:
        try:
            self._lower_op(op)
        except CompilationError:
            raise
        except (NotImplementedError, KeyError, ValueError, TypeError, AssertionError) as e:
            raise CompilationError(f"the CPU back end failed on {op.name} "
                                   f"({type(e).__name__}: {e})", op.loc,
                                   self.kernel_name) from e

    def _lower_op(self, op: Op) -> None:
        if op.name == "tile.store":
            self.store(op)
        elif op.name == "tile.for":
            self.lower_for(op)
        elif op.name == "tile.if":
            self.lower_if(op)
        elif op.name == "tile.reduce":
            self.lower_reduce(op)
        elif op.name == "tile.dot":
            self.lower_dot(op)
        elif op.name == "tile.while":
            self.lower_while(op)
        elif op.name == "tile.scan":
            self.lower_scan(op)
        elif op.name == "tile.debug_barrier":
            return  # one thread runs a program: nothing to wait for
        elif op.result.type.is_scalar:
            self.memo = {}
            self.scalars[op.result] = self.compute(op, ())
            self.memo = None
        elif self.should_materialise(op):
            self.materialise(op.result, lambda idx: self.compute(op, idx))
        # Otherwise the tile stays lazy: its elements are computed where they are used.

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
        fast = ("reassoc", "nsz", "nnan", "ninf") if element.is_float else ()

        def combine(acc, v):
            if kind == "sum":
                return b.fadd(acc, v, flags=fast) if element.is_float else b.add(acc, v)
            if element.is_float:
                bigger = b.fcmp_ordered(">" if kind == "max" else "<", v, acc, flags=fast)
            else:
                bigger = llvm_core.ELEMENT_RULES["tile.gt" if kind == "max" else "tile.lt"](
                    b, element, v, acc)
            return b.select(bigger, v, acc)

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


def loop_condition(b: ir.IRBuilder, iv: ir.Value, upper: ir.Value, step: ir.Value) -> ir.Value:
    """``range``'s test: ``iv < upper`` for a positive step, ``iv > upper`` for a negative one."""
    if isinstance(step, ir.Constant):
        return b.icmp_signed("<" if step.constant > 0 else ">", iv, upper)
    up = b.icmp_signed("<", iv, upper)
    down = b.icmp_signed(">", iv, upper)
    return b.select(b.icmp_signed(">", step, ir.Constant(step.type, 0)), up, down)


def lower_to_llvm(fn: Function, kernel_name: str, bounds_check: bool = False,
                  rules: dict[str, ElementwiseRule] | None = None) -> tuple[ir.Module, list[Op]]:
    """The LLVM module for ``fn`` and, in bounds-checked mode, the op of each check number."""
    lowering = TileToLLVM(fn, kernel_name, bounds_check, rules)
    module = lowering.lower()
    return module, lowering.checked_ops
