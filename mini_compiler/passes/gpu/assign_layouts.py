"""Layout assignment: give every tile a distribution over the threads of a block.

Input: Tile IR after ``infer_shapes`` and :mod:`.coalesce` (loads and stores carry
``vector_width``).
Output: the same IR where every op producing a tile has ``op.layout`` set (a blocked or slice
layout, see :mod:`.layouts`), ``tile.store`` has the layout of its pointers, and where an op reads
a tile in a layout other than its own a ``gpu.convert_layout`` op (or a cheap copy of the
producing ``arange``/``splat``/``full`` op) has been inserted in front of it. After this pass
every elementwise op reads operands in its own layout.

Idea: moving data between threads costs shared memory and barriers, so choose layouts that make
such moves rare:

* one blocked layout per tile rank, sized for the largest tile of that rank, with
  ``size_per_thread`` = the widest legal vector access along the fastest dimension; tiles that
  broadcast into each other then share a layout and a broadcast moves no data;
* a reduction along ``d`` leaves a ``#slice<dim=d>`` of its operand's layout, and ``expand_dims``
  at ``d`` turns that slice back into the parent: ``x - max(x, axis=1)[:, None]`` moves nothing;
* a 1-D value that is later ``expand_dims``-ed is *asked for* in the matching slice layout: a
  backward walk records these demands, and ``arange``/``splat``/``full`` simply produce their
  value in whatever layout is asked (recomputing them is cheaper than converting);
* a ``tl.dot`` computes in the tensor cores' ``#mma`` layout, and its accumulator is asked for
  in it (through a loop's carried value, back to the ``tl.zeros`` that starts it), so the
  accumulator never leaves the registers; its operands go through shared memory
  (``gpu.local_alloc``, ``gpu.local_load``, see :mod:`.dot_layouts`).
"""

from __future__ import annotations

from copy import deepcopy

from ...errors import CompilationError
from ...ir.ops import (
    Block,
    Function,
    Op,
    Value,
    load_parts,
    store_parts,
    walk_ops,
)
from ...ir.registry import family_of
from .dot_layouts import DotPlacement, transposed
from .layouts import BlockedLayout, Layout, SliceLayout, choose_blocked_layout
from .mma_layouts import MmaLayout, SwizzleRule, shared_layout_for, swizzle
from .register_maps import mma_reduction, register_map

# Ops that can produce their result in any layout at no cost (no data comes from other threads).
FREE_OPS = frozenset(("tile.arange", "tile.full", "tile.splat"))
# Ops whose result is computed element by element from operands in the same layout.
FOLLOWING_OPS = frozenset(("tile.where", "tile.cast", "tile.bitcast", "tile.addptr",
                           "tile.broadcast"))


def follows(name: str) -> bool:
    """Elementwise: the result can take the layout of its operands."""
    return name in FOLLOWING_OPS or family_of(name) in ("binary", "comparison", "unary")
UNSUPPORTED_ON_GPU = ("tile.scan", "tile.reshape", "tile.atomic_add")
CONVERT_LAYOUT = "gpu.convert_layout"
RING_OPS = frozenset(("gpu.alloc_ring", "gpu.async_copy", "gpu.ring_load"))


def layout_of(value: Value) -> Layout | None:
    """The layout of an op's result (None for scalars and for block arguments).

    A ``tile.for`` carries one layout per result (a tuple), which its body's block arguments
    share.
    """
    owner = value.owner
    if isinstance(owner, Op):
        if owner.name in ("tile.for", "tile.if", "tile.while"):
            return owner.layout[owner.results.index(value)] if owner.layout else None
        return owner.layout
    return None


