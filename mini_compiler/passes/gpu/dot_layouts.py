"""Layouts around a ``tl.dot``: part of :mod:`.assign_layouts`.

A ``tile.dot`` is given the ``#mma`` accumulator layout (:mod:`.mma_layouts`), chosen once per
dot from its ``M x N`` shape and the number of warps. Its accumulator operand is converted to
that layout if it is not in it already (the layout pass asks for it early, so usually it is).
Each of A and B becomes two ops, inserted in front of the dot:

    %a_smem = gpu.local_alloc %a      {layout = #shared<order, vec, swizzle>}
    %a_frag = gpu.local_load %a_smem  {layout = #dot_op<a, #mma<...>>}

The shared layout keeps the contiguous dimension of the blocked layout the operand arrives in,
so each thread writes whole vectors; whether ``ldmatrix`` must transpose follows from it. Both
``local_alloc`` ops come before both ``local_load`` ops: then one barrier separates all the
writes from all the reads (:mod:`.insert_barriers`).
"""

from __future__ import annotations

from ...errors import CompilationError
from ...ir.ops import Block, Function, Op, Value, dot_parts, walk_ops
from ...ir.registry import family_of
from .layouts import BlockedLayout
from .mma_layouts import (
    INSTR_K,
    INSTR_M,
    DotOperandLayout,
    MmaLayout,
    SwizzleRule,
    choose_mma_layout,
    shared_layout_for,
)
from .register_maps import register_map

LOCAL_ALLOC = "gpu.local_alloc"
LOCAL_LOAD = "gpu.local_load"
RING_LOAD = "gpu.ring_load"  # a slot of a cp.async ring (.async_pipeline)
TENSOR_CORE_INPUTS = ("f16", "bf16")


def transposed(layout: BlockedLayout) -> BlockedLayout:
    """The blocked layout of the transposed tile: the same threads hold the same elements."""
    return BlockedLayout(layout.size_per_thread[::-1], layout.threads_per_warp[::-1],
                         layout.warps_per_block[::-1], tuple(1 - d for d in layout.order))


def _elementwise(name: str) -> bool:
    return name in ("tile.where", "tile.cast", "tile.bitcast") or family_of(name) in (
        "binary", "comparison", "unary")


def chained_dots(fn: Function) -> set[int]:
    """The dots (by ``id``) whose result is reduced along its rows, or feeds, through
    elementwise ops, the A operand of another dot, and the dots that take such an operand:
    flash attention's ``S = Q K^T`` (row max and sum) and ``P V`` (``P`` from ``S``).

    Their warps are stacked along M only (``wn = 1``): then a row of the accumulator lives in
    the four lanes of one quad of one warp, so row statistics need shuffles and no shared
    memory, and ``P`` is the A operand of the next dot in registers (``.register_maps``)."""
    users: dict[Value, list[Op]] = {}
    for op in walk_ops(fn.body):
        for operand in op.operands:
            users.setdefault(operand, []).append(op)
    chained: set[int] = set()
    for dot in (op for op in walk_ops(fn.body) if op.name == "tile.dot"):
        frontier, seen = [dot.result], set()
        while frontier:
            value = frontier.pop()
            for user in users.get(value, []):
                if id(user) in seen:
                    continue
                seen.add(id(user))
                if user.name == "tile.reduce" and user.attrs.get("axis") == 1:
                    chained.add(id(dot))
                elif user.name == "tile.dot" and user.operands[0] is value:
                    chained.update((id(dot), id(user)))
                elif _elementwise(user.name):
                    frontier.extend(user.results)
    return chained


