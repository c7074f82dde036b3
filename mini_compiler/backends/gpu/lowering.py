"""Lowering layout-annotated Tile IR to per-thread LLVM IR.

Input: Tile IR after the GPU passes (``mini_compiler.passes.gpu``): every tile has a layout,
loads/stores carry ``vector_width``, scratch buffers have ``smem_offset``, ``gpu.barrier`` and
``gpu.convert_layout`` ops are explicit.
Output: an LLVM module with one ``ptx_kernel`` function that *one thread* runs.

Idea: a tile value becomes, in each thread, the list of the elements that its layout gives that
thread (:class:`ThreadTile`). Then

* elementwise ops are elementwise on those lists: no thread talks to another;
* ``arange`` computes each element's coordinate from the thread and warp ids;
* loads and stores take the elements in groups of ``vector_width`` consecutive ones: one
  ``ld.global.v4`` (or a predicated one, when masked) per group;
* a broadcast or an ``expand_dims`` of a slice just reuses registers;
* a reduction runs in three steps: over a thread's own elements, across the lanes of a warp with
  butterfly shuffles, and across warps through shared memory;
* a layout conversion writes the tile to shared memory in one layout and reads it in another;
* ``tl.dot`` goes through shared memory onto the tensor cores (``dot.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from math import prod

from llvmlite import ir

from ...errors import CompilationError
from ...ir.ops import Function, Op, Value, load_parts, store_parts
from ...ir.types import ScalarType
from ...passes.gpu.layouts import (
    BlockedLayout,
    Layout,
    SliceLayout,
    element_coordinates,
    elements_per_thread,
    lane_stride,
    register_offset,
    warp_stride,
)
from ...passes.gpu.mma_layouts import DotOperandLayout, MmaLayout
from ...passes.gpu.register_maps import register_map
from .. import llvm_core
from . import nvvm
from .dot import DotLowering
from .ir_int import IRInt, as_value
from .regions import RegionLowering
from .thread_tile import ThreadTile, bit_index, register_bytes

ButterflyRule = Callable[[int, int], list[int]]


def llvm_type(element) -> ir.Type:
    """The LLVM register type of a Tile IR element type (bf16 is computed in f32)."""
    return llvm_core.register_type(element, nvvm.global_ptr)


def memory_type(element: ScalarType) -> ir.Type:
    """How an element is stored in memory (booleans take a byte, bf16 its 16 bits)."""
    return llvm_core.memory_type(element)


_register_bytes, _bit_index = register_bytes, bit_index


class KernelLowering(RegionLowering, DotLowering):
    """Builds the LLVM function of one kernel, op by op (see the module docstring)."""

    def __init__(self, fn: Function, num_warps: int, shared_bytes: int,
                 butterfly_offsets: ButterflyRule, dynamic_shared: bool = False):
        self.fn = fn
        self.num_warps = num_warps
        self.butterfly_offsets = butterfly_offsets
        self.module = nvvm.new_module(fn.name)
        arg_types = [llvm_type(arg.type.element) for arg in fn.args]
        names = [arg.name_hint or f"arg{i}" for i, arg in enumerate(fn.args)]
        self.kernel = nvvm.new_kernel(self.module, fn.name, arg_types, names)
        nvvm.set_max_threads(self.kernel, num_warps * nvvm.WARP_SIZE)
        # Thread and warp ids, and each layout's per-thread base coordinates, are computed once
        # in a prologue block, so that they dominate every use (loops included).
        entry = self.kernel.append_basic_block("entry")
        body = self.kernel.append_basic_block("body")
        self.prologue = ir.IRBuilder(entry)
        self.lane, self.warp = nvvm.lane_and_warp(self.prologue)
        self.prologue.position_before(self.prologue.branch(body))
        self.builder = ir.IRBuilder(body)
        if dynamic_shared:  # sized at launch: may exceed the 48 KB of static shared memory
            self.shared = nvvm.dynamic_shared_memory(self.module, "dynamic_scratch")
        else:
            self.shared = (nvvm.shared_memory(self.module, "scratch", shared_bytes)
                           if shared_bytes else None)
        self.values: dict[Value, ir.Value | ThreadTile] = dict(
            zip(fn.args, self.kernel.args, strict=True))
        self._bases: dict[tuple, list[ir.Value]] = {}

    # ----- helpers ---------------------------------------------------------------------------
    def const(self, value: int) -> ir.Constant:
        return ir.Constant(nvvm.i32, value)

    def tile(self, value: Value) -> ThreadTile:
        found = self.values[value]
        assert isinstance(found, ThreadTile), f"{value} is not a tile"
        return found

    def scalar(self, value: Value) -> ir.Value:
        found = self.values[value]
        assert not isinstance(found, ThreadTile), f"{value} is not a scalar"
        return found

    def thread_base(self, layout: Layout, shape: tuple[int, ...]) -> list[ir.Value]:
        """Per tile dimension, this thread's first coordinate (lane and warp decomposed)."""
        key = (layout, shape)
        if key not in self._bases:
            b = self.prologue
            blocked = layout.parent if isinstance(layout, SliceLayout) else layout
            dims = ([layout.parent_dim(d) for d in range(layout.rank)]
                    if isinstance(layout, SliceLayout) else list(range(layout.rank)))
            bases = []
            for d in dims:
                spt = blocked.size_per_thread[d]
                tpw = blocked.threads_per_warp[d]
                wpb = blocked.warps_per_block[d]
                lane_d = b.and_(b.lshr(self.lane, self.const(_bit_index(lane_stride(blocked, d)))),
                                self.const(tpw - 1))
                warp_d = b.and_(b.lshr(self.warp, self.const(_bit_index(warp_stride(blocked, d)))),
                                self.const(wpb - 1))
                bases.append(b.add(b.mul(warp_d, self.const(tpw * spt)),
                                   b.mul(lane_d, self.const(spt))))
            self._bases[key] = bases
        return self._bases[key]

    def coordinates(self, layout: Layout, shape: tuple[int, ...]) -> list[list[ir.Value]]:
        """For each element this thread holds (register order), its coordinate per dimension."""
        if isinstance(layout, (MmaLayout, DotOperandLayout)) or (
                isinstance(layout, SliceLayout) and isinstance(layout.parent, MmaLayout)):
            # the fragment maps, as IR
            lane, warp = IRInt(self.builder, self.lane), IRInt(self.builder, self.warp)
            return [[as_value(c) for c in coordinate]
                    for coordinate in element_coordinates(layout, shape, lane, warp)]
        bases = self.thread_base(layout, shape)
        counts = elements_per_thread(layout, shape)
        blocked = layout.parent if isinstance(layout, SliceLayout) else layout
        dims = ([layout.parent_dim(d) for d in range(layout.rank)]
                if isinstance(layout, SliceLayout) else list(range(layout.rank)))
        per_dim = []
        for dim, count in enumerate(counts):
            wraps = shape[dim] < blocked.layout_tile(dims[dim])
            column = []
            for k in range(count):
                c = self.builder.add(bases[dim], self.const(register_offset(layout, shape, dim, k)))
                if wraps:  # a tile smaller than the layout tile: threads hold copies
                    c = self.builder.and_(c, self.const(shape[dim] - 1))
                column.append(c)
            per_dim.append(column)
        return [[per_dim[d][k] for d, k in enumerate(ks)]
                for ks in itertools.product(*(range(c) for c in counts))]

    def linear_index(self, coordinate: Sequence[ir.Value], shape: tuple[int, ...]) -> ir.Value:
        """Row-major position of ``coordinate`` in a tile of ``shape``."""
        index = self.const(0)
        for c, size in zip(coordinate, shape, strict=False):
            index = self.builder.add(self.builder.mul(index, self.const(size)), c)
        return index

    def shared_address(self, byte_offset: ir.Value) -> ir.Value:
        return self.builder.gep(self.shared, [byte_offset], source_etype=nvvm.i8)

    # ----- the driver ------------------------------------------------------------------------
    def lower(self) -> ir.Module:
        for op in self.fn.body.ops:
            self.lower_op(op)
        self.builder.ret_void()
        return self.module





    def lower_op(self, op: Op) -> None:
        handler = getattr(self, "lower_" + op.name.replace("tile.", "").replace("gpu.", ""),
                          None)
        if handler is None and (op.name in ELEMENTWISE or op.name in llvm_core.ELEMENT_RULES):
            handler = self.lower_elementwise
        if handler is None:
            raise CompilationError(f"the GPU back end cannot compile {op.name} yet; run this "
                                   "kernel on CPU tensors (the CPU back end) or with Triton",
                                   op.loc, self.fn.name)
        try:
            handler(op)
        except CompilationError:
            raise
        except (NotImplementedError, KeyError, ValueError, TypeError, AssertionError) as e:
            raise CompilationError(f"the GPU back end failed on {op.name} "
                                   f"({type(e).__name__}: {e})", op.loc, self.fn.name) from e

    def define(self, op: Op, value: ir.Value | ThreadTile) -> None:
        self.values[op.result] = value

    def per_element(self, op: Op, compute: Callable[..., ir.Value]) -> None:
        """Define ``op``'s result by applying ``compute`` to each element of its operands."""
        result = op.result
        if result.type.is_scalar:
            self.define(op, compute(*(self.scalar(v) for v in op.operands)))
            return
        operand_values = []
        for v in op.operands:
            if v.type.is_scalar:
                operand_values.append(itertools.repeat(self.scalar(v)))
            else:
                operand_values.append(self.tile(v).values)
        values = [compute(*args) for args in zip(*operand_values, strict=False)]
        self.define(op, ThreadTile(op.layout, result.type.shape, values))

    # ----- ops without data ------------------------------------------------------------------
    def lower_constant(self, op: Op) -> None:
        self.define(op, ir.Constant(llvm_type(op.result.type.element), op.attrs["value"]))

    def lower_program_id(self, op: Op) -> None:
        self.define(op, nvvm.block_id(self.builder, op.attrs["axis"]))

    def lower_num_programs(self, op: Op) -> None:
        self.define(op, nvvm.num_blocks(self.builder, op.attrs["axis"]))

    def lower_arange(self, op: Op) -> None:
        shape = op.result.type.shape
        start = op.attrs["start"]
        values = [self.builder.add(c[0], self.const(start)) if start else c[0]
                  for c in self.coordinates(op.layout, shape)]
        self.define(op, ThreadTile(op.layout, shape, values))

    def lower_full(self, op: Op) -> None:
        result = op.result.type
        value = ir.Constant(llvm_type(result.element), op.attrs["value"])
        if result.is_scalar:  # tl.full((), ...): a plain constant
            self.define(op, value)
            return
        self.define(op, ThreadTile(op.layout, result.shape,
                                   [value] * prod(elements_per_thread(op.layout, result.shape))))

    def lower_splat(self, op: Op) -> None:
        shape = op.result.type.shape
        value = self.scalar(op.operands[0])
        self.define(op, ThreadTile(op.layout, shape,
                                   [value] * prod(elements_per_thread(op.layout, shape))))

    def lower_barrier(self, op: Op) -> None:
        nvvm.barrier(self.builder)

    # ----- reshaping in registers ------------------------------------------------------------
    def lower_expand_dims(self, op: Op) -> None:
        source = self.values[op.operands[0]]
        shape = op.result.type.shape
        if not isinstance(source, ThreadTile):  # a scalar becomes a 1-element tile
            self.define(op, ThreadTile(op.layout, shape,
                                       [source] * prod(elements_per_thread(op.layout, shape))))
            return
        if isinstance(op.layout, MmaLayout):  # a row statistic next to the accumulator
            order = register_map(source.layout, source.shape, op.layout, shape,
                                 expand_axis=op.attrs["axis"])
            assert order is not None, "expand_dims of a slice of #mma is a renumbering"
            self.define(op, ThreadTile(op.layout, shape, [source.values[i] for i in order]))
            return
        # Slice(axis, P) -> P: the thread holds the same elements; the new dimension has 1.
        self.define(op, ThreadTile(op.layout, shape, list(source.values)))

    def lower_broadcast(self, op: Op) -> None:
        source = self.tile(op.operands[0])
        shape = op.result.type.shape
        if not isinstance(op.layout, BlockedLayout):  # #mma: repeat the thread's registers
            order = register_map(source.layout, source.shape, op.layout, shape)
            assert order is not None, "a broadcast within one layout is a renumbering"
            self.define(op, ThreadTile(op.layout, shape, [source.values[i] for i in order]))
            return
        counts = elements_per_thread(op.layout, shape)
        source_counts = source.counts
        values = []
        for ks in itertools.product(*(range(c) for c in counts)):
            index = 0
            for k, n in zip(ks, source_counts, strict=False):
                index = index * n + (k if n > 1 else 0)
            values.append(source.values[index])
        self.define(op, ThreadTile(op.layout, shape, values))

    def lower_convert_layout(self, op: Op) -> None:
        """Through shared memory: write every element at its row-major place, wait, read."""
        source = self.tile(op.operands[0])
        shape = op.result.type.shape
        element = op.result.type.element
        if op.attrs.get("in_registers"):  # each thread holds what it needs: renumber
            order = register_map(source.layout, shape, op.layout, shape)
            self.define(op, ThreadTile(op.layout, shape, [source.values[i] for i in order]))
            return
        # bf16 travels as its 16 bits (the other types as their registers)
        stored_type = memory_type(element) if element.name == "bf16" else llvm_type(element)
        size = 2 if element.name == "bf16" else _register_bytes(element)
        base = op.attrs["smem_offset"]
        b = self.builder
        coordinates = self.coordinates(source.layout, shape)
        for coordinate, value in zip(coordinates, source.values, strict=True):
            address = self.shared_address(
                b.add(b.mul(self.linear_index(coordinate, shape), self.const(size)),
                      self.const(base)))
            b.store(self._to_memory(value, element), address, align=size)
        nvvm.barrier(b)
        values = []
        for coordinate in self.coordinates(op.layout, shape):
            address = self.shared_address(
                b.add(b.mul(self.linear_index(coordinate, shape), self.const(size)),
                      self.const(base)))
            values.append(self._from_memory(b.load(address, typ=stored_type, align=size),
                                            element))
        self.define(op, ThreadTile(op.layout, shape, values))

    def _to_memory(self, value: ir.Value, element) -> ir.Value:
        if element.is_pointer:
            return value
        return llvm_core.to_memory(self.builder, value, element)

    def _from_memory(self, value: ir.Value, element) -> ir.Value:
        if element.is_pointer:
            return value
        return llvm_core.from_memory(self.builder, value, element)

    # ----- memory ----------------------------------------------------------------------------
    def lower_addptr(self, op: Op) -> None:
        pointee = op.operands[0].type.element.pointee
        element_type = memory_type(pointee)
        b = self.builder

        def step(pointer: ir.Value, offset: ir.Value) -> ir.Value:
            if offset.type != nvvm.i64:
                offset = b.sext(offset, nvvm.i64)
            return b.gep(pointer, [offset], source_etype=element_type)

        self.per_element(op, step)

    def _groups(self, op: Op, tile: ThreadTile) -> tuple[int, list[range]]:
        """Split a thread's elements into groups of ``vector_width`` that are consecutive in
        memory.

        Only the ``size_per_thread`` elements of one repetition along the fastest dimension
        are neighbours in the tile; the next register along that dimension is a whole layout
        tile further. So the access is never wider than that run, whatever coalescing allowed.
        """
        layout = tile.layout
        blocked = layout.parent if isinstance(layout, SliceLayout) else layout
        fastest = (layout.parent_dim(tile.layout.rank - 1) if isinstance(layout, SliceLayout)
                   else layout.rank - 1)
        run = min(blocked.size_per_thread[fastest], tile.shape[-1])
        width = max(1, min(op.attrs.get("vector_width", 1), run))
        total = len(tile.values)
        return width, [range(start, start + width) for start in range(0, total, width)]

    def lower_load(self, op: Op) -> None:
        pointers, mask, other = load_parts(op)
        element = op.result.type.element
        value_type = llvm_type(element)
        stored = memory_type(element)
        b = self.builder
        if pointers.type.is_scalar:
            address = self.scalar(pointers)
            if mask is None:
                self.define(op, self._from_memory(b.load(address, typ=stored), element))
            else:
                fallback = (self.scalar(other) if other is not None
                            else ir.Constant(value_type, 0))
                (loaded,) = nvvm.predicated_load(b, address, self.scalar(mask),
                                                 [self._to_memory(fallback, element)])
                self.define(op, self._from_memory(loaded, element))
            return
        pointer_tile = self.tile(pointers)
        masks = self.tile(mask).values if mask is not None else None
        others = self.tile(other).values if other is not None else None
        width, groups = self._groups(op, pointer_tile)
        size = stored.width // 8 if isinstance(stored, ir.IntType) else element.size_bytes
        values: list[ir.Value] = []
        for group in groups:
            address = pointer_tile.values[group[0]]
            if masks is None:
                if width == 1:
                    loaded = [b.load(address, typ=stored, align=size)]
                else:
                    vector = b.load(address, typ=ir.VectorType(stored, width), align=size * width)
                    loaded = [b.extract_element(vector, self.const(i)) for i in range(width)]
            else:
                fallback = [self._to_memory(others[i], element) if others is not None
                            else ir.Constant(stored, 0) for i in group]
                loaded = nvvm.predicated_load(b, address, masks[group[0]], fallback)
            values.extend(self._from_memory(v, element) for v in loaded)
        self.define(op, ThreadTile(op.layout, op.result.type.shape, values))

    def lower_store(self, op: Op) -> None:
        pointers, value, mask = store_parts(op)
        element = value.type.element
        stored = memory_type(element)
        size = stored.width // 8 if isinstance(stored, ir.IntType) else element.size_bytes
        b = self.builder
        if pointers.type.is_scalar:
            data = self._to_memory(self.scalar(value), element)
            if mask is None:
                b.store(data, self.scalar(pointers))
            else:
                nvvm.predicated_store(b, self.scalar(pointers), self.scalar(mask), [data])
            return
        pointer_tile = self.tile(pointers)
        data_values = [self._to_memory(v, element) for v in self.tile(value).values]
        masks = self.tile(mask).values if mask is not None else None
        width, groups = self._groups(op, pointer_tile)
        for group in groups:
            address = pointer_tile.values[group[0]]
            data = [data_values[i] for i in group]
            if masks is None:
                if width == 1:
                    b.store(data[0], address, align=size)
                else:
                    vector = ir.Constant(ir.VectorType(stored, width), ir.Undefined)
                    for i, v in enumerate(data):
                        vector = b.insert_element(vector, v, self.const(i))
                    b.store(vector, address, align=size * width)
            else:
                nvvm.predicated_store(b, address, masks[group[0]], data)

    # ----- arithmetic ------------------------------------------------------------------------
    def lower_elementwise(self, op: Op) -> None:
        element = op.operands[0].type.element if op.operands else op.result.type.element
        rule = llvm_core.rule_for(op.name, ELEMENTWISE)  # an exercise rule, if installed
        if rule is None:
            raise CompilationError(f"the GPU back end cannot lower {op.name}", op.loc)
        self.per_element(op, lambda *args: rule(self.builder, element, *args))

    def lower_where(self, op: Op) -> None:
        self.per_element(op, lambda c, a, b_: self.builder.select(c, a, b_))

    def lower_cast(self, op: Op) -> None:
        source = op.operands[0].type.element
        target = op.result.type.element
        self.per_element(op, lambda x: cast(self.builder, x, source, target))

    def lower_bitcast(self, op: Op) -> None:
        source = op.operands[0].type.element
        target = op.result.type.element
        self.per_element(op, lambda x: llvm_core.bitcast(self.builder, x, source, target))

    def lower_debug_barrier(self, op: Op) -> None:
        nvvm.barrier(self.builder)

    # ----- reductions ------------------------------------------------------------------------


