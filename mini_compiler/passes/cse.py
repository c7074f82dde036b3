"""Common-subexpression elimination.

Input: any Tile IR. Output: the same IR where a pure op that repeats an earlier op (same name,
same operands, same attributes, same result type) is removed and its uses read the earlier result.

Idea: in SSA form two pure ops with identical inputs compute identical values, so a key made of
(name, operand identities, attributes, result types) finds duplicates with one dictionary. The
dictionary is scoped like the IR: an op inside a loop body may reuse a value computed before the
loop, but a value computed inside the body is not visible after it. Loads are not merged (a store
in between could change memory) and nor are ops with regions.
"""

from __future__ import annotations

from ..ir.ops import Block, Function, Op, replace_uses
from ..ir.registry import is_pure


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, float) and value != value:
        return "nan"  # NaN != NaN, but two NaN constants are still the same constant
    return (type(value).__name__, value)


def op_key(op: Op) -> tuple:
    return (op.name, tuple(id(v) for v in op.operands), _freeze(op.attrs),
            tuple(r.type for r in op.results), op.layout)


def _eliminate(block: Block, available: dict, root: Block) -> int:
    removed = 0
    kept: list[Op] = []
    for op in block.ops:
        for region in op.regions:
            removed += _eliminate(region, dict(available), root)
        if is_pure(op.name) and not op.regions:
            key = op_key(op)
            earlier = available.get(key)
            if earlier is not None:
                for old, new in zip(op.results, earlier.results, strict=False):
                    replace_uses(root, old, new)
                removed += 1
                continue
            available[key] = op
        kept.append(op)
    block.ops = kept
    return removed


def eliminate_common_subexpressions(fn: Function) -> Function:
    """Remove repeated pure ops (in place; returns ``fn``)."""
    _eliminate(fn.body, {}, fn.body)
    return fn
