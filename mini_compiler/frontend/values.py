"""The base of the code generator: locations, errors, argument binding and how values are made
(literals with Triton's typing, casts, booleans, broadcasts, binary operators and pointer
arithmetic). The syntax visitor (``codegen.py``) and the ``tl.*`` builtins (``builtins/``) build on
it."""

from __future__ import annotations

import ast
from typing import Any

from .. import language as tl
from ..errors import CompilationError
from ..ir import type_rules
from ..ir.builder import Builder
from ..ir.ops import Location, Value
from ..ir.types import TileType, f32, i1, scalar
from .source import KernelSource, default_element_for_python, is_compile_time

ARITH_OPS = {
    ast.Add: "tile.add", ast.Sub: "tile.sub", ast.Mult: "tile.mul", ast.Div: "tile.div",
    ast.FloorDiv: "tile.floordiv", ast.Mod: "tile.mod", ast.BitAnd: "tile.and",
    ast.BitOr: "tile.or", ast.BitXor: "tile.xor",
}
COMPARE_OPS = {
    ast.Lt: "tile.lt", ast.LtE: "tile.le", ast.Gt: "tile.gt", ast.GtE: "tile.ge",
    ast.Eq: "tile.eq", ast.NotEq: "tile.ne",
}
COMPARISON_NAMES = frozenset(COMPARE_OPS.values())
PY_BINARY = {
    "tile.add": lambda a, b: a + b, "tile.sub": lambda a, b: a - b,
    "tile.mul": lambda a, b: a * b, "tile.div": lambda a, b: a / b,
    "tile.floordiv": lambda a, b: a // b, "tile.mod": lambda a, b: a % b,
    "tile.and": lambda a, b: a & b, "tile.or": lambda a, b: a | b,
    "tile.xor": lambda a, b: a ^ b, "tile.lt": lambda a, b: a < b,
    "tile.le": lambda a, b: a <= b, "tile.gt": lambda a, b: a > b,
    "tile.ge": lambda a, b: a >= b, "tile.eq": lambda a, b: a == b,
    "tile.ne": lambda a, b: a != b, "tile.maximum": max, "tile.minimum": min,
}
PASSTHROUGH_KWARGS = {"cache_modifier", "eviction_policy", "volatile", "boundary_check",
                      "padding_option", "allow_tf32", "input_precision", "max_num_imprecise_acc",
                      "out_dtype", "num_stages", "loop_unroll_factor", "disallow_acc_multi_buffer",
                      "flatten", "warp_specialize", "fp_downcast_rounding"}
SUPPORTED = (
    "Supported: tl.program_id, tl.num_programs, tl.arange, tl.zeros, tl.full, tl.load, tl.store "
    "(mask=, other=), tl.atomic_add, tl.where, tl.maximum, tl.minimum, tl.clamp, tl.exp, "
    "tl.exp2, tl.log, tl.log2, tl.sqrt, tl.rsqrt, tl.abs, tl.sin, tl.cos, tl.floor, tl.ceil, "
    "tl.erf, tl.sigmoid, tl.sum, tl.max, tl.min (axis=, keep_dims=, return_indices=), "
    "tl.argmax, tl.argmin, tl.cumsum, tl.dot (acc=), tl.trans, tl.reshape, tl.broadcast_to, "
    "tl.expand_dims, tl.cdiv, tl.cast, x.to(dtype, bitcast=), tl.static_assert, "
    "tl.debug_barrier, tl.multiple_of, tl.max_contiguous; operators + - * / // % & | ^ ~ and "
    "comparisons; x[:, None]; for-loops over range, tl.range or tl.static_range; while-loops; "
    "if/else (and `return` inside an `if`); calls to other jit functions."
)


