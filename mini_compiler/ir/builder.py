"""A small helper that appends ops to a block at the current source location."""

from __future__ import annotations

from typing import Any

from .ops import UNKNOWN_LOCATION, Block, Location, Op, Value
from .types import TileType


class Builder:
    """Appends ops to ``block``; ``loc`` is stamped on every op created until it changes."""

    def __init__(self, block: Block, loc: Location = UNKNOWN_LOCATION):
        self.block = block
        self.loc = loc

    def create(
        self,
        name: str,
        operands: list[Value],
        result_types: list[TileType],
        attrs: dict[str, Any] | None = None,
        regions: list[Block] | None = None,
    ) -> Op:
        op = Op(name, list(operands), [], dict(attrs or {}), list(regions or []), self.loc)
        op.results = [Value(t, "", op) for t in result_types]
        self.block.ops.append(op)
        return op

    def create_value(
        self, name: str, operands: list[Value], result_type: TileType,
        attrs: dict[str, Any] | None = None,
    ) -> Value:
        return self.create(name, operands, [result_type], attrs).result

    def insert_before(self, anchor: Op, op_factory) -> Value:
        """Build one op with ``op_factory(self)`` and move it in front of ``anchor``.

        Passes use this to add explicit conversions next to the op that needs them.
        """
        value = op_factory(self)
        new_op = self.block.ops.pop()
        index = next(i for i, o in enumerate(self.block.ops) if o is anchor)
        self.block.ops.insert(index, new_op)
        return value