class DotPlacement:
    """Chooses the layouts of every dot of ``fn`` and stages its operands."""

    def __init__(self, fn: Function, num_warps: int, swizzle_rule: SwizzleRule):
        self.fn = fn
        self.num_warps = num_warps
        self.swizzle_rule = swizzle_rule
        self.chosen: dict[int, MmaLayout] = {}
        self.rows_only = chained_dots(fn)
        self.written_once: dict[tuple, Op] = {}  # loop-invariant operands in shared memory

    def block_of(self, producer: Op) -> Block | None:
        """The block that holds ``producer`` (searched from the function's body)."""
        def search(block: Block) -> Block | None:
            for op in block.ops:
                if op is producer:
                    return block
                for region in op.regions:
                    found = search(region)
                    if found is not None:
                        return found
            return None
        return search(self.fn.body)

    def operand_shapes(self) -> dict[int, tuple[int, int]]:
        """With dots, the 2-D shape to size the default blocked layout for: per dimension the
        smallest of the dot operands' and results' (a layout sized for the biggest tile would
        give each thread copies of a smaller operand, loaded twice and held twice)."""
        shapes = [v.type.shape for op in walk_ops(self.fn.body) if op.name == "tile.dot"
                  for v in (*op.operands[:2], op.result)]
        if not shapes:
            return {}
        return {2: (min(s[0] for s in shapes), min(s[1] for s in shapes))}

    def accumulator_layout(self, op: Op) -> MmaLayout:
        """The ``#mma`` layout of ``op`` (checked: types, shape)."""
        if id(op) in self.chosen:
            return self.chosen[id(op)]
        a, b, _ = dot_parts(op)
        kinds = (a.type.element.name, b.type.element.name)
        result = op.result.type.element.name
        if kinds[0] != kinds[1] or kinds[0] not in TENSOR_CORE_INPUTS or result != "f32":
            raise CompilationError(
                f"the GPU back end runs tl.dot on tensor cores for fp16 or bf16 inputs with an "
                f"fp32 accumulator; this dot multiplies {kinds[0]} by {kinds[1]} into {result}",
                op.loc, self.fn.name,
                "Convert the operands with .to(tl.float16) or .to(tl.bfloat16) (fp32 inputs "
                "would need TF32 tensor cores, which this back end does not use), or run the "
                "kernel on CPU tensors.")
        m, n = op.result.type.shape
        k = a.type.shape[1]
        layout = choose_mma_layout(m, n, self.num_warps)
        if id(op) in self.rows_only and m % (INSTR_M * self.num_warps) == 0 and n % 16 == 0:
            layout = MmaLayout((self.num_warps, 1))  # warps along M only (chained_dots)
        if layout is None or k % INSTR_K:
            raise CompilationError(
                f"tl.dot of a {m}x{k} by a {k}x{n} tile cannot be spread over {self.num_warps} "
                "warps of tensor-core instructions", op.loc, self.fn.name,
                "Each warp needs whole 16x16 pieces of the output and K a multiple of 16: use "
                "bigger blocks or fewer warps (num_warps).")
        self.chosen[id(op)] = layout
        return layout

    def place(self, assigner, block, op: Op) -> None:
        """Give ``op`` its layout and route A and B through shared memory (see the module
        docstring); ``assigner`` is the layout pass (for its defaults and conversions)."""
        layout = self.accumulator_layout(op)
        op.layout = layout
        allocs, hoisted = [], []
        for index in (0, 1):
            owner = op.operands[index].owner
            if isinstance(owner, Op) and owner.name == RING_LOAD:  # already in shared memory
                owner.layout = DotOperandLayout(index, layout)
                continue
            if (isinstance(owner, Op) and owner.name == "tile.trans"
                    and isinstance(owner.operands[0].owner, Op)
                    and owner.operands[0].owner.name == RING_LOAD):
                # tl.trans of a ring slot (K of attention): the same bytes read as the
                # transposed tile, a shared layout with the order swapped (dot.lower_trans)
                owner.layout = owner.operands[0].owner.layout = DotOperandLayout(index, layout)
                continue
            source = assigner.layout(op.operands[index])
            fragment = DotOperandLayout(index, layout)
            shape = op.operands[index].type.shape
            if isinstance(source, MmaLayout) and register_map(source, shape, fragment,
                                                              shape) is not None:
                # P of attention: the accumulator fragment already is the A fragment
                assigner.coerce(block, op, index, fragment)
                continue
            if not isinstance(source, BlockedLayout):
                source = assigner.default(op.operands[index])
                assigner.coerce(block, op, index, source)
            value = op.operands[index]
            element_bytes = 2  # fp16 and bf16
            alloc = Op(LOCAL_ALLOC, [value], [], loc=op.loc,
                       layout=shared_layout_for(source.order, element_bytes, self.swizzle_rule))
            alloc.results = [Value(value.type, value.name_hint, alloc)]
            home = self.block_of(value.owner) if isinstance(value.owner, Op) else None
            key = (id(value), alloc.layout)
            if home is not None and home is not block and key in self.written_once:
                alloc = self.written_once[key]  # already in shared memory (an earlier loop)
                hoisted.append((index, alloc))
                continue
            if home is not None and home is not block:
                self.written_once[key] = alloc
                # made outside the loop around the dot (Q of attention): written to shared
                # memory once, after it is loaded; each iteration only reads it (ldmatrix), and
                # its registers are free during the loop
                home.ops.insert(home.ops.index(value.owner) + 1, alloc)
                hoisted.append((index, alloc))
                continue
            allocs.append((index, alloc))
        allocs = hoisted + allocs
        position = block.ops.index(op)
        block.ops[position:position] = [alloc for i, alloc in allocs
                                        if (i, alloc) not in hoisted]
        for index, alloc in allocs:
            load = Op(LOCAL_LOAD, [alloc.result], [], loc=op.loc,
                      layout=DotOperandLayout(index, layout))
            load.results = [Value(alloc.result.type, alloc.result.name_hint, load)]
            block.ops.insert(block.ops.index(op), load)
            op.operands[index] = load.result
        if op.attrs.get("has_acc"):
            assigner.coerce(block, op, 2, layout)
