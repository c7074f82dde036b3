"""Shape and type inference with explicit broadcasts.

Input: Tile IR as the front end builds it. Every op already has its result type, but operands are
as the user wrote them: ``offsets < n`` compares a ``tile<128xi32>`` with a scalar ``i32``,
``x * 0.5`` multiplies an ``f16`` tile by an ``f32`` constant, ``a[:, None] + b[None, :]`` adds a
``64x1`` tile to a ``1x32`` tile.

Output: the same computation where every elementwise op reads operands of one identical type (its
result's shape, and one element type): scalars are ``tile.splat``-ed, size-1 dimensions are
``tile.broadcast``-ed, missing leading dimensions are added with ``tile.expand_dims``, and type
promotions are ``tile.cast`` ops. (``tile.addptr`` keeps an integer offset and ``tile.where`` an
``i1`` condition, each of the result's shape; comparisons give ``i1``.)

Idea: the typing rules live in ``ir.type_rules``; this pass re-applies them op by op and writes
each implicit conversion as an op, so later passes and back ends never broadcast implicitly.
:func:`verify_explicit_shapes` checks the output form.
"""

from __future__ import annotations

from ..ir import type_rules
from ..ir.builder import Builder
from ..ir.ops import (
    Block,
    Function,
    Op,
    Value,
    walk_ops,
)
from ..ir.registry import family_of
from ..ir.types import ElementType, TileType


class _Rewriter:
    """Collects the conversion ops to insert in front of the op being rewritten."""

    def __init__(self, op: Op):
        self.scratch = Block()
        self.builder = Builder(self.scratch, op.loc)

    def cast(self, v: Value, element: ElementType) -> Value:
        if v.type.element == element:
            return v
        return self.builder.create_value("tile.cast", [v], v.type.with_element(element))

    def reshape_to(self, v: Value, shape: tuple[int, ...]) -> Value:
        """Broadcast ``v`` to ``shape`` with explicit splat / expand_dims / broadcast ops."""
        if v.type.shape == shape:
            return v
        if v.type.is_scalar:
            return self.builder.create_value("tile.splat", [v], v.type.with_shape(shape))
        while v.type.rank < len(shape):  # numpy rule: missing dimensions are leading ones
            v = self.builder.create_value("tile.expand_dims", [v],
                                          v.type.with_shape((1,) + v.type.shape), {"axis": 0})
        if v.type.shape != shape:
            v = self.builder.create_value("tile.broadcast", [v], v.type.with_shape(shape))
        return v

    def convert(self, v: Value, shape, element: ElementType | None = None) -> Value:
        if element is not None:
            v = self.cast(v, element)
        return self.reshape_to(v, shape)


def _rewrite(op: Op) -> list[Op]:
    """The conversion ops ``op`` needs (its operands are updated in place)."""
    rw = _Rewriter(op)
    name = op.name
    family = family_of(name)
    if family in ("binary", "comparison"):
        a, b = op.operands
        element = type_rules.promote_elements(a.type.element, b.type.element, name)
        shape = op.result.type.shape
        op.operands = [rw.convert(a, shape, element), rw.convert(b, shape, element)]
    elif family == "unary":
        op.operands = [rw.cast(op.operands[0], op.result.type.element)]
    elif name == "tile.addptr":
        shape = op.result.type.shape
        op.operands = [rw.reshape_to(v, shape) for v in op.operands]
    elif name == "tile.where":
        cond, a, b = op.operands
        t = op.result.type
        op.operands = [rw.reshape_to(cond, t.shape), rw.convert(a, t.shape, t.element),
                       rw.convert(b, t.shape, t.element)]
    elif name == "tile.load":
        t = op.result.type
        new = [rw.reshape_to(op.operands[0], t.shape)]
        if op.attrs.get("has_mask"):
            new.append(rw.reshape_to(op.operands[1], t.shape))
        if op.attrs.get("has_other"):
            new.append(rw.convert(op.operands[-1], t.shape, t.element))
        op.operands = new
    elif name == "tile.store":
        shape = op.operands[0].type.shape
        for v in op.operands[1:]:
            shape = type_rules.broadcast_shapes(shape, v.type.shape)
        ptr, value = op.operands[0], op.operands[1]
        new = [rw.reshape_to(ptr, shape),
               rw.convert(value, shape, ptr.type.element.pointee)]
        if op.attrs.get("has_mask"):
            new.append(rw.reshape_to(op.operands[2], shape))
        op.operands = new
    for region in op.regions:
        _rewrite_block(region)
    for new_op in rw.scratch.ops:
        new_op.loc = op.loc
    return rw.scratch.ops


def _rewrite_block(block: Block) -> None:
    ops: list[Op] = []
    for op in block.ops:
        ops.extend(_rewrite(op))
        ops.append(op)
    block.ops = ops


def infer_shapes(fn: Function) -> Function:
    """Make every broadcast and promotion explicit (in place; returns ``fn``)."""
    _rewrite_block(fn.body)
    verify_explicit_shapes(fn)
    return fn


def verify_explicit_shapes(fn: Function) -> None:
    """Raise AssertionError unless ``fn`` is in this pass's output form."""
    for op in walk_ops(fn.body):
        types = [v.type for v in op.operands]
        family = family_of(op.name)
        if family == "binary":
            assert types[0] == types[1] == op.result.type, f"{op.name}: {types}"
        elif family == "comparison":
            assert types[0] == types[1], f"{op.name}: {types}"
            assert types[0].shape == op.result.type.shape
        elif family == "unary":
            assert types[0] == op.result.type, f"{op.name}: {types}"
        elif op.name in ("tile.addptr", "tile.load", "tile.store", "tile.where"):
            shapes = {t.shape for t in types}
            assert len(shapes) == 1, f"{op.name} operand shapes {shapes}"
        if op.name == "tile.where":
            assert types[1] == types[2] == op.result.type


def result_type_of(op: Op) -> TileType:
    return op.result.type