# ----- per-element rules ---------------------------------------------------------------------
def _intrinsic_call(b: ir.IRBuilder, name: str, ty: ir.Type, *args: ir.Value) -> ir.Value:
    fn = nvvm.intrinsic(b.module, name, ty, [a.type for a in args])
    return b.call(fn, list(args))


def _in_f32(b: ir.IRBuilder, x: ir.Value, compute: Callable[[ir.Value], ir.Value]) -> ir.Value:
    """Compute a math function in f32 (the hardware's approximate units work in f32)."""
    if x.type == nvvm.f32:
        return compute(x)
    wide = b.fpext(x, nvvm.f32) if x.type == nvvm.f16 else b.fptrunc(x, nvvm.f32)
    out = compute(wide)
    return b.fptrunc(out, x.type) if x.type == nvvm.f16 else b.fpext(out, x.type)


LN2 = 0.6931471805599453


def _float_suffix(ty: ir.Type) -> str:
    return {nvvm.f16: "f16", nvvm.f32: "f32", nvvm.f64: "f64"}[ty]


def _exp(b, element, x):
    return _in_f32(b, x, lambda v: nvvm.exp(b, v))


def _exp2(b, element, x):
    return _in_f32(b, x, lambda v: nvvm.exp2(b, v))


def _log2(b, element, x):
    return _in_f32(b, x, lambda v: _intrinsic_call(b, "llvm.nvvm.lg2.approx.f", nvvm.f32, v))


