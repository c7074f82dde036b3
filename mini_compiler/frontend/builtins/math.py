"""Builtins for elementwise math: ``tl.where``, ``tl.maximum``/``minimum``/``clamp``, the unary
functions (``exp`` ... ``floor``, ``erf``, ``sigmoid``, ``rsqrt``), ``tl.cast`` / ``x.to`` and
``tl.cdiv``."""

from __future__ import annotations

import math

from ...ir import type_rules
from ...ir.ops import Value
from ...ir.types import PointerType, TileType, bf16, f32, i1
from ..source import is_compile_time
from ..values import PY_BINARY, GeneratorBase

UNARY_MATH = ("exp", "exp2", "log", "log2", "sqrt", "abs", "sin", "cos", "floor", "ceil")



class MathBuiltins(GeneratorBase):
    def builtin_where(self, node, args, kwargs):
        cond, a, b = self._args(node, "where", args, kwargs, ["condition", "x", "y"], 3)
        if is_compile_time(cond):
            # Still a tile of the promoted type and the broadcast shape, as in Triton.
            if is_compile_time(a) and is_compile_time(b):
                return a if cond else b
            cond = self.literal(bool(cond), i1, node)
        if cond.type.element != i1:
            cond = self.to_bool(cond)
        a_literal, b_literal = is_compile_time(a), is_compile_time(b)
        ea = type_rules.literal_element(a) if a_literal else a.type.element
        eb = type_rules.literal_element(b) if b_literal else b.type.element
        if ea.is_pointer or eb.is_pointer:
            if ea != eb:
                raise self.error(node, "tl.where on pointers needs both sides of one type")
            element = ea
        else:
            element = type_rules.computation_type(ea, a_literal, eb, b_literal)
        a = self.literal(a, element, node) if a_literal else a
        b = self.literal(b, element, node) if b_literal else b
        shape = type_rules.broadcast_shapes(cond.type.shape,
                                            type_rules.broadcast_shapes(a.type.shape,
                                                                        b.type.shape))
        return self.builder.create_value("tile.where", [cond, a, b], TileType(shape, element))

    def min_max(self, op: str, node, a, b):
        """``tl.maximum`` / ``tl.minimum``: both sides become tensors first and bf16 is computed
        in f32, as in Triton (so ``tl.maximum(x_f16, 0.1)`` is an f32 maximum)."""
        if is_compile_time(a) and is_compile_time(b):
            return PY_BINARY[op](a, b)
        a, b = self.as_tensor(a, node), self.as_tensor(b, node)
        a = self.cast(a, f32) if a.type.element == bf16 else a
        b = self.cast(b, f32) if b.type.element == bf16 else b
        return self.binary(op, a, b, node)

    def builtin_maximum(self, node, args, kwargs):
        kwargs.pop("propagate_nan", None)
        a, b = self._args(node, "maximum", args, kwargs, ["x", "y"], 2)
        return self.min_max("tile.maximum", node, a, b)

    def builtin_minimum(self, node, args, kwargs):
        kwargs.pop("propagate_nan", None)
        a, b = self._args(node, "minimum", args, kwargs, ["x", "y"], 2)
        return self.min_max("tile.minimum", node, a, b)

    def unary_math(self, name, node, args, kwargs):
        (x,) = self._args(node, name, args, kwargs, ["x"], 1)
        if is_compile_time(x):
            fn = {"exp": math.exp, "exp2": lambda v: 2.0 ** v, "log": math.log,
                  "log2": math.log2, "sqrt": math.sqrt, "abs": abs, "sin": math.sin,
                  "cos": math.cos, "floor": math.floor, "ceil": math.ceil}[name]
            return fn(x)
        if x.type.element.is_pointer:
            raise self.error(node, f"tl.{name} needs numbers, got {x.type}")
        if name == "abs" and x.type.element.is_int:
            return self.builder.create_value("tile.abs", [x], x.type)
        element = type_rules.float_type_for(x.type.element)
        return self.builder.create_value(f"tile.{name}", [x], x.type.with_element(element))

    def float_tile(self, name: str, node, x) -> Value:
        if is_compile_time(x):
            x = self.as_tensor(float(x), node)
        if x.type.element.is_pointer:
            raise self.error(node, f"tl.{name} needs numbers, got {x.type}")
        return self.cast(x, type_rules.float_type_for(x.type.element))

    def builtin_sigmoid(self, node, args, kwargs):
        """``1 / (1 + exp(-x))``, written as Triton's standard library writes it (so an f16
        input gives an f32 result: ``/`` never computes in f16)."""
        (x,) = self._args(node, "sigmoid", args, kwargs, ["x"], 1)
        x = self.float_tile("sigmoid", node, x)
        negated = self.builder.create_value("tile.neg", [x], x.type)
        e = self.unary_math("exp", node, [negated], {})
        return self.binary("tile.div", 1, self.binary("tile.add", 1, e, node), node)

    def builtin_rsqrt(self, node, args, kwargs):
        """``1 / sqrt(x)`` in x's float type."""
        (x,) = self._args(node, "rsqrt", args, kwargs, ["x"], 1)
        x = self.float_tile("rsqrt", node, x)
        root = self.unary_math("sqrt", node, [x], {})
        return self.cast(self.binary("tile.div", 1.0, root, node), x.type.element)

    def builtin_erf(self, node, args, kwargs):
        """The error function, from ops every back end has (there is no LLVM intrinsic for it):
        its Taylor series near 0 (|x| < 0.5) and Abramowitz and Stegun's formula 7.1.26 beyond
        (absolute error below 1.5e-7), computed in f32 (f64 stays f64)."""
        (x,) = self._args(node, "erf", args, kwargs, ["x"], 1)
        x = self.float_tile("erf", node, x)
        element = x.type.element
        wide = self.cast(x, f32) if element.bits < 32 else x
        mul, add = (lambda a, b: self.binary("tile.mul", a, b, node),
                    lambda a, b: self.binary("tile.add", a, b, node))
        ax = self.unary_math("abs", node, [wide], {})
        x2 = mul(wide, wide)
        series = mul(x2, 1 / 216)  # 1 - x^2/3 + x^4/10 - x^6/42 + x^8/216, by Horner's rule
        for coefficient in (-1 / 42, 1 / 10, -1 / 3):
            series = mul(add(series, coefficient), x2)
        small = mul(mul(add(series, 1.0), wide), 2 / math.sqrt(math.pi))
        t = self.binary("tile.div", 1.0, add(mul(ax, 0.3275911), 1.0), node)
        poly = mul(t, 1.061405429)  # t (a1 + t (a2 + t (a3 + t (a4 + t a5))))
        for coefficient in (-1.453152027, 1.421413741, -0.284496736):
            poly = mul(add(poly, coefficient), t)
        poly = mul(add(poly, 0.254829592), t)
        neg_x2 = self.builder.create_value("tile.neg", [x2], x2.type)
        tail = self.binary("tile.sub", 1.0, mul(poly, self.unary_math("exp", node, [neg_x2], {})),
                           node)
        negative = self.binary("tile.lt", wide, 0.0, node)
        signed_tail = self.builtin_where(node, [negative, self.builder.create_value(
            "tile.neg", [tail], tail.type), tail], {})
        near_zero = self.binary("tile.lt", ax, 0.5, node)
        result = self.builtin_where(node, [near_zero, small, signed_tail], {})
        return self.cast(result, element)

    def builtin_clamp(self, node, args, kwargs):
        """``minimum(maximum(x, lo), hi)`` for floats, with Triton's typing of each side."""
        kwargs.pop("propagate_nan", None)
        x, lo, hi = self._args(node, "clamp", args, kwargs, ["x", "min", "max"], 3)
        x, lo, hi = (self.as_tensor(v, node) for v in (x, lo, hi))
        if not all(v.type.element.is_float for v in (x, lo, hi)):
            raise self.error(node, "tl.clamp works on floats only (as in Triton); for integers "
                                   "write tl.minimum(tl.maximum(x, lo), hi)")
        return self.min_max("tile.minimum", node, self.min_max("tile.maximum", node, x, lo), hi)

    def builtin_cast(self, node, args, kwargs):
        x, dtype, bitcast = self._args(node, "cast", args, kwargs, ["input", "dtype", "bitcast"],
                                       2)
        element = self.dtype_arg(node, dtype)
        if isinstance(bitcast, Value):
            raise self.error(node, "`bitcast=` must be a compile-time True or False")
        if is_compile_time(x):
            if bitcast:
                x = self.literal(x, type_rules.literal_element(x), node)
            else:
                return float(x) if element.is_float else int(x)
        if x.type.element.is_pointer or isinstance(element, PointerType):
            raise self.error(node, "casts between pointers and numbers are not supported")
        if bitcast:
            source = x.type.element
            if source.bits != element.bits:
                raise self.error(node, f"a bitcast keeps the bits, so both types need one width; "
                                       f"{source} has {source.bits} bits and {element} "
                                       f"{element.bits}")
            if source == element:
                return x
            return self.builder.create_value("tile.bitcast", [x], x.type.with_element(element))
        return self.cast(x, element)

    def builtin_cdiv(self, node, args, kwargs):
        a, b = self._args(node, "cdiv", args, kwargs, ["x", "div"], 2)
        return self.binary("tile.floordiv", self.binary("tile.sub", self.binary(
            "tile.add", a, b, node), 1, node), b, node)


for _name in UNARY_MATH:
    setattr(MathBuiltins, f"builtin_{_name}",
            lambda self, node, args, kwargs, _n=_name: self.unary_math(_n, node, args, kwargs))
