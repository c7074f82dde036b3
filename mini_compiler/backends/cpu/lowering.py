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

**Exercise hook.** Each elementwise op becomes LLVM instructions by a rule of the shared core
(``backends/llvm_core.py``), ``rule(builder, element, *operands) -> llvmlite value``: ``element``
is the Tile IR element type the op computes in (``element.is_float``, ``element.is_signed``), so
a rule can choose float, signed or unsigned instructions. The CPU uses the shared rules as they
are (:data:`ELEMENTWISE`); ``mini_compiler.hooks.override(lowering=...)`` replaces one for the
kernels compiled inside a block, on both back ends::

    def lower_maximum(builder, element, a, b):
        if element.is_float:
            bigger = builder.fcmp_ordered(">", a, b)
        elif element.is_signed:
            bigger = builder.icmp_signed(">", a, b)
        else:
            bigger = builder.icmp_unsigned(">", a, b)
        return builder.select(bigger, a, b)

    with mini_compiler.hooks.override(lowering={"tile.maximum": lower_maximum}):
        kernel[grid](...)
"""

from __future__ import annotations

from llvmlite import ir

from ...errors import CompilationError
from ...ir.ops import (
    Block,
    Function,
    Op,
    Value,
    count_uses,
    walk_ops,
)
from ...ir.types import ScalarType, TileType
from .. import llvm_core
from ..llvm_core import (
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
from .memory import MemoryLowering
from .regions import RegionLowering

PTR = ir.PointerType()
__all__ = ["ELEMENTWISE", "bf16_bits", "bf16_to_float", "is_float", "lower_to_llvm",
           "round_to_bf16"]


def compute_type(element) -> ir.Type:
    """The register type of an element (bf16 is computed in float and stored in 16 bits)."""
    return llvm_core.register_type(element, PTR)


def convert_element(builder: ir.IRBuilder, x: ir.Value, source, target) -> ir.Value:
    """Convert a register value of element type ``source`` to ``target`` (see llvm_core)."""
    return llvm_core.convert(builder, x, source, target)


ElementwiseRule = llvm_core.Rule

# The CPU's elementwise rules: the shared ones as they are (a target with better instructions
# for some op would override entries here, as the GPU back end does).
ELEMENTWISE: dict[str, ElementwiseRule] = dict(llvm_core.ELEMENT_RULES)

# Tiles computed by these ops are always stored in a stack array (see the module docstring).
ALWAYS_MATERIALISED = {"tile.load", "tile.reduce", "tile.dot", "tile.scan", "tile.atomic_add"}
# These are worth storing when more than one op reads them (recomputing would repeat the work).
EXPENSIVE = {"tile.exp", "tile.exp2", "tile.log", "tile.log2", "tile.sqrt", "tile.sin",
             "tile.cos", "tile.div", "tile.mod", "tile.floordiv", "tile.trans", "tile.reshape"}


_row_major_strides = llvm_core.row_major_strides


class TileToLLVM(MemoryLowering, RegionLowering):
    """Lowers one Tile IR Function to an LLVM module with the kernel function described above."""

    def __init__(self, fn: Function, kernel_name: str, bounds_check: bool = False,
                 rules: dict[str, ElementwiseRule] | None = None):
        self.fn = fn
        self.kernel_name = kernel_name
        self.bounds_check = bounds_check
        self.rules = dict(ELEMENTWISE if rules is None else rules)
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
        rule = llvm_core.rule_for(name, self.rules)
        if rule is None:
            raise CompilationError(f"the CPU back end cannot lower {name}", op.loc,
                                   self.kernel_name)
        operands = [self.element(o, idx) for o in op.operands]
        element = op.operands[0].type.element if op.operands else result_type.element
        return rule(b, element, *operands)

    def constant(self, value, element) -> ir.Value:
        t = compute_type(element)
        if isinstance(t, ir.IntType):
            return ir.Constant(t, int(value))
        return ir.Constant(t, float(value))

    # ---------------------------------------------------------------- memory










    # ---------------------------------------------------------------- fast masked access



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











def lower_to_llvm(fn: Function, kernel_name: str, bounds_check: bool = False,
                  rules: dict[str, ElementwiseRule] | None = None) -> tuple[ir.Module, list[Op]]:
    """The LLVM module for ``fn`` and, in bounds-checked mode, the op of each check number."""
    lowering = TileToLLVM(fn, kernel_name, bounds_check, rules)
    module = lowering.lower()
    return module, lowering.checked_ops
