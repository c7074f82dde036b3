"""Constant folding and algebraic simplification.

Input: Tile IR after ``infer_shapes`` (it also works before). Output: the same IR where every op
whose operands are all constants is replaced by a constant: ``tile.constant`` for a scalar,
``tile.full`` for a tile (a splat of a constant is a uniform tile, so it counts as a constant too);
and where ``x * 1``, ``x + 0``, ``x - 0`` and ``x // 1`` are replaced by ``x``. The dead constants
left behind are removed by ``dce``.

Idea: a constant is known at compile time, so its op can run now instead of in every program.

**Exercise hook.** The arithmetic is a table, :data:`FOLDERS`, from op name to a function of the
operand constants (Python numbers) returning the result, or ``None`` to leave the op alone::

    from mini_compiler.passes.constant_fold import FOLDERS
    FOLDERS["tile.mul"] = lambda a, b: a * b

Use :func:`mini_compiler.hooks.override` to install a rule for one block of code (it also clears
the compile cache so kernels are recompiled with it). The result is converted to the op's result
type (integers wrap around like the machine's).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir.ops import Block, Function, Op, Value, replace_uses
from ..ir.registry import OPS
from ..ir.types import PointerType

# The learner-facing table: one entry per op that folds, from the registry's records.
FOLDERS: dict[str, Callable] = {name: op.fold for name, op in OPS.items() if op.fold}
DEFAULT_FOLDERS = dict(FOLDERS)  # to tell whether an exercise rule is installed

# x OP c == x when c is this constant (on the right).
RIGHT_IDENTITIES = {"tile.mul": 1, "tile.add": 0, "tile.sub": 0, "tile.floordiv": 1}
LEFT_IDENTITIES = {"tile.mul": 1, "tile.add": 0}


def constant_value(v: Value):
    """The Python number ``v`` always holds, or None if it is not a compile-time constant."""
    op = v.owner
    if not isinstance(op, Op):
        return None
    if op.name in ("tile.constant", "tile.full"):
        return op.attrs["value"]
    if op.name in ("tile.splat", "tile.broadcast", "tile.expand_dims"):
        return constant_value(op.operands[0])
    return None


def to_result_type(value, op: Op):
    """``value`` as the op's result element type (wrap integers, round floats)."""
    element = op.result.type.element
    if isinstance(element, PointerType):
        return None
    if element.is_bool:
        return bool(value)
    if element.is_int:
        bits = element.bits
        wrapped = int(value) & ((1 << bits) - 1)
        return wrapped - (1 << bits) if wrapped >= 1 << (bits - 1) else wrapped
    as_float = float(value)
    if element.name == "f32":
        return float(np.float32(as_float))
    if element.name == "f16":
        return float(np.float16(as_float))
    return as_float


def _fold_op(op: Op) -> Value | None:
    """A replacement for ``op``'s result, or None."""
    if len(op.results) != 1 or op.regions:
        return None
    rule = FOLDERS.get(op.name)
    if rule is None and op.name in OPS:  # an op registered after this module was imported
        rule = OPS[op.name].fold
    constants = [constant_value(v) for v in op.operands]
    if rule is not None and op.operands and all(c is not None for c in constants):
        try:
            value = rule(*constants)
        except (ArithmeticError, ValueError, TypeError):
            value = None
        if value is not None:
            value = to_result_type(value, op)
        if value is not None:
            result = op.result
            kind = "tile.constant" if result.type.is_scalar else "tile.full"
            new_op = Op(kind, [], [], {"value": value}, [], op.loc)
            new_op.results = [Value(result.type, "", new_op)]
            return new_op
    if len(op.operands) == 2 and op.result.type == op.operands[0].type and \
            RIGHT_IDENTITIES.get(op.name) is not None and \
            constants[1] == RIGHT_IDENTITIES[op.name] and constants[1] is not None:
        return op.operands[0]
    if len(op.operands) == 2 and op.result.type == op.operands[1].type and \
            LEFT_IDENTITIES.get(op.name) is not None and \
            constants[0] == LEFT_IDENTITIES[op.name] and constants[0] is not None:
        return op.operands[1]
    return None


def _fold_block(block: Block, root: Block) -> int:
    changed = 0
    new_ops: list[Op] = []
    for op in block.ops:
        for region in op.regions:
            changed += _fold_block(region, root)
        replacement = _fold_op(op)
        if replacement is None:
            new_ops.append(op)
            continue
        changed += 1
        if isinstance(replacement, Op):
            new_ops.append(replacement)
            replacement = replacement.result
        replace_uses(root, op.result, replacement)  # op has no users left: drop it
    block.ops = new_ops
    return changed


def fold_constants(fn: Function) -> Function:
    """Fold until nothing changes (in place; returns ``fn``)."""
    while _fold_block(fn.body, fn.body):
        pass
    return fn
