"""Front end: Python AST of a kernel -> Tile IR in SSA form.

The kernel's source is parsed with ``ast`` and walked once. Each Python name maps either to an IR
:class:`Value` or to a plain Python object (a number, a dtype, a module...). Python objects are
*compile-time* values: arithmetic on them is done here, ``if`` on them takes one branch, and
constexpr parameters are bound to them. Only runtime values produce IR.

* ``for ... in range(...)`` becomes ``tile.for``. Its loop-carried values are the names assigned in
  the body that already hold a value before the loop (found by a walk over the body's assignment
  targets); the body is visited once with block arguments in their place and ends in ``tile.yield``.
* ``if`` on a runtime scalar becomes ``tile.if``; names assigned in a branch and visible after it
  become its results.
* Calls to other jit functions are inlined: their body is visited with the arguments bound.

Ops are typed as they are built (``ir.type_rules``), so a shape or type error is reported at the
source line that caused it. Operands are left as the user wrote them (a scalar added to a tile
stays a scalar); ``passes.infer_shapes`` makes broadcasts and casts explicit.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
import types as pytypes
from dataclasses import dataclass
from typing import Any

from .. import language as tl
from ..errors import CompilationError
from ..ir import type_rules
from ..ir.builder import Builder
from ..ir.ops import Block, Function, Location, Value
from ..ir.types import PointerType, ScalarType, TileType, bf16, f32, i1, i32, i64, scalar

SUPPORTED = (
    "Supported: tl.program_id, tl.num_programs, tl.arange, tl.zeros, tl.full, tl.load, tl.store "
    "(mask=, other=), tl.where, tl.maximum, tl.minimum, tl.exp, tl.exp2, tl.log, tl.log2, "
    "tl.sqrt, tl.abs, tl.sin, tl.cos, tl.sum, tl.max, tl.min (axis=), tl.dot (acc=), tl.trans, "
    "tl.cdiv, tl.cast, x.to(dtype), tl.static_assert, tl.multiple_of, tl.max_contiguous; "
    "operators + - * / // % & | ^ ~ and comparisons; x[:, None]; for-loops over range, tl.range "
    "or tl.static_range; if/else; calls to other jit functions."
)

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
UNARY_MATH = ("exp", "exp2", "log", "log2", "sqrt", "abs", "sin", "cos")
# Methods of a tile value and the builtin they stand for (x.sum(axis=1) is tl.sum(x, axis=1)).
TILE_METHODS = {"to": "cast", "sum": "sum", "max": "max", "min": "min", "trans": "trans",
                **{name: name for name in UNARY_MATH}}
# Python builtins that may be applied to compile-time values inside a kernel.
PYTHON_BUILTINS = {"min": min, "max": max, "abs": abs, "float": float, "int": int, "len": len,
                   "bool": bool, "isinstance": isinstance}
PASSTHROUGH_KWARGS = {"cache_modifier", "eviction_policy", "volatile", "boundary_check",
                      "padding_option", "allow_tf32", "input_precision", "max_num_imprecise_acc",
                      "out_dtype", "num_stages", "loop_unroll_factor", "disallow_acc_multi_buffer",
                      "flatten", "warp_specialize", "fp_downcast_rounding"}


class LanguageNamespace:
    """Stands for ``triton.language`` / ``mini_compiler.language`` (and ``tl.math``) in a kernel."""

    def __repr__(self) -> str:
        return "tl"


LANGUAGE = LanguageNamespace()


class TritonNamespace:
    """Stands for the ``triton`` module: only ``triton.cdiv`` and ``triton.language`` are used."""


TRITON = TritonNamespace()


@dataclass
class Builtin:
    name: str


@dataclass
class BoundTileMethod:
    builtin: str
    value: Value


@dataclass
class RangeSpec:
    """The arguments of range / tl.range / tl.static_range, before they become a loop."""

    args: list
    static: bool


@dataclass
class KernelSource:
    """A Python function ready to be compiled: its AST and how to map AST positions to the file."""

    fn: Any
    name: str
    file: str
    first_line: int
    indent: int
    tree: ast.FunctionDef
    globals: dict
    constexpr_params: set


_SOURCE_CACHE: dict[Any, KernelSource] = {}


def python_function_of(obj) -> Any | None:
    """The plain Python function behind a jit object (ours or Triton's), or None."""
    if getattr(obj, "_mini_compiler_jit", False):
        return obj.fn
    cls = type(obj)
    if cls.__name__ in ("JITFunction", "JitFunction") and hasattr(obj, "fn"):
        return obj.fn
    if cls.__module__.startswith("triton.") and hasattr(obj, "fn"):
        # e.g. an Autotuner or Heuristics wrapper around a JITFunction
        inner = python_function_of(obj.fn)
        return inner if inner is not None else obj.fn
    return None


def _is_constexpr_annotation(annotation) -> bool:
    if annotation is None or annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):
        return annotation.split(".")[-1] == "constexpr"
    return getattr(annotation, "__name__", "") == "constexpr"