class _Assigner:
    def __init__(self, fn: Function, num_warps: int, vector_widths: dict[int, int],
                 swizzle_rule: SwizzleRule = swizzle):
        self.fn = fn
        self.dots = DotPlacement(fn, num_warps, swizzle_rule)
        largest: dict[int, tuple[int, ...]] = {}
        for op in walk_ops(fn.body):
            if op.name == "gpu.alloc_ring":
                continue  # a ring's slots are sized like the dot operand they hold
            if op.name in UNSUPPORTED_ON_GPU:
                raise CompilationError(
                    f"the GPU back end does not lower {op.name} yet", op.loc, fn.name,
                    "Supported on the GPU: elementwise ops, loads/stores (masked), reductions, "
                    "broadcasts and expand_dims, where/maximum/minimum/exp/log/sqrt, tl.dot "
                    "(fp16/bf16), tl.trans.")
            for value in list(op.results) + list(op.operands):
                shape = value.type.shape
                if shape and (len(shape) not in largest or
                              _numel(shape) > _numel(largest[len(shape)])):
                    largest[len(shape)] = shape
        largest.update(self.dots.operand_shapes())  # with a dot: no copies of its operands
        self.defaults = {rank: choose_blocked_layout(shape, num_warps, vector_widths.get(rank, 1))
                         for rank, shape in largest.items()}
        self.demand: dict[Value, Layout] = {}
        self.copies: dict[tuple[int, int, Layout], Value] = {}
        self.argument_layouts: dict[Value, Layout | None] = {}  # loop-carried block arguments
        self.accumulators: dict[Value, Layout] = {}  # see find_accumulators
        self.yielded: list[tuple] = []  # per tile.for (in order), the layouts its body yields

    def layout(self, value: Value) -> Layout | None:
        if value in self.argument_layouts:
            return self.argument_layouts[value]
        return layout_of(value)

    def default(self, value: Value) -> BlockedLayout:
        return self.defaults[value.type.rank]

    # -- backward: which layout would each value's users like? --
    def find_accumulators(self, block: Block) -> None:
        """Every ``tl.dot`` result, and each loop result that carries one, with its ``#mma``
        layout: ops that combine these with something else compute in ``#mma``."""
        for op in block.ops:
            for region in op.regions:
                self.find_accumulators(region)
            if op.name == "tile.dot":
                self.accumulators[op.result] = self.dots.accumulator_layout(op)
            elif op.name == "tile.for":
                for result, carried in zip(op.results, op.regions[0].ops[-1].operands,
                                           strict=False):
                    if carried in self.accumulators:
                        self.accumulators[result] = self.accumulators[carried]

    def collect_demands(self, block: Block) -> None:
        for op in reversed(block.ops):
            if op.name == "tile.for":  # the body yields what the loop's users want
                for result, carried in zip(op.results, op.regions[0].ops[-1].operands,
                                           strict=False):
                    if result in self.demand:
                        self.demand.setdefault(carried, self.demand[result])
            for region in op.regions:
                self.collect_demands(region)
            if op.name == "tile.for":  # a carried value starts in the layout the body wants
                for arg, init, result in zip(op.regions[0].args[1:], op.operands[3:],
                                             op.results, strict=False):
                    if arg in self.demand:
                        self.demand.setdefault(init, self.demand[arg])
                    # ... or, failing that, the layout the loop's result is wanted in
                    if result in self.demand:
                        self.demand.setdefault(init, self.demand[result])
            elif op.name == "tile.dot" and op.attrs.get("has_acc"):
                self.demand.setdefault(op.operands[2], self.dots.accumulator_layout(op))
            elif op.name == "tile.expand_dims":
                result = op.result
                parent = self.demand.get(result)
                if not isinstance(parent, (BlockedLayout, MmaLayout)):
                    parent = self.default(result)
                self.demand.setdefault(op.operands[0], SliceLayout(op.attrs["axis"], parent))
            elif follows(op.name) or op.name in FREE_OPS:
                wanted = self.demand.get(op.results[0]) if op.results else None
                if wanted is None and op.results:  # next to an accumulator: join it there
                    wanted = next((self.accumulators[v] for v in op.operands
                                   if v in self.accumulators), None)
                if wanted is not None:
                    for operand in op.operands:
                        if operand.type.shape == op.results[0].type.shape or (
                                op.name == "tile.broadcast" and isinstance(wanted, MmaLayout)):
                            self.demand.setdefault(operand, wanted)

    # -- forward: decide, and insert conversions where a reader disagrees --
    def coerce(self, block: Block, op: Op, index: int, target: Layout) -> None:
        value = op.operands[index]
        if value.type.is_scalar or self.layout(value) == target:
            return
        key = (id(block), id(value), target)
        if key not in self.copies and self.rematerialise(block, op, value, target) is None:
            self.convert(block, op, value, target)
        op.operands[index] = self.copies[key]

    def convert(self, block: Block, before: Op, value: Value, target: Layout) -> Value:
        """A ``gpu.convert_layout`` of ``value`` to ``target``, in front of ``before``."""
        source = self.layout(value)
        if source is not None and register_map(source, value.type.shape, target,
                                                 value.type.shape) is not None:
            # every thread already holds what it needs: renumber its registers
            copy = Op(CONVERT_LAYOUT, [value], [], {"in_registers": True}, loc=before.loc,
                      layout=target)
        else:
            copy = Op(CONVERT_LAYOUT, [value], [], loc=before.loc, layout=target)
        copy.results = [Value(value.type, value.name_hint, copy)]
        block.ops.insert(block.ops.index(before), copy)
        self.copies[(id(block), id(value), target)] = copy.result
        return copy.result

    def rematerialise(self, block: Block, before: Op, value: Value, target: Layout,
                      depth: int = 0) -> Value | None:
        """Recompute ``value`` in ``target`` in front of ``before``, if it is built only from
        ``arange``/``splat``/``full`` and scalars through elementwise ops, ``expand_dims`` and
        ``broadcast`` (a mask such as ``offs_m[:, None] >= offs_n[None, :]``): a few integer
        ops per element instead of a trip through shared memory. ``None`` if it is not."""
        if value.type.is_scalar or self.layout(value) == target:
            return value
        key = (id(block), id(value), target)
        if key in self.copies:
            return self.copies[key]
        producer = value.owner
        if not isinstance(producer, Op) or depth > 12:
            return None
        name = producer.name
        if name in FREE_OPS:
            operands = list(producer.operands)
        elif name == "tile.expand_dims" and isinstance(target, (BlockedLayout, MmaLayout)):
            inner_value = producer.operands[0]
            inner_target = SliceLayout(producer.attrs["axis"], target)
            inner = self.rematerialise(block, before, inner_value, inner_target, depth + 1)
            if inner is None and inner_value.type.rank == 1:
                # a row statistic loaded from memory (lse): convert its N values, not the
                # N x M tile it is broadcast to
                inner = (self.copies.get((id(block), id(inner_value), inner_target))
                         or self.convert(block, before, inner_value, inner_target))
            if inner is None:
                return None
            operands = [inner]
        elif follows(name) and name != "tile.addptr":
            operands = []
            for operand in producer.operands:
                remade = self.rematerialise(block, before, operand, target, depth + 1)
                if remade is None:
                    return None
                operands.append(remade)
        else:
            return None
        copy = Op(name, operands, [], dict(producer.attrs), loc=producer.loc, layout=target)
        copy.results = [Value(value.type, value.name_hint, copy)]
        block.ops.insert(block.ops.index(before), copy)
        self.copies[key] = copy.result
        return copy.result

    def assign(self, block: Block) -> None:
        for op in list(block.ops):
            self.assign_op(block, op)

    def assign_op(self, block: Block, op: Op) -> None:
        name = op.name
        results = op.results
        if name == "tile.store":
            pointers, _, _ = store_parts(op)
            op.layout = self.layout(pointers)
            if op.layout is None and not pointers.type.is_scalar:
                op.layout = self.default(pointers)
            for index in range(1, len(op.operands)):
                if op.layout is not None:
                    self.coerce(block, op, index, op.layout)
            return
        if name in RING_OPS:
            self.assign_ring_op(block, op)
            return
        if name == "tile.for":
            self.assign_loop(op)
            return
        if name == "tile.if":
            self.assign_if(op)
            return
        if name == "tile.while":
            self.assign_while(op)
            return
        if not results or results[0].type.is_scalar and name != "tile.reduce":
            return
        result = results[0]
        if name in FREE_OPS:
            op.layout = self.demand.get(result) or self.default(result)
        elif name == "tile.load":
            pointers, _, _ = load_parts(op)
            op.layout = self.layout(pointers) or self.default(pointers)
            for index in range(1, len(op.operands)):
                self.coerce(block, op, index, op.layout)
        elif name == "tile.reduce":
            source = self.layout(op.operands[0])
            if isinstance(source, MmaLayout) and result.type.shape and mma_reduction(
                    source, op.operands[0].type.shape, op.attrs["axis"]) is not None:
                pass  # a row statistic of a dot's result: reduced where it lies
            elif not isinstance(source, BlockedLayout):
                source = self.default(op.operands[0])
                self.coerce(block, op, 0, source)
            # A full reduction (scalar result) keeps the slice too: it says where the data was.
            op.layout = SliceLayout(op.attrs["axis"], source)
        elif name == "tile.dot":
            self.dots.place(self, block, op)
        elif name == "tile.trans" and _reads_ring(op):
            return  # a transposed view of a ring slot: the dot that reads it decides
        elif name == "tile.trans":
            source = self.layout(op.operands[0])
            if not isinstance(source, BlockedLayout):
                source = self.default(op.operands[0])
                self.coerce(block, op, 0, source)
            op.layout = transposed(source)
        elif name == "tile.expand_dims":
            axis = op.attrs["axis"]
            source = self.layout(op.operands[0])
            if isinstance(source, SliceLayout) and source.dim == axis:
                op.layout = source.parent
            else:
                parent = self.default(result)
                if not op.operands[0].type.is_scalar:
                    self.coerce(block, op, 0, SliceLayout(axis, parent))
                op.layout = parent
        elif follows(name):
            candidates = [self.layout(v) for v in op.operands
                          if not v.type.is_scalar and isinstance(v.owner, Op)
                          and v.owner.name not in FREE_OPS]
            # the accumulator of a dot stays where it is; masks and offsets come to it
            chosen = (self.demand.get(result)
                      or next((c for c in candidates if isinstance(c, MmaLayout)), None)
                      or next((c for c in candidates if c), None))
            if name == "tile.broadcast" and not isinstance(chosen, (BlockedLayout, MmaLayout)):
                chosen = self.default(result)
            op.layout = chosen or self.default(result)
            for index in range(len(op.operands)):
                self.coerce(block, op, index, op.layout)
        else:
            op.layout = self.default(result)
            for index in range(len(op.operands)):
                self.coerce(block, op, index, op.layout)


    def assign_ring_op(self, block: Block, op: Op) -> None:
        """The ``cp.async`` pipeline's rings (:mod:`.async_pipeline`): a copy moves each
        thread's elements in the layout of its pointers; the ring it fills gets the ``#shared``
        layout of a dot operand with that order (so each thread writes whole 16-byte chunks);
        a ``gpu.ring_load`` gets its ``#dot_op`` layout from the dot that reads it."""
        if op.name != "gpu.async_copy":
            return
        pointers = op.operands[2]
        op.layout = self.layout(pointers) or self.default(pointers)
        self.coerce(block, op, 3, op.layout)
        ring = op.operands[0].owner
        if ring.layout is None:
            ring.layout = shared_layout_for(op.layout.order, 2, self.dots.swizzle_rule)

    def assign_loop(self, op: Op) -> None:
        """Carried values keep the layout of their initial value through the loop."""
        inits = op.operands[3:]
        layouts = tuple(self.layout(v) if not v.type.is_scalar else None for v in inits)
        op.layout = layouts
        body = op.regions[0]
        for arg, layout in zip(body.args[1:], layouts, strict=False):
            self.argument_layouts[arg] = layout
        self.assign(body)
        terminator = body.ops[-1]
        self.yielded.append(tuple(self.layout(v) if not v.type.is_scalar else None
                                  for v in terminator.operands))
        for index, layout in enumerate(layouts):
            if layout is not None:
                self.coerce(body, terminator, index, layout)


    def assign_while(self, op: Op) -> None:
        """As a ``tile.for``: carried values keep their initial layout in both regions."""
        layouts = tuple(self.layout(v) if not v.type.is_scalar else None for v in op.operands)
        op.layout = layouts
        before, body = op.regions
        for region in (before, body):
            for arg, layout in zip(region.args, layouts, strict=True):
                self.argument_layouts[arg] = layout
        self.assign(before)
        self.assign(body)
        for index, layout in enumerate(layouts):
            if layout is not None:
                self.coerce(body, body.ops[-1], index, layout)

    def assign_if(self, op: Op) -> None:
        """Each result takes the layout its then-branch value has; the else-branch converts."""
        then_region, else_region = op.regions
        self.assign(then_region)
        self.assign(else_region)
        layouts = []
        for index, result in enumerate(op.results):
            if result.type.is_scalar:
                layouts.append(None)
                continue
            layout = self.layout(then_region.ops[-1].operands[index]) or self.default(result)
            for region in op.regions:
                self.coerce(region, region.ops[-1], index, layout)
            layouts.append(layout)
        op.layout = tuple(layouts)


