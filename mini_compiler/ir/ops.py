"""Tile IR: operations, values, blocks and functions (SSA form).

A kernel is a :class:`Function` whose body is a :class:`Block`: a list of :class:`Op` in program
order. Every op defines zero or more result :class:`Value` s (each defined exactly once: SSA) and
reads operand values defined before it. ``tile.for`` and ``tile.if`` own nested blocks (regions)
that end with ``tile.yield``. Ops are plain dataclasses with a string ``name``, so a pass is a loop
over ``block.ops`` with a dispatch on ``op.name``.

Every op carries ``loc`` (file, line, column of the source that produced it) and a ``layout`` slot
that is ``None`` on the CPU path; the GPU back end attaches blocked/slice layouts there.

IR reference
------------
Every op's operands, attributes, result and meaning are listed in ``mini_compiler/IR_REFERENCE.md``,
which is generated from the op registry (``ir/registry.py``: one record per op). After
``infer_shapes`` the operands of every elementwise op have identical types (shape and element),
except that ``tile.addptr`` takes an integer offset of the pointer's shape and ``tile.where`` an
``i1`` condition of the same shape; broadcasts and casts are explicit ops.

The operand positions of the optional operands are recorded in attributes: ``tile.load`` has
``has_mask``/``has_other``, ``tile.store`` ``has_mask`` and ``tile.dot`` ``has_acc``; use
:func:`load_parts`, :func:`store_parts` and :func:`dot_parts` rather than indexing by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .registry import (  # the op families, derived from the registry (one record per op)
    COMPARISONS,
    ELEMENTWISE_BINARY,
    ELEMENTWISE_UNARY,
    PURE_OPS,
    SIDE_EFFECT_OPS,
)
from .types import TileType


@dataclass(frozen=True)
class Location:
    """Where in the kernel's Python source an op came from (1-based line, 0-based column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_LOCATION = Location("<unknown>", 0, 0)


@dataclass(eq=False)
class Value:
    """An SSA value: defined once, by an op result or as a block argument.

    ``eq=False`` makes values compare (and hash) by identity, which is what SSA needs: two
    values of the same type are still different values.
    """

    type: TileType
    name_hint: str = ""
    owner: Any = None  # the Op that defines it, or the Block whose argument it is

    def __repr__(self) -> str:
        return f"Value({self.type}, {self.name_hint!r})"


@dataclass(eq=False)
class Block:
    """A list of ops with arguments (the function's parameters, or a loop's carried values)."""

    args: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)

    def add_arg(self, type_: TileType, name_hint: str = "") -> Value:
        value = Value(type_, name_hint, self)
        self.args.append(value)
        return value


@dataclass(eq=False)
class Op:
    """One operation. See the module docstring for every op's operands, attributes and result."""

    name: str
    operands: list[Value]
    results: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    regions: list[Block] = field(default_factory=list)
    loc: Location = UNKNOWN_LOCATION
    layout: Any = None  # GPU back end: the layout of the result; unused on the CPU path

    @property
    def result(self) -> Value:
        """The single result of an op that has exactly one."""
        assert len(self.results) == 1, f"{self.name} has {len(self.results)} results"
        return self.results[0]

    def __repr__(self) -> str:
        return f"Op({self.name}, loc={self.loc})"


@dataclass(eq=False)
class Function:
    """A kernel: parameters are the body's block arguments.

    ``arg_attrs[i]`` holds what the runtime knows about argument ``i`` from specialisation
    (e.g. ``{"divisible_by_16": True}``); ``constexprs`` records the compile-time values used.
    """

    name: str
    body: Block
    loc: Location = UNKNOWN_LOCATION
    arg_attrs: list[dict[str, Any]] = field(default_factory=list)
    constexprs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # facts passes leave for later ones

    @property
    def args(self) -> list[Value]:
        return self.body.args


__all__ = ["COMPARISONS", "ELEMENTWISE_BINARY", "ELEMENTWISE_UNARY", "PURE_OPS",
           "SIDE_EFFECT_OPS", "Block", "Function", "Location", "Op", "Value"]


def load_parts(op: Op) -> tuple[Value, Value | None, Value | None]:
    """(pointers, mask or None, other or None) of a ``tile.load``."""
    it = iter(op.operands)
    ptr = next(it)
    mask = next(it) if op.attrs.get("has_mask") else None
    other = next(it) if op.attrs.get("has_other") else None
    return ptr, mask, other


def store_parts(op: Op) -> tuple[Value, Value, Value | None]:
    """(pointers, value, mask or None) of a ``tile.store``."""
    ptr, value = op.operands[0], op.operands[1]
    mask = op.operands[2] if op.attrs.get("has_mask") else None
    return ptr, value, mask


def dot_parts(op: Op) -> tuple[Value, Value, Value | None]:
    """(a, b, accumulator or None) of a ``tile.dot``."""
    acc = op.operands[2] if op.attrs.get("has_acc") else None
    return op.operands[0], op.operands[1], acc


def for_parts(op: Op) -> tuple[Value, Value, Value, list[Value]]:
    """(lower, upper, step, initial carried values) of a ``tile.for``."""
    return op.operands[0], op.operands[1], op.operands[2], list(op.operands[3:])


def walk_ops(block: Block):
    """Every op of ``block`` and of its nested regions, in program order (pre-order)."""
    for op in block.ops:
        yield op
        for region in op.regions:
            yield from walk_ops(region)


def replace_uses(block: Block, old: Value, new: Value) -> None:
    """Make every op in ``block`` (and nested regions) read ``new`` where it read ``old``."""
    for op in walk_ops(block):
        op.operands = [new if v is old else v for v in op.operands]


def count_uses(block: Block) -> dict[Value, int]:
    """How many operand slots read each value (nested regions included)."""
    uses: dict[Value, int] = {}
    for op in walk_ops(block):
        for v in op.operands:
            uses[v] = uses.get(v, 0) + 1
    return uses