def _log(b, element, x):
    return _in_f32(b, x, lambda v: b.fmul(
        _intrinsic_call(b, "llvm.nvvm.lg2.approx.f", nvvm.f32, v), ir.Constant(nvvm.f32, LN2)))


def _sin(b, element, x):
    return _in_f32(b, x, lambda v: _intrinsic_call(b, "llvm.nvvm.sin.approx.f", nvvm.f32, v))


def _cos(b, element, x):
    return _in_f32(b, x, lambda v: _intrinsic_call(b, "llvm.nvvm.cos.approx.f", nvvm.f32, v))


# The shared rules (``backends/llvm_core.py``), with the GPU's own transcendental functions:
# the approximate hardware units, computed in f32.
ELEMENTWISE: dict[str, Callable[..., ir.Value]] = {
    **llvm_core.ELEMENT_RULES,
    "tile.exp": _exp,
    "tile.exp2": _exp2,
    "tile.log": _log,
    "tile.log2": _log2,
    "tile.sin": _sin,
    "tile.cos": _cos,
}


def cast(b: ir.IRBuilder, x: ir.Value, source, target) -> ir.Value:
    """Convert one element from ``source`` to ``target`` element type (the shared rule)."""
    return llvm_core.convert(b, x, source, target)


def lower_to_llvm(fn: Function, num_warps: int, shared_bytes: int,
                  butterfly_offsets: ButterflyRule, dynamic_shared: bool = False) -> ir.Module:
    """The LLVM module of ``fn`` (layout-annotated Tile IR), one thread's view; its shared
    memory is dynamic (sized at launch) when ``dynamic_shared``."""
    return KernelLowering(fn, num_warps, shared_bytes, butterfly_offsets,
                          dynamic_shared).lower()

