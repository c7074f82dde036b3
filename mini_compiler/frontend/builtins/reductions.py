"""Builtins for reductions and scans: ``tl.sum``, ``tl.max``, ``tl.min`` (with
``return_indices``), ``tl.argmax``, ``tl.argmin`` and ``tl.cumsum``, with Triton's result types."""

from __future__ import annotations

from ...ir import type_rules
from ...ir.ops import Value
from ...ir.types import TileType, bf16, f32, i32, u32
from ..values import GeneratorBase


class ReductionBuiltins(GeneratorBase):
    def reduction_axes(self, node, kind, x, axis) -> list[int]:
        if not isinstance(x, Value):
            raise self.error(node, f"tl.{kind} needs a tile")
        if isinstance(axis, Value):
            raise self.error(node, f"the axis of tl.{kind} must be a compile-time integer")
        if axis is None:
            return list(range(x.type.rank))
        return [type_rules.normalise_axis(self.constexpr_int(node, axis, "axis"), x.type.rank)]

    def reduce_value(self, kind: str, x: Value, axes: list[int], keep_dims: bool) -> Value:
        """``tile.reduce`` over each of ``axes`` (innermost first)."""
        result = x
        for ax in sorted(axes, reverse=True):
            shape = type_rules.reduce_result_shape(result.type.shape, ax)
            result = self.builder.create_value("tile.reduce", [result],
                                               TileType(shape, result.type.element),
                                               {"axis": ax, "kind": kind})
        if keep_dims:
            for ax in sorted(axes):
                result = self.expand_dims(result, ax)
        return result

    def builtin_sum(self, node, args, kwargs):
        x, axis, keep_dims, dtype = self._args(node, "sum", args, kwargs,
                                               ["input", "axis", "keep_dims", "dtype"], 1)
        axes = self.reduction_axes(node, "sum", x, axis)
        if dtype is not None:
            x = self.cast(x, self.dtype_arg(node, dtype))
        elif x.type.element.is_int and x.type.element.bits < 32:
            # Small integers are summed in 32 bits of the same signedness, as in Triton
            # (booleans count as unsigned there).
            x = self.cast(x, i32 if x.type.element.is_signed else u32)
        if x.type.is_scalar:
            return x
        return self.reduce_value("sum", x, axes, keep_dims)

    def _min_max_input(self, x: Value) -> Value:
        """Triton computes max/min of bf16 in f32, and of anything narrower than 32 bits in f32
        or i32 (booleans included)."""
        element = x.type.element
        if element == bf16 or (element.is_float and element.bits < 32):
            return self.cast(x, f32)
        if element.is_int and element.bits < 32:
            return self.cast(x, i32)
        return x

    def min_max_reduce(self, kind: str, node, args, kwargs):
        x, axis, return_indices, tie_break_left, keep_dims = self._args(
            node, kind, args, kwargs,
            ["input", "axis", "return_indices", "return_indices_tie_break_left", "keep_dims"], 1)
        kwargs.pop("propagate_nan", None)
        axes = self.reduction_axes(node, kind, x, axis)
        if isinstance(return_indices, Value) or isinstance(keep_dims, Value):
            raise self.error(node, f"return_indices= and keep_dims= of tl.{kind} must be "
                                   "compile-time values")
        if return_indices:
            return self.arg_reduce(kind, node, x, axes, keep_dims)
        x = self._min_max_input(x)
        if x.type.is_scalar:
            return x
        return self.reduce_value(kind, x, axes, keep_dims)

    def arg_reduce(self, kind: str, node, x: Value, axes: list[int], keep_dims: bool):
        """(values, indices) of a max or min along one axis; ties go to the smallest index.

        Built from ops every back end has: the extreme value, broadcast back, compared with
        the tile, and the smallest index where they are equal."""
        if len(axes) != 1:
            if x.type.rank != 1:
                raise self.error(node, f"tl.{kind}(..., return_indices=True) and tl.arg{kind} "
                                       "need one axis (axis=...) for a tile of rank "
                                       f"{x.type.rank}")
        (axis,) = axes if len(axes) == 1 else (0,)
        if x.type.element == bf16:
            x = self.cast(x, f32)
        extreme = self.reduce_value(kind, x, [axis], keep_dims=True)
        hit = self.binary("tile.eq", x, extreme, node)
        size = x.type.shape[axis]
        index = self.builder.create_value("tile.arange", [], TileType((size,), i32),
                                          {"start": 0, "end": size})
        for _ in range(x.type.rank - 1 - axis):
            index = self.expand_dims(index, index.type.rank)
        candidates = self.builtin_where(node, [hit, index, size], {})
        indices = self.reduce_value("min", candidates, [axis], keep_dims)
        values = extreme if keep_dims else self.reduce_value(kind, x, [axis], keep_dims)
        return values, indices

    def builtin_max(self, node, args, kwargs):
        return self.min_max_reduce("max", node, args, kwargs)

    def builtin_min(self, node, args, kwargs):
        return self.min_max_reduce("min", node, args, kwargs)

    def builtin_argmax(self, node, args, kwargs):
        x, axis, tie_break_left, keep_dims = self._args(
            node, "argmax", args, kwargs, ["input", "axis", "tie_break_left", "keep_dims"], 2)
        axes = self.reduction_axes(node, "argmax", x, axis)
        return self.arg_reduce("max", node, x, axes, keep_dims)[1]

    def builtin_argmin(self, node, args, kwargs):
        x, axis, tie_break_left, keep_dims = self._args(
            node, "argmin", args, kwargs, ["input", "axis", "tie_break_left", "keep_dims"], 2)
        axes = self.reduction_axes(node, "argmin", x, axis)
        return self.arg_reduce("min", node, x, axes, keep_dims)[1]

    def builtin_cumsum(self, node, args, kwargs):
        x, axis, reverse, dtype = self._args(node, "cumsum", args, kwargs,
                                             ["input", "axis", "reverse", "dtype"], 1)
        if not isinstance(x, Value) or x.type.is_scalar:
            raise self.error(node, "tl.cumsum needs a tile")
        (axis,) = self.reduction_axes(node, "cumsum", x, 0 if axis is None else axis)
        if isinstance(reverse, Value):
            raise self.error(node, "reverse= of tl.cumsum must be a compile-time value")
        if x.type.element == bf16:
            x = self.cast(x, f32)
        if dtype is not None:
            x = self.cast(x, self.dtype_arg(node, dtype))
        elif x.type.element.is_int and x.type.element.bits < 32:
            x = self.cast(x, i32 if x.type.element.is_signed else u32)
        return self.builder.create_value("tile.scan", [x], x.type,
                                         {"axis": axis, "kind": "sum",
                                          "reverse": bool(reverse)})
