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

    def builtin_reshape(self, node, args, kwargs):
        kwargs.pop("can_reorder", None)
        x, shape = args[0], (args[1:] if len(args) > 2 else (args[1] if len(args) > 1 else
                                                              kwargs.pop("shape", None)))
        if not isinstance(x, Value):
            raise self.error(node, "tl.reshape needs a tile")
        if shape is None:
            raise self.error(node, "tl.reshape needs the new shape")
        dims = self.shape_arg(node, shape)
        if _numel(dims) != x.type.numel:
            raise self.error(node, f"cannot reshape a tile of shape {list(x.type.shape)} "
                                   f"({x.type.numel} elements) to {list(dims)}")
        if dims == x.type.shape:
            return x
        return self.builder.create_value("tile.reshape", [x], x.type.with_shape(dims))

    builtin_view = builtin_reshape

    def builtin_broadcast_to(self, node, args, kwargs):
        x, shape = args[0], (args[1:] if len(args) > 2 else (args[1] if len(args) > 1 else
                                                              kwargs.pop("shape", None)))
        dims = self.shape_arg(node, shape)
        x = self.as_tensor(x, node)
        type_rules.broadcast_shapes(x.type.shape, dims)  # raises if it cannot
        if x.type.is_scalar:
            return self.builder.create_value("tile.splat", [x], x.type.with_shape(dims))
        while x.type.rank < len(dims):
            x = self.expand_dims(x, 0)
        if x.type.shape != dims:
            if any(a != b and a != 1 for a, b in zip(x.type.shape, dims, strict=True)):
                raise self.error(node, f"cannot broadcast {list(x.type.shape)} to {list(dims)}")
            x = self.builder.create_value("tile.broadcast", [x], x.type.with_shape(dims))
        return x

    def builtin_expand_dims(self, node, args, kwargs):
        x, axis = self._args(node, "expand_dims", args, kwargs, ["input", "axis"], 2)
        x = self.as_tensor(x, node)
        axes = axis if isinstance(axis, (tuple, list)) else [axis]
        rank = x.type.rank + len(axes)
        normalised = sorted(type_rules.normalise_axis(self.constexpr_int(node, a, "axis"), rank)
                            for a in axes)
        for a in normalised:
            x = self.expand_dims(x, a)
        return x


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
