"""Builtins that make values from nothing, or from compile-time facts: program ids, ``tl.arange``,
``tl.zeros`` / ``tl.full`` (and ``*_like``), ranges for loops, ``tl.static_assert`` and
``tl.debug_barrier``."""

from __future__ import annotations

from ... import language as tl
from ...ir.ops import Value
from ...ir.types import TileType, i32, scalar
from ..source import RangeSpec
from ..values import GeneratorBase


class ConstructorBuiltins(GeneratorBase):
    def builtin_program_id(self, node, args, kwargs):
        (axis,) = self._args(node, "program_id", args, kwargs, ["axis"], 1)
        axis = self.constexpr_int(node, axis, "the axis of tl.program_id")
        if axis not in (0, 1, 2):
            raise self.error(node, f"tl.program_id axis must be 0, 1 or 2, got {axis}")
        return self.builder.create_value("tile.program_id", [], scalar(i32), {"axis": axis})

    def builtin_num_programs(self, node, args, kwargs):
        (axis,) = self._args(node, "num_programs", args, kwargs, ["axis"], 1)
        axis = self.constexpr_int(node, axis, "the axis of tl.num_programs")
        if axis not in (0, 1, 2):
            raise self.error(node, f"tl.num_programs axis must be 0, 1 or 2, got {axis}")
        return self.builder.create_value("tile.num_programs", [], scalar(i32), {"axis": axis})

    def builtin_arange(self, node, args, kwargs):
        start, end = self._args(node, "arange", args, kwargs, ["start", "end"], 2)
        for v, what in ((start, "start"), (end, "end")):
            if isinstance(v, Value):
                raise self.error(node, f"tl.arange needs compile-time bounds, but `{what}` is a "
                                       "runtime value; make the block size a tl.constexpr "
                                       "parameter and mask the tail with `offsets < n`")
        start = self.constexpr_int(node, start, "tl.arange start")
        end = self.constexpr_int(node, end, "tl.arange end")
        size = end - start
        if size <= 0 or size & (size - 1):
            raise self.error(node, f"tl.arange({start}, {end}) has {size} elements; the size of "
                                   "a tile must be a power of two (pad it and use a mask)")
        return self.builder.create_value("tile.arange", [], TileType((size,), i32),
                                         {"start": start, "end": end})

    def builtin_zeros(self, node, args, kwargs):
        shape, dtype = self._args(node, "zeros", args, kwargs, ["shape", "dtype"], 2)
        element = self.dtype_arg(node, dtype)
        value = 0.0 if element.is_float else 0
        return self.builder.create_value("tile.full", [], TileType(self.shape_arg(node, shape),
                                                                   element), {"value": value})

    def builtin_full(self, node, args, kwargs):
        shape, value, dtype = self._args(node, "full", args, kwargs, ["shape", "value", "dtype"],
                                         3)
        element = self.dtype_arg(node, dtype)
        type_ = TileType(self.shape_arg(node, shape), element)
        if isinstance(value, Value):
            if not value.type.is_scalar:
                raise self.error(node, "tl.full needs a scalar value")
            return self.builder.create_value("tile.splat", [self.cast(value, element)], type_)
        value = float(value) if element.is_float else int(value)
        return self.builder.create_value("tile.full", [], type_, {"value": value})

    def builtin_zeros_like(self, node, args, kwargs):
        (x,) = self._args(node, "zeros_like", args, kwargs, ["input"], 1)
        return self.builtin_zeros(node, [x.type.shape, tl.from_ir(x.type.element)], {})

    def builtin_full_like(self, node, args, kwargs):
        x, value = self._args(node, "full_like", args, kwargs, ["input", "value"], 2)
        return self.builtin_full(node, [x.type.shape, value, tl.from_ir(x.type.element)], {})

    def builtin_range(self, node, args, kwargs):
        if not 1 <= len(args) <= 3:
            raise self.error(node, "range takes 1 to 3 arguments")
        return RangeSpec(list(args), static=False)

    def builtin_static_range(self, node, args, kwargs):
        if any(isinstance(a, Value) for a in args):
            raise self.error(node, "tl.static_range needs compile-time bounds")
        return RangeSpec(list(args), static=True)

    def builtin_static_assert(self, node, args, kwargs):
        cond, msg = self._args(node, "static_assert", args, kwargs, ["cond", "msg"], 1)
        if isinstance(cond, Value):
            raise self.error(node, "tl.static_assert needs a compile-time condition")
        if not cond:
            raise self.error(node, f"static assertion failed: {msg or ''}".rstrip(": "))

    def builtin_debug_barrier(self, node, args, kwargs):
        """Wait until every thread of the program gets here (a GPU barrier; nothing on the
        CPU, where one thread runs a program)."""
        self.builder.create("tile.debug_barrier", [], [])