def kernel_source(fn) -> KernelSource:
    """Parse ``fn`` once (cached)."""
    if fn in _SOURCE_CACHE:
        return _SOURCE_CACHE[fn]
    lines, first_line = inspect.getsourcelines(fn)
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    indent = len(lines[0]) - len(lines[0].lstrip())
    module = ast.parse(dedented)
    tree = next(node for node in module.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
    globals_ = dict(fn.__globals__)
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=False):
            globals_[name] = cell.cell_contents
    signature = inspect.signature(fn)
    constexpr_params = {name for name, p in signature.parameters.items()
                        if _is_constexpr_annotation(p.annotation)}
    info = KernelSource(fn, fn.__name__, inspect.getsourcefile(fn) or "<unknown>", first_line,
                        indent, tree, globals_, constexpr_params)
    _SOURCE_CACHE[fn] = info
    return info


def _is_compile_time(x) -> bool:
    return not isinstance(x, Value)


def _default_element_for_python(x) -> ScalarType:
    if isinstance(x, bool):
        return i1
    if isinstance(x, int):
        return i32 if -(2**31) <= x < 2**31 else i64
    if isinstance(x, float):
        return f32
    raise TypeError(type(x))


class CodeGenerator:
    """Walks one function's AST, appending ops through ``builder``."""

    def __init__(self, source: KernelSource, builder: Builder, scope: dict, kernel_name: str):
        self.src = source
        self.builder = builder
        self.scope = scope
        self.kernel_name = kernel_name
        self.return_value: Any = None
        self.returned = False

    # ----------------------------------------------------------------- locations and errors
    def loc_of(self, node: ast.AST) -> Location:
        line = getattr(node, "lineno", 1) + self.src.first_line - 1
        col = getattr(node, "col_offset", 0) + self.src.indent
        return Location(self.src.file, line, col)

    def error(self, node: ast.AST | None, message: str, supported: str = "") -> CompilationError:
        loc = self.loc_of(node) if node is not None else self.builder.loc
        return CompilationError(message, loc, self.kernel_name, supported)

    def visit(self, node: ast.AST):
        saved = self.builder.loc
        if hasattr(node, "lineno"):
            self.builder.loc = self.loc_of(node)
        try:
            method = getattr(self, "visit_" + type(node).__name__, None)
            if method is None:
                raise self.error(node, f"Python syntax `{type(node).__name__}` is not supported "
                                       "in a kernel", SUPPORTED)
            try:
                return method(node)
            except type_rules.TypeRuleError as e:
                raise self.error(node, str(e)) from None
        finally:
            self.builder.loc = saved

    # ----------------------------------------------------------------- statements
    def visit_body(self, statements: list[ast.stmt]) -> None:
        for stmt in statements:
            if self.returned:
                break
            self.visit(stmt)

    def visit_Pass(self, node):
        pass

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring
        self.visit(node.value)

    def visit_Assign(self, node):
        value = self.visit(node.value)
        for target in node.targets:
            self.assign(target, value)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.assign(node.target, self.visit(node.value))

    def visit_AugAssign(self, node):
        if not isinstance(node.target, ast.Name):
            raise self.error(node, "augmented assignment works on plain names only")
        op = ARITH_OPS.get(type(node.op))
        if op is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not supported",
                             SUPPORTED)
        current = self.lookup(node.target.id, node.target)
        self.assign(node.target, self.binary(op, current, self.visit(node.value), node))

    def assign(self, target: ast.AST, value) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, tl.constexpr):
                value = value.value
            self.scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                raise self.error(target, "cannot unpack this value into "
                                         f"{len(target.elts)} names")
            for t, v in zip(target.elts, value, strict=False):
                self.assign(t, v)
        else:
            raise self.error(target, "only assignments to names (and tuples of names) are "
                                     "supported; tiles are values, write memory with tl.store")

    def visit_Return(self, node):
        self.return_value = None if node.value is None else self.visit(node.value)
        self.returned = True

    def visit_Assert(self, node):
        cond = self.visit(node.test)
        if isinstance(cond, Value):
            raise self.error(node, "assert needs a compile-time condition; use tl.static_assert")
        if not cond:
            msg = self.visit(node.msg) if node.msg is not None else "assertion failed"
            raise self.error(node, f"assertion failed: {msg}")

    def visit_If(self, node):
        cond = self.visit(node.test)
        if not isinstance(cond, Value):
            self.visit_body(node.body if cond else node.orelse)
            return
        if not cond.type.is_scalar:
            raise self.error(node.test, f"`if` needs a scalar condition, got a {cond.type}; "
                                        "for a per-element choice use tl.where(cond, a, b)")
        if _contains_return(node):
            raise self.error(node, "`return` inside an `if` on a runtime value is not supported")
        cond = self.to_bool(cond)
        outer = self.builder.block
        before = dict(self.scope)
        branches = []
        for stmts in (node.body, node.orelse):
            block = Block()
            self.scope = dict(before)
            self.builder.block = block
            self.visit_body(stmts)
            branches.append((block, self.scope))
        self.scope = before
        (then_block, then_scope), (else_block, else_scope) = branches
        # A name becomes a result of the `if` when both branches see it afterwards and at least
        # one of them changed it.
        results = []
        for name in _assigned_names(node.body + node.orelse):
            if name not in then_scope or name not in else_scope:
                continue
            a, b = then_scope[name], else_scope[name]
            if a is before.get(name) and b is before.get(name):
                continue
            if _is_compile_time(a) and _is_compile_time(b):
                if a == b:
                    continue
                if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
                    raise self.error(node, f"`{name}` holds different compile-time values in "
                                           "the two branches of a runtime `if`")
            results.append((name, a, b))
        yields = ([], [])
        for name, a, b in results:
            like = b.type if isinstance(b, Value) else (a.type if isinstance(a, Value) else None)
            converted = []
            for block, v in ((then_block, a), (else_block, b)):
                self.builder.block = block
                converted.append(self.to_value(v, like, node))
            va, vb = converted
            if va.type != vb.type:
                raise self.error(node, f"`{name}` is a {va.type} in the then-branch and a "
                                       f"{vb.type} in the else-branch; both must have one type")
            yields[0].append(va)
            yields[1].append(vb)
        for block, values in zip((then_block, else_block), yields, strict=False):
            self.builder.block = block
            self.builder.create("tile.yield", values, [])
        self.builder.block = outer
        op = self.builder.create("tile.if", [cond], [v.type for v in yields[0]],
                                 regions=[then_block, else_block])
        for (name, _, _), result in zip(results, op.results, strict=False):
            self.scope[name] = result

    def visit_For(self, node):
        if node.orelse:
            raise self.error(node, "`for ... else` is not supported")
        if not isinstance(node.target, ast.Name):
            raise self.error(node.target, "the loop variable must be a single name")
        spec = self.visit(node.iter)
        if not isinstance(spec, RangeSpec):
            raise self.error(node.iter, "for-loops must iterate over range(...), tl.range(...) "
                                        "or tl.static_range(...)", SUPPORTED)
        for stmt in ast.walk(node):
            if isinstance(stmt, (ast.Break, ast.Continue)):
                raise self.error(stmt, "`break` and `continue` are not supported in kernels")
            if isinstance(stmt, ast.Return):
                raise self.error(stmt, "`return` inside a for-loop is not supported")
        args = spec.args
        if len(args) == 1:
            args = [0, args[0], 1]
        elif len(args) == 2:
            args = [args[0], args[1], 1]
        if all(_is_compile_time(a) for a in args) and spec.static:
            for i in range(*args):
                self.scope[node.target.id] = i
                self.visit_body(node.body)
            return
        if all(_is_compile_time(a) for a in args) and args[2] == 0:
            raise self.error(node.iter, "range() step must not be zero")
        bound_element = i32
        for a in args:
            if isinstance(a, Value):
                if not a.type.is_scalar or not a.type.element.is_int:
                    raise self.error(node.iter, f"range bounds must be integer scalars, got "
                                                f"{a.type}")
                if a.type.element == i64:
                    bound_element = i64
            elif not isinstance(a, int):
                raise self.error(node.iter, "range bounds must be integers")
        bounds = [self.to_value(a, scalar(bound_element), node) for a in args]
        bounds = [self.cast(b, bound_element) for b in bounds]
        before = dict(self.scope)
        carried_names = [n for n in _assigned_names(node.body)
                         if n in before and n != node.target.id
                         and isinstance(before[n], (Value, int, float, bool))
                         and not isinstance(before[n], bool)]
        inits = [self.to_value(before[n], None, node) for n in carried_names]
        body = Block()
        iv = body.add_arg(scalar(bound_element), node.target.id)
        carried = [body.add_arg(v.type, n) for n, v in zip(carried_names, inits, strict=False)]
        outer = self.builder.block
        self.builder.block = body
        self.scope = dict(before)
        self.scope[node.target.id] = iv
        for n, arg in zip(carried_names, carried, strict=False):
            self.scope[n] = arg
        self.visit_body(node.body)
        yields = []
        for n, arg in zip(carried_names, carried, strict=False):
            v = self.to_value(self.scope[n], arg.type, node)
            if v.type != arg.type:
                raise self.error(node, f"loop-carried variable `{n}` enters the loop as a "
                                       f"{arg.type} but the body makes it a {v.type}; "
                                       "it must keep one type (initialise it with that type, "
                                       "e.g. tl.zeros(shape, dtype))")
            yields.append(v)
        self.builder.create("tile.yield", yields, [])
        self.builder.block = outer
        self.scope = before
        op = self.builder.create("tile.for", bounds + inits, [v.type for v in inits],
                                 regions=[body])
        for n, r in zip(carried_names, op.results, strict=False):
            self.scope[n] = r

    def visit_While(self, node):
        raise self.error(node, "while-loops are not supported; use for ... in range(...)",
                         SUPPORTED)

    # ----------------------------------------------------------------- expressions
    def visit_Constant(self, node):
        return node.value

    def visit_Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)

    visit_List = visit_Tuple

    def lookup(self, name: str, node: ast.AST):
        if name in self.scope:
            return self.scope[name]
        if name in self.src.globals:
            return self.resolve_global(self.src.globals[name], name, node)
        if name in PYTHON_BUILTINS:
            return PYTHON_BUILTINS[name]
        if name == "range":
            return Builtin("range")
        if name == "print":
            raise self.error(node, "print() is not supported inside a kernel")
        raise self.error(node, f"name `{name}` is not defined")

    def visit_Name(self, node):
        return self.lookup(node.id, node)

    def resolve_global(self, obj, name: str, node: ast.AST):
        """Map a global of the kernel's module to what the compiler understands."""
        if isinstance(obj, pytypes.ModuleType):
            module = obj.__name__
            if module.startswith("triton.language") or module == "mini_compiler.language":
                return LANGUAGE
            if module == "triton":
                return TRITON
            return obj
        if isinstance(obj, tl.constexpr) or type(obj).__name__ == "constexpr":
            return getattr(obj, "value", obj)
        if isinstance(obj, (int, float, bool, str, tuple, type(None))):
            return obj
        converted = self.convert_language_object(obj)
        if converted is not None:
            return converted
        return obj

    def convert_language_object(self, obj):
        """A triton.language / mini_compiler.language object as a builtin or dtype, or None."""
        if isinstance(obj, tl.dtype):
            return obj
        module = getattr(type(obj), "__module__", "") or ""
        if module.startswith("triton.language") and hasattr(obj, "name") and \
                type(obj).__name__ in ("dtype", "pointer_type"):
            name = str(obj.name)
            if name in tl.DTYPES_BY_NAME:
                return tl.DTYPES_BY_NAME[name]
        builtin_name = getattr(obj, "_mini_compiler_builtin", None)
        if builtin_name:
            return Builtin(builtin_name)
        fn_module = getattr(obj, "__module__", "") or ""
        if callable(obj) and fn_module.startswith("triton.language"):
            name = getattr(obj, "__name__", "")
            if name in tl.BUILTINS:
                return Builtin(name)
            raise self.error(None, f"tl.{name} is not supported by mini_compiler", SUPPORTED)
        if callable(obj) and fn_module == "triton" or (
                fn_module.startswith("triton.") and getattr(obj, "__name__", "") == "cdiv"):
            if getattr(obj, "__name__", "") == "cdiv":
                return Builtin("cdiv")
        return None

    def visit_Attribute(self, node):
        base = self.visit(node.value)
        attr = node.attr
        if base is LANGUAGE:
            if attr == "constexpr":
                return tl.constexpr
            if attr == "math":
                return LANGUAGE
            if attr in tl.DTYPES_BY_NAME or isinstance(getattr(tl, attr, None), tl.dtype):
                return getattr(tl, attr)
            if attr in tl.BUILTINS:
                return Builtin(attr)
            if attr == "tensor":
                raise self.error(node, "tl.tensor cannot be used inside a kernel")
            raise self.error(node, f"tl.{attr} is not supported by mini_compiler", SUPPORTED)
        if base is TRITON:
            if attr == "language":
                return LANGUAGE
            if attr == "cdiv":
                return Builtin("cdiv")
            raise self.error(node, f"triton.{attr} is not supported inside a kernel", SUPPORTED)
        if isinstance(base, Value):
            if attr == "dtype":
                return tl.from_ir(base.type.element)
            if attr == "shape":
                return tuple(base.type.shape)
            if attr == "T":
                return self.builtin_trans(node, [base], {})
            if attr in TILE_METHODS:
                return BoundTileMethod(TILE_METHODS[attr], base)
            raise self.error(node, f"tiles have no attribute `{attr}` here; supported: .to(), "
                                   ".dtype, .shape, .T, .sum(), .max(), .min(), .trans()")
        try:
            value = getattr(base, attr)
        except AttributeError:
            raise self.error(node, f"{base!r} has no attribute `{attr}`") from None
        if isinstance(base, pytypes.ModuleType):
            return self.resolve_global(value, attr, node)
        return value

    def visit_Subscript(self, node):
        base = self.visit(node.value)
        index = self.visit(node.slice)
        if not isinstance(base, Value):
            if isinstance(index, Value):
                raise self.error(node, "cannot index a compile-time value with a runtime value")
            return base[index]
        items = index if isinstance(index, tuple) else (index,)
        result = base
        axis = 0
        for item in items:
            if item is None:
                result = self.expand_dims(result, axis)
                axis += 1
            elif isinstance(item, slice) and item == slice(None):
                axis += 1
            else:
                raise self.error(node, "tiles can only be indexed with `:` and `None` "
                                       "(e.g. x[:, None]); load elements with tl.load")
        if axis - sum(1 for i in items if i is None) > base.type.rank:
            raise self.error(node, f"too many indices for a tile of rank {base.type.rank}")
        return result

    def visit_Slice(self, node):
        parts = [None if p is None else self.visit(p) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def visit_BinOp(self, node):
        op = ARITH_OPS.get(type(node.op))
        if op is None:
            raise self.error(node, f"operator {type(node.op).__name__} is not supported",
                             SUPPORTED)
        return self.binary(op, self.visit(node.left), self.visit(node.right), node)

    def visit_UnaryOp(self, node):
        x = self.visit(node.operand)
        if _is_compile_time(x):
            return {ast.USub: lambda v: -v, ast.UAdd: lambda v: +v, ast.Not: lambda v: not v,
                    ast.Invert: lambda v: ~v}[type(node.op)](x)
        if isinstance(node.op, ast.UAdd):
            return x
        if isinstance(node.op, ast.USub):
            if x.type.element.is_pointer:
                raise self.error(node, "cannot negate a pointer")
            return self.builder.create_value("tile.neg", [x], x.type)
        if isinstance(node.op, ast.Invert) or (isinstance(node.op, ast.Not)
                                                and x.type.element == i1):
            if not x.type.element.is_int:
                raise self.error(node, f"~ needs integers or booleans, got {x.type}")
            return self.builder.create_value("tile.not", [x], x.type)
        raise self.error(node, "`not` works on booleans only; use `~` or `== 0`")

    def visit_BoolOp(self, node):
        values = [self.visit(v) for v in node.values]
        op = "tile.and" if isinstance(node.op, ast.And) else "tile.or"
        result = values[0]
        for v in values[1:]:
            if _is_compile_time(result) and _is_compile_time(v):
                result = (result and v) if op == "tile.and" else (result or v)
            else:
                result = self.binary(op, self.to_bool_any(result, node),
                                     self.to_bool_any(v, node), node)
        return result

    def visit_Compare(self, node):
        left = self.visit(node.left)
        result = None
        for op_node, right_node in zip(node.ops, node.comparators, strict=False):
            right = self.visit(right_node)
            if isinstance(op_node, (ast.Is, ast.IsNot)):
                if isinstance(left, Value) or isinstance(right, Value):
                    raise self.error(node, "`is` compares compile-time values only "
                                           "(e.g. `acc is None`)")
                value = (left is right) if isinstance(op_node, ast.Is) else (left is not right)
            elif type(op_node) in COMPARE_OPS:
                value = self.binary(COMPARE_OPS[type(op_node)], left, right, node)
            else:
                raise self.error(node, f"comparison {type(op_node).__name__} is not supported",
                                 SUPPORTED)
            result = value if result is None else self.binary("tile.and", result, value, node)
            left = right
        return result

    def visit_IfExp(self, node):
        cond = self.visit(node.test)
        if _is_compile_time(cond):
            return self.visit(node.body if cond else node.orelse)
        return self.builtin_where(node, [cond, self.visit(node.body), self.visit(node.orelse)],
                                  {})

    def visit_JoinedStr(self, node):
        return "".join(str(self.visit(v)) if not isinstance(v, ast.Constant) else v.value
                       for v in node.values)

    def visit_FormattedValue(self, node):
        return self.visit(node.value)

    def visit_Call(self, node):
        callee = self.visit(node.func)
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.visit(a.value))
            else:
                args.append(self.visit(a))
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        if isinstance(callee, BoundTileMethod):
            return self.call_builtin(callee.builtin, node, [callee.value] + args, kwargs)
        if isinstance(callee, Builtin):
            return self.call_builtin(callee.name, node, args, kwargs)
        if callee is tl.constexpr:
            return args[0]
        if isinstance(callee, tl.dtype):
            return self.builtin_cast(node, args + [callee], kwargs)
        if callee in (min, max) and any(isinstance(a, Value) for a in args):
            # Python's min/max on runtime values mean elementwise minimum/maximum, as in Triton.
            op = "tile.minimum" if callee is min else "tile.maximum"
            result = args[0]
            for a in args[1:]:
                result = self.binary(op, result, a, node)
            return result
        fn = python_function_of(callee)
        if fn is not None:
            return self.inline_call(fn, node, args, kwargs)
        converted = self.convert_language_object(callee) if callable(callee) else None
        if converted is not None:
            return self.visit_Call_with(converted, node, args, kwargs)
        if callable(callee) and all(_is_compile_time(a) for a in args) and \
                all(_is_compile_time(v) for v in kwargs.values()):
            module = getattr(callee, "__module__", None)
            if callee in PYTHON_BUILTINS.values() or module in ("math", "builtins") or \
                    callee in (math.log2, math.sqrt):
                return callee(*args, **kwargs)
        name = getattr(callee, "__name__", repr(callee))
        raise self.error(node, f"cannot call `{name}` in a kernel: only tl builtins and other "
                               "@triton.jit / @mini_compiler.jit functions can be called",
                         SUPPORTED)

    def visit_Call_with(self, callee, node, args, kwargs):
        if isinstance(callee, Builtin):
            return self.call_builtin(callee.name, node, args, kwargs)
        raise self.error(node, "unsupported call")

    def inline_call(self, fn, node, args, kwargs):
        source = kernel_source(fn)
        signature = inspect.signature(fn)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise self.error(node, f"bad call to {fn.__name__}: {e}") from None
        bound.apply_defaults()
        scope = {}
        for name, value in bound.arguments.items():
            if isinstance(value, tl.constexpr):
                value = value.value
            if name in source.constexpr_params and isinstance(value, Value):
                raise self.error(node, f"parameter `{name}` of {fn.__name__} is a tl.constexpr "
                                       "but got a runtime value")
            scope[name] = value
        callee = CodeGenerator(source, self.builder, scope, self.kernel_name)
        saved_loc = self.builder.loc
        callee.visit_body(source.tree.body)
        self.builder.loc = saved_loc
        return callee.return_value

    # ----------------------------------------------------------------- value helpers
    def to_value(self, x, like: TileType | None, node) -> Value:
        """A Python number as a scalar constant; its type follows ``like`` (Triton's weak
        literal typing: ``x * 2`` keeps x's type, ``x_int * 0.5`` becomes float)."""
        if isinstance(x, Value):
            return x
        if isinstance(x, tl.constexpr):
            x = x.value
        if not isinstance(x, (bool, int, float)):
            raise self.error(node, f"expected a number or a tile, got {x!r}")
        element = _default_element_for_python(x)
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
        if _is_compile_time(x):
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

    def binary(self, op: str, a, b, node):
        """``a <op> b`` with Triton's promotion rules (``type_rules.computation_type``): a
        Python number (a literal) takes the type of the tile it meets if its kind is not
        higher; the op is typed with the computation type."""
        if _is_compile_time(a) and _is_compile_time(b):
            try:
                return PY_BINARY[op](a, b)
            except Exception as e:  # e.g. ZeroDivisionError in constexpr arithmetic
                raise self.error(node, f"compile-time arithmetic failed: {e}") from None
        a_literal, b_literal = _is_compile_time(a), _is_compile_time(b)
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

    def builtin_load(self, node, args, kwargs):
        ptr, mask, other = self._args(node, "load", args, kwargs, ["pointer", "mask", "other"], 1)
        if not isinstance(ptr, Value) or not ptr.type.element.is_pointer:
            raise self.error(node, "tl.load needs a pointer or a tile of pointers (a pointer "
                                   f"argument plus offsets), got {_describe(ptr)}")
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
                                   f"{_describe(ptr)}")
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

    def builtin_where(self, node, args, kwargs):
        cond, a, b = self._args(node, "where", args, kwargs, ["condition", "x", "y"], 3)
        if _is_compile_time(cond):
            # Still a tile of the promoted type and the broadcast shape, as in Triton.
            if _is_compile_time(a) and _is_compile_time(b):
                return a if cond else b
            cond = self.literal(bool(cond), i1, node)
        if cond.type.element != i1:
            cond = self.to_bool(cond)
        a_literal, b_literal = _is_compile_time(a), _is_compile_time(b)
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

    def as_tensor(self, x, node) -> Value:
        """A Python number as a constant of its own type (Triton's ``to_tensor``): it then
        promotes like a tile, not like a literal."""
        if isinstance(x, Value):
            return x
        if isinstance(x, tl.constexpr):
            x = x.value
        return self.literal(x, type_rules.literal_element(x), node)

    def min_max(self, op: str, node, a, b):
        """``tl.maximum`` / ``tl.minimum``: both sides become tensors first and bf16 is computed
        in f32, as in Triton (so ``tl.maximum(x_f16, 0.1)`` is an f32 maximum)."""
        if _is_compile_time(a) and _is_compile_time(b):
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
        if _is_compile_time(x):
            fn = {"exp": math.exp, "exp2": lambda v: 2.0 ** v, "log": math.log,
                  "log2": math.log2, "sqrt": math.sqrt, "abs": abs, "sin": math.sin,
                  "cos": math.cos}[name]
            return fn(x)
        if x.type.element.is_pointer:
            raise self.error(node, f"tl.{name} needs numbers, got {x.type}")
        if name == "abs" and x.type.element.is_int:
            return self.builder.create_value("tile.abs", [x], x.type)
        element = type_rules.float_type_for(x.type.element)
        return self.builder.create_value(f"tile.{name}", [x], x.type.with_element(element))

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

    def builtin_cast(self, node, args, kwargs):
        x, dtype, bitcast = self._args(node, "cast", args, kwargs, ["input", "dtype", "bitcast"],
                                       2)
        element = self.dtype_arg(node, dtype)
        if isinstance(bitcast, Value):
            raise self.error(node, "`bitcast=` must be a compile-time True or False")
        if _is_compile_time(x):
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

    def builtin_static_assert(self, node, args, kwargs):
        cond, msg = self._args(node, "static_assert", args, kwargs, ["cond", "msg"], 1)
        if isinstance(cond, Value):
            raise self.error(node, "tl.static_assert needs a compile-time condition")
        if not cond:
            raise self.error(node, f"static assertion failed: {msg or ''}".rstrip(": "))

    def builtin_multiple_of(self, node, args, kwargs):
        return args[0]  # a hint for the GPU's vectoriser; values are unchanged

    builtin_max_contiguous = builtin_multiple_of

    def builtin_range(self, node, args, kwargs):
        if not 1 <= len(args) <= 3:
            raise self.error(node, "range takes 1 to 3 arguments")
        return RangeSpec(list(args), static=False)

    def builtin_static_range(self, node, args, kwargs):
        if any(isinstance(a, Value) for a in args):
            raise self.error(node, "tl.static_range needs compile-time bounds")
        return RangeSpec(list(args), static=True)


