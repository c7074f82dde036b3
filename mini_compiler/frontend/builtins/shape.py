"""Builtins that rearrange tiles: ``tl.dot``, ``tl.trans``, ``tl.reshape`` / ``tl.view``,
``tl.broadcast_to`` and ``tl.expand_dims``."""

from __future__ import annotations

from ...ir import type_rules
from ...ir.ops import Value
from ..values import GeneratorBase


class ShapeBuiltins(GeneratorBase):
    def builtin_dot(self, node, args, kwargs):
        a, b, acc = self._args(node, "dot", args, kwargs, ["input", "other", "acc"], 2)
        if not isinstance(a, Value) or not isinstance(b, Value):
            raise self.error(node, "tl.dot needs two tiles")
        acc_type = acc.type if isinstance(acc, Value) else None
        result_type = type_rules.dot_result_type(a.type, b.type, acc_type)
        for dim in (*a.type.shape, b.type.shape[1]):
            if dim < 16:
                raise self.error(node, f"tl.dot needs every dimension to be at least 16 (as "
                                       f"Triton), got {list(a.type.shape)} @ {list(b.type.shape)}")
        operands = [a, b] + ([acc] if acc_type is not None else [])
        return self.builder.create_value("tile.dot", operands, result_type,
                                         {"has_acc": acc_type is not None})

    def builtin_trans(self, node, args, kwargs):
        x = args[0]
        if not isinstance(x, Value) or x.type.rank != 2:
            raise self.error(node, "tl.trans needs a 2-D tile")
        m, n = x.type.shape
        return self.builder.create_value("tile.trans", [x], x.type.with_shape((n, m)))
