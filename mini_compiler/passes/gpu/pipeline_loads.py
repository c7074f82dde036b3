"""Software pipelining of a ``tl.dot`` loop: load the next tiles while this one is multiplied.

Input: Tile IR after the common passes (before :mod:`.coalesce`).
Output: the same IR where each ``tile.for`` whose body multiplies loaded tiles with ``tl.dot``
loads them one iteration ahead: ``{num_stages = 2}`` on the loop.

Idea: a load from global memory takes about a microsecond to arrive; issued right before the
``tl.dot`` that needs it, every iteration waits that long. So the loop is rewritten to carry the
*next* iteration's tiles (as Triton's pipeliner does with ``num_stages``)::

    a0 = load(a_ptrs, mask(k=lower) & lower < upper)          # prologue: the first tiles
    for k ... iter_args(acc, a_ptrs, a = a0):
        a_next = load(a_ptrs + step, mask(k + step) & k + step < upper)   # issued first...
        acc = dot(a, b, acc)                                  # ...while this one computes
        yield acc, a_ptrs + step, a_next

Each pipelined load is cloned twice with the ops it depends on: once before the loop, with the
induction variable at ``lower`` and the carried values at their initial values, and once in the
body, with the induction variable at ``k + step`` and the carried values at what this iteration
yields. A load past the last iteration is masked off (``k + step < upper``), so it reads
nothing. Here the second stage lives in registers. With ``num_stages`` 3 or more the stages
live in shared memory instead, filled by ``cp.async`` as Triton does it (:mod:`.async_pipeline`,
which uses this module's cloning).

A loop is left alone unless it is safe: its body has no store (a load moved earlier must not
pass a store to the same memory) and what each load depends on can be computed at the top.
"""

from __future__ import annotations

from ...ir.ops import Block, Function, Op, Value, walk_ops
from ...ir.registry import is_pure
from ...ir.types import TileType, i1

NUM_STAGES = 2


def _new_op(name: str, operands: list[Value], result_type, loc, attrs=None) -> Op:
    op = Op(name, list(operands), [], dict(attrs or {}), loc=loc)
    op.results = [Value(result_type, "", op)]
    return op


class _Cloner:
    """Clones ops of the loop body into a list, with some values replaced."""

    def __init__(self, body: Block, mapping: dict[Value, Value], out: list[Op],
                 lazy: dict | None = None):
        self.body_ops = set(map(id, body.ops))
        self.mapping = dict(mapping)
        self.lazy = lazy or {}  # value -> how to make its replacement, when first needed
        self.out = out

    def value(self, value: Value) -> Value:
        if value not in self.mapping and value in self.lazy:
            self.mapping[value] = self.lazy[value]()
        if value in self.mapping:
            return self.mapping[value]
        owner = value.owner
        if not isinstance(owner, Op) or id(owner) not in self.body_ops:
            return value  # defined outside the loop: the same everywhere
        if not is_pure(owner.name) or owner.regions:
            raise ValueError(f"{owner.name} cannot be moved")
        clone = Op(owner.name, [self.value(v) for v in owner.operands], [], dict(owner.attrs),
                   loc=owner.loc)
        clone.results = [Value(r.type, r.name_hint, clone) for r in owner.results]
        self.out.append(clone)
        for old, new in zip(owner.results, clone.results, strict=True):
            self.mapping[old] = new
        return self.mapping[value]

    def load(self, load: Op, condition: Value) -> Value:
        """``load`` cloned, masked also by the scalar ``condition``."""
        operands = [self.value(v) for v in load.operands]
        shape = load.result.type.shape
        splat = _new_op("tile.splat", [condition], TileType(shape, i1), load.loc)
        self.out.append(splat)
        attrs = dict(load.attrs)
        if attrs.get("has_mask"):
            both = _new_op("tile.and", [operands[1], splat.result], TileType(shape, i1),
                           load.loc)
            self.out.append(both)
            operands[1] = both.result
        else:
            operands.insert(1, splat.result)
            attrs["has_mask"] = True
        clone = _new_op("tile.load", operands, load.result.type, load.loc, attrs)
        self.out.append(clone)
        return clone.result


def _pipelinable_loads(body: Block) -> list[Op]:
    if not any(op.name == "tile.dot" for op in body.ops):
        return []
    if any(op.name in ("tile.store", "tile.atomic_add") for op in walk_ops(body)):
        return []
    return [op for op in body.ops if op.name == "tile.load" and not op.result.type.is_scalar]


def _pipeline(block: Block, loop: Op) -> bool:
    body = loop.regions[0]
    loads = _pipelinable_loads(body)
    if not loads:
        return False
    lower, upper, step = loop.operands[:3]
    inits = loop.operands[3:]
    iv, carried = body.args[0], body.args[1:]
    yielded = body.ops[-1].operands
    scalar = iv.type
    try:
        # The prologue: the first iteration's tiles, if there is a first iteration.
        prologue: list[Op] = []
        runs = _new_op("tile.lt", [lower, upper], TileType((), i1), loop.loc)
        prologue.append(runs)
        first = _Cloner(body, {iv: lower, **dict(zip(carried, inits, strict=True))}, prologue)
        first_tiles = [first.load(ld, runs.result) for ld in loads]
        # In the body: the next iteration's tiles, issued before the first dot.
        ahead: list[Op] = []
        next_iv = _new_op("tile.add", [iv, step], scalar, loop.loc)
        more = _new_op("tile.lt", [next_iv.result, upper], TileType((), i1), loop.loc)
        ahead += [next_iv, more]
        current = _Cloner(body, {}, ahead)  # what this iteration yields, computed early
        following = _Cloner(body, {iv: next_iv.result}, ahead, lazy={
            arg: (lambda v=value: current.value(v)) for arg, value in zip(carried, yielded,
                                                                          strict=True)})
        next_tiles = [following.load(ld, more.result) for ld in loads]
    except ValueError:
        return False
    # Rewire: the loads' results become carried values.
    position = block.ops.index(loop)
    block.ops[position:position] = prologue
    loop.operands.extend(first_tiles)
    replace = {}
    for ld, tile in zip(loads, first_tiles, strict=True):
        replace[ld.result] = body.add_arg(tile.type, ld.result.name_hint)
        body.ops.remove(ld)
    for op in walk_ops(body):
        op.operands = [replace.get(v, v) for v in op.operands]
    first_dot = next(i for i, op in enumerate(body.ops) if op.name == "tile.dot")
    body.ops[first_dot:first_dot] = ahead
    body.ops[-1].operands.extend(next_tiles)
    for tile in next_tiles:
        loop.results.append(Value(tile.type, "", loop))
    loop.attrs["num_stages"] = NUM_STAGES
    _remove_dead(body)
    return True


def _remove_dead(body: Block) -> None:
    """Drop pure ops of ``body`` nobody reads any more (the moved loads' old masks)."""
    while True:
        used = {id(v) for op in walk_ops(body) for v in op.operands}
        dead = [op for op in body.ops if op.results and is_pure(op.name) and not op.regions
                and not any(id(r) in used for r in op.results)]
        if not dead:
            return
        for op in dead:
            body.ops.remove(op)


def pipeline_loads(fn: Function, num_stages: int = NUM_STAGES) -> Function:
    """Pipeline every suitable loop of ``fn`` in place (``num_stages`` 1 leaves it as is)."""
    if num_stages < 2:
        return fn

    def visit(block: Block) -> None:
        for op in list(block.ops):
            for region in op.regions:
                visit(region)
            if op.name == "tile.for" and "num_stages" not in op.attrs:
                _pipeline(block, op)

    visit(fn.body)
    return fn
