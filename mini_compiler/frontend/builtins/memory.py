"""Builtins for memory and masks: ``tl.load``, ``tl.store``, ``tl.atomic_add`` and the hints
``tl.multiple_of`` / ``tl.max_contiguous``."""

from __future__ import annotations

from ...ir import type_rules
from ...ir.ops import Value
from ...ir.types import TileType, i1, scalar
from ..source import describe
from ..values import GeneratorBase


class MemoryBuiltins(GeneratorBase):
    def builtin_load(self, node, args, kwargs):
        ptr, mask, other = self._args(node, "load", args, kwargs, ["pointer", "mask", "other"], 1)
        if not isinstance(ptr, Value) or not ptr.type.element.is_pointer:
            raise self.error(node, "tl.load needs a pointer or a tile of pointers (a pointer "
                                   f"argument plus offsets), got {describe(ptr)}")
        shape = ptr.type.shape
        operands = [ptr]
        attrs = {"has_mask": False, "has_other": False}
        if mask is not None:
            mask = self.to_value(mask, None, node)
            if mask.type.element != i1:
                raise self.error(node, f"the mask of tl.load must be boolean, got {mask.type}")
            shape = type_rules.broadcast_shapes(shape, mask.type.shape)
            operands.append(mask)
            attrs["has_mask"] = True
        pointee = ptr.type.element.pointee
        if other is not None:
            if mask is None:
                raise self.error(node, "tl.load(other=...) needs a mask (other fills the masked-"
                                       "off lanes)")
            other = self.to_value(other, scalar(pointee), node)
            shape = type_rules.broadcast_shapes(shape, other.type.shape)
            operands.append(other)
            attrs["has_other"] = True
        return self.builder.create_value("tile.load", operands, TileType(shape, pointee), attrs)

    def builtin_store(self, node, args, kwargs):
        ptr, value, mask = self._args(node, "store", args, kwargs, ["pointer", "value", "mask"], 2)
        if not isinstance(ptr, Value) or not ptr.type.element.is_pointer:
            raise self.error(node, "tl.store needs a pointer or a tile of pointers, got "
                                   f"{describe(ptr)}")
        pointee = ptr.type.element.pointee
        value = self.to_value(value, scalar(pointee), node)
        if value.type.element.is_pointer:
            raise self.error(node, "tl.store cannot store pointers")
        shape = type_rules.broadcast_shapes(ptr.type.shape, value.type.shape)
        operands = [ptr, value]
        has_mask = mask is not None
        if has_mask:
            mask = self.to_value(mask, None, node)
            if mask.type.element != i1:
                raise self.error(node, f"the mask of tl.store must be boolean, got {mask.type}")
            shape = type_rules.broadcast_shapes(shape, mask.type.shape)
            operands.append(mask)
        self.builder.create("tile.store", operands, [], {"has_mask": has_mask})

    def builtin_multiple_of(self, node, args, kwargs):
        return args[0]  # a hint for the GPU's vectoriser; values are unchanged

    builtin_max_contiguous = builtin_multiple_of

    def builtin_atomic_add(self, node, args, kwargs):
        """``tl.atomic_add(pointers, values, mask=None)``: add in memory, one element at a time,
        safely against other programs; returns the values memory held before."""
        kwargs.pop("sem", None)
        kwargs.pop("scope", None)
        ptr, value, mask = self._args(node, "atomic_add", args, kwargs,
                                      ["pointer", "val", "mask"], 2)
        if not isinstance(ptr, Value) or not ptr.type.element.is_pointer:
            raise self.error(node, "tl.atomic_add needs a pointer or a tile of pointers, got "
                                   f"{describe(ptr)}")
        pointee = ptr.type.element.pointee
        if pointee.is_bool:
            raise self.error(node, f"tl.atomic_add cannot add {pointee} values")
        value = self.to_value(value, scalar(pointee), node)
        value = self.cast(value, pointee)
        shape = type_rules.broadcast_shapes(ptr.type.shape, value.type.shape)
        operands = [ptr, value]
        if mask is not None:
            mask = self.to_value(mask, None, node)
            if mask.type.element != i1:
                raise self.error(node, "the mask of tl.atomic_add must be boolean, got "
                                       f"{mask.type}")
            shape = type_rules.broadcast_shapes(shape, mask.type.shape)
            operands.append(mask)
        return self.builder.create_value("tile.atomic_add", operands, TileType(shape, pointee),
                                         {"has_mask": mask is not None})