def _reads_ring(op: Op) -> bool:
    owner = op.operands[0].owner
    return isinstance(owner, Op) and owner.name == "gpu.ring_load"


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def assign_layouts(fn: Function, num_warps: int, vector_widths: dict[int, int],
                   swizzle_rule: SwizzleRule = swizzle) -> Function:
    """Attach layouts to ``fn`` in place (see the module docstring); returns ``fn``."""
    # A trial run on a copy says which layout each loop's body yields its carried values in;
    # a row statistic of a dot (``#slice<dim=1, parent=#mma>``) is then carried in that layout
    # from its ``tl.zeros`` on, instead of being converted at the end of every iteration.
    trial = _Assigner(deepcopy(fn), num_warps, vector_widths, swizzle_rule)
    trial.find_accumulators(trial.fn.body)
    trial.collect_demands(trial.fn.body)
    trial.assign(trial.fn.body)
    assigner = _Assigner(fn, num_warps, vector_widths, swizzle_rule)
    loops = [op for op in walk_ops(fn.body) if op.name == "tile.for"]
    for loop, yielded in zip(loops, trial.yielded, strict=False):
        for init, layout in zip(loop.operands[3:], yielded, strict=False):
            if isinstance(layout, MmaLayout) or (isinstance(layout, SliceLayout)
                                                 and isinstance(layout.parent, MmaLayout)):
                assigner.demand.setdefault(init, layout)
    assigner.find_accumulators(fn.body)
    assigner.collect_demands(fn.body)
    assigner.assign(fn.body)
    return fn