for _name in UNARY_MATH:
    setattr(CodeGenerator, f"builtin_{_name}",
            lambda self, node, args, kwargs, _n=_name: self.unary_math(_n, node, args, kwargs))


def _describe(x) -> str:
    if isinstance(x, Value):
        return f"a {x.type}"
    return repr(x)


def _assigned_names(statements: list[ast.stmt]) -> list[str]:
    """Names assigned anywhere in ``statements`` (in first-assignment order)."""
    names: list[str] = []
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if node.id not in names:
                    names.append(node.id)
    return names


def _contains_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


@dataclass
class ParamSpec:
    """What the runtime knows about one kernel parameter for this compilation."""

    name: str
    kind: str  # "pointer" | "int" | "float" | "constexpr"
    element: Any = None  # the IR element type of a runtime parameter
    value: Any = None  # the compile-time value of a constexpr (or an int specialised to 1)
    attrs: dict | None = None


def build_tile_ir(fn, params: list[ParamSpec], kernel_name: str | None = None) -> Function:
    """Compile the Python function ``fn`` for one specialisation into a Tile IR Function."""
    source = kernel_source(fn)
    name = kernel_name or source.name
    body = Block()
    fn_loc = Location(source.file, source.first_line, source.indent)
    function = Function(name, body, fn_loc)
    scope: dict[str, Any] = {}
    for p in params:
        if p.kind == "constexpr":
            scope[p.name] = p.value
            function.constexprs[p.name] = p.value
            continue
        arg = body.add_arg(scalar(p.element), p.name)
        function.arg_attrs.append(dict(p.attrs or {}))
        scope[p.name] = p.value if p.value is not None else arg
    builder = Builder(body, fn_loc)
    generator = CodeGenerator(source, builder, scope, name)
    generator.visit_body(source.tree.body)
    if generator.return_value is not None:
        raise CompilationError("a kernel cannot return a value; write results with tl.store",
                               fn_loc, name)
    return function


_ = builtins  # (kept for readers: Python builtins a kernel may use are listed in PYTHON_BUILTINS)