class GeneratorBase:
    """State shared by the syntax visitor and the builtins: the builder, names in scope, and
    the source for error locations."""

    def __init__(self, source: KernelSource, builder: Builder, scope: dict, kernel_name: str):
        self.src = source
        self.builder = builder
        self.scope = scope
        self.kernel_name = kernel_name
        self.return_value: Any = None
        self.return_node: ast.AST | None = None
        self.returned = False

    def loc_of(self, node: ast.AST) -> Location:
        line = getattr(node, "lineno", 1) + self.src.first_line - 1
        col = getattr(node, "col_offset", 0) + self.src.indent
        return Location(self.src.file, line, col)

    def error(self, node: ast.AST | None, message: str, supported: str = "") -> CompilationError:
        loc = self.loc_of(node) if node is not None else self.builder.loc
        return CompilationError(message, loc, self.kernel_name, supported)

    def call_builtin(self, name: str, node, args, kwargs):
        method = getattr(self, f"builtin_{name}", None)
        if method is None:
            raise self.error(node, f"tl.{name} is not supported", SUPPORTED)
        for key in list(kwargs):
            if key in PASSTHROUGH_KWARGS:
                kwargs.pop(key)
        return method(node, args, kwargs)

    def _args(self, node, name, args, kwargs, params: list[str], required: int):
        """Bind positional and keyword arguments of a builtin to ``params``."""
        values = dict(zip(params, args, strict=False))
        if len(args) > len(params):
            raise self.error(node, f"tl.{name} takes at most {len(params)} arguments")
        for k, v in kwargs.items():
            if k not in params:
                raise self.error(node, f"tl.{name} has no argument `{k}` (it takes "
                                       f"{', '.join(params)})")
            values[k] = v
        for p in params[:required]:
            if p not in values:
                raise self.error(node, f"tl.{name} needs the argument `{p}`")
        return [values.get(p) for p in params]

    def constexpr_int(self, node, value, what: str) -> int:
        if isinstance(value, tl.constexpr):
            value = value.value
        if isinstance(value, Value) or not isinstance(value, int) or isinstance(value, bool):
            raise self.error(node, f"{what} must be a compile-time integer (a literal or a "
                                   "tl.constexpr parameter), got a runtime value"
                             if isinstance(value, Value) else
                             f"{what} must be a compile-time integer, got {value!r}")
        return value

    def shape_arg(self, node, shape) -> tuple[int, ...]:
        if isinstance(shape, (int, Value)):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)):
            raise self.error(node, f"a shape must be a tuple of compile-time integers, got "
                                   f"{shape!r}")
        dims = tuple(self.constexpr_int(node, d, "every dimension of a shape") for d in shape)
        for d in dims:
            if d <= 0 or d & (d - 1):
                raise self.error(node, f"tile dimensions must be powers of two, got {list(dims)}")
        return dims

    def dtype_arg(self, node, dtype) -> Any:
        if isinstance(dtype, tl.constexpr):
            dtype = dtype.value
        converted = self.convert_language_object(dtype) if dtype is not None else None
        if isinstance(converted, tl.dtype):
            dtype = converted
        if not isinstance(dtype, tl.dtype):
            raise self.error(node, f"expected a dtype such as tl.float32, got {dtype!r}")
        return dtype.ir

    def to_value(self, x, like: TileType | None, node) -> Value:
        """A Python number as a scalar constant; its type follows ``like`` (Triton's weak
        literal typing: ``x * 2`` keeps x's type, ``x_int * 0.5`` becomes float)."""
        if isinstance(x, Value):
            return x
        if isinstance(x, tl.constexpr):
            x = x.value
        if not isinstance(x, (bool, int, float)):
            raise self.error(node, f"expected a number or a tile, got {x!r}")
        element = default_element_for_python(x)
        if like is not None and not like.element.is_pointer and not isinstance(x, bool):
            le = like.element
            if isinstance(x, float) and le.is_float:
                element = le
            elif isinstance(x, int) and (le.is_float or (le.is_int and not le.is_bool)):
                element = le if (le.is_float or -(2 ** (le.bits - 1)) <= x < 2 ** (le.bits - 1)
                                 ) else element
        value = float(x) if element.is_float else int(x)
        return self.builder.create_value("tile.constant", [], scalar(element), {"value": value})

    def cast(self, x: Value, element) -> Value:
        if x.type.element == element:
            return x
        return self.builder.create_value("tile.cast", [x], x.type.with_element(element))

    def to_bool(self, x: Value) -> Value:
        if x.type.element == i1:
            return x
        zero = self.to_value(0, x.type, None)
        return self.builder.create_value("tile.ne", [x, zero], x.type.with_element(i1))

    def to_bool_any(self, x, node):
        if is_compile_time(x):
            return bool(x)
        return self.to_bool(x)

    def expand_dims(self, x: Value, axis: int) -> Value:
        shape = list(x.type.shape)
        axis = axis if axis >= 0 else len(shape) + 1 + axis
        shape.insert(axis, 1)
        return self.builder.create_value("tile.expand_dims", [x], x.type.with_shape(tuple(shape)),
                                         {"axis": axis})

    def literal(self, x, element, node) -> Value:
        """A Python number written in the kernel, as a constant of ``element``."""
        if isinstance(x, tl.constexpr):
            x = x.value
        if not isinstance(x, (bool, int, float)):
            raise self.error(node, f"expected a number or a tile, got {x!r}")
        if element.is_int and not element.is_bool:
            if isinstance(x, float):
                x = int(x)
            low, high = ((0, 2 ** element.bits - 1) if element.is_unsigned
                         else (-(2 ** (element.bits - 1)), 2 ** (element.bits - 1) - 1))
            if not low <= x <= high:
                what = "a negative number" if x < 0 and element.is_unsigned else f"{x}"
                raise self.error(node, f"{what} does not fit the {element} operand it meets "
                                       f"(range {low}..{high}); cast one of them first")
        value = float(x) if element.is_float else (bool(x) if element.is_bool else int(x))
        return self.builder.create_value("tile.constant", [], scalar(element), {"value": value})

    def as_tensor(self, x, node) -> Value:
        """A Python number as a constant of its own type (Triton's ``to_tensor``): it then
        promotes like a tile, not like a literal."""
        if isinstance(x, Value):
            return x
        if isinstance(x, tl.constexpr):
            x = x.value
        return self.literal(x, type_rules.literal_element(x), node)

    def binary(self, op: str, a, b, node):
        """``a <op> b`` with Triton's promotion rules (``type_rules.computation_type``): a
        Python number (a literal) takes the type of the tile it meets if its kind is not
        higher; the op is typed with the computation type."""
        if is_compile_time(a) and is_compile_time(b):
            try:
                return PY_BINARY[op](a, b)
            except Exception as e:  # e.g. ZeroDivisionError in constexpr arithmetic
                raise self.error(node, f"compile-time arithmetic failed: {e}") from None
        a_literal, b_literal = is_compile_time(a), is_compile_time(b)
        for x in (a, b):
            if isinstance(x, tl.constexpr):
                x = x.value
            if not isinstance(x, (Value, bool, int, float)):
                raise self.error(node, f"expected a number or a tile, got {x!r}")
        ea = type_rules.literal_element(a) if a_literal else a.type.element
        eb = type_rules.literal_element(b) if b_literal else b.type.element
        if ea.is_pointer or eb.is_pointer:
            a_val = self.literal(a, ea, node) if a_literal else a
            b_val = self.literal(b, eb, node) if b_literal else b
            shape = type_rules.broadcast_shapes(a_val.type.shape, b_val.type.shape)
            return self.pointer_arithmetic(op, a_val, b_val, shape, node)
        if op == "tile.floordiv" and (ea.is_float or eb.is_float):
            raise self.error(node, f"`//` needs integer operands, got {ea} and {eb} (as in "
                                   "Triton); for floats write tl.floor(a / b)")
        if op in ("tile.and", "tile.or", "tile.xor") and (ea.is_float or eb.is_float):
            raise self.error(node, f"bitwise operators need integers or booleans, got {ea} "
                                   f"and {eb}")
        compute = type_rules.computation_type(ea, a_literal, eb, b_literal,
                                              op in type_rules.DIV_OR_MOD_OPS)
        if op == "tile.div" and not compute.is_float:
            compute = f32
        a_val = self.literal(a, compute, node) if a_literal else a
        b_val = self.literal(b, compute, node) if b_literal else b
        shape = type_rules.broadcast_shapes(a_val.type.shape, b_val.type.shape)
        element = i1 if op in COMPARISON_NAMES else compute
        return self.builder.create_value(op, [a_val, b_val], TileType(shape, element))

    def pointer_arithmetic(self, op, a: Value, b: Value, shape, node) -> Value:
        if op in ("tile.lt", "tile.le", "tile.gt", "tile.ge", "tile.eq", "tile.ne") and \
                a.type.element == b.type.element:
            return self.builder.create_value(op, [a, b], TileType(shape, i1))
        if b.type.element.is_pointer and op == "tile.add":
            a, b = b, a
        if op not in ("tile.add", "tile.sub") or b.type.element.is_pointer or \
                not b.type.element.is_int:
            raise self.error(node, f"pointer arithmetic is `pointer + integer` or `pointer - "
                                   f"integer`; got {a.type} and {b.type} with {op[5:]}")
        if op == "tile.sub":
            b = self.builder.create_value("tile.neg", [b], b.type)
        return self.builder.create_value("tile.addptr", [a, b], TileType(shape, a.type.element))

    # ----------------------------------------------------------------- builtins
