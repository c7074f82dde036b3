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
import inspect
import math
import types as pytypes
from typing import Any

from .. import language as tl
from ..errors import CompilationError
from ..ir import type_rules
from ..ir.builder import Builder
from ..ir.ops import Block, Function, Location, Value
from ..ir.types import i1, scalar
from .builtins.constructors import ConstructorBuiltins
from .builtins.math import UNARY_MATH, MathBuiltins
from .builtins.memory import MemoryBuiltins
from .builtins.reductions import ReductionBuiltins
from .builtins.shape import ShapeBuiltins
from .control_flow import ControlFlow, fold_early_returns
from .source import (
    LANGUAGE,
    TRITON,
    BoundTileMethod,
    Builtin,
    KernelSource,
    ParamSpec,
    is_compile_time,
    kernel_source,
    python_function_of,
)
from .values import ARITH_OPS, COMPARE_OPS, SUPPORTED

__all__ = ["CodeGenerator", "KernelSource", "ParamSpec", "build_tile_ir", "kernel_source",
           "python_function_of"]

# Methods of a tile value and the builtin they stand for (x.sum(axis=1) is tl.sum(x, axis=1)).
TILE_METHODS = {"to": "cast", "sum": "sum", "max": "max", "min": "min", "trans": "trans",
                "reshape": "reshape", "view": "view", "broadcast_to": "broadcast_to",
                "expand_dims": "expand_dims", "argmax": "argmax", "argmin": "argmin",
                "cumsum": "cumsum", "sigmoid": "sigmoid",
                **{name: name for name in UNARY_MATH}}
# Python builtins that may be applied to compile-time values inside a kernel.
PYTHON_BUILTINS = {"min": min, "max": max, "abs": abs, "float": float, "int": int, "len": len,
                   "bool": bool, "isinstance": isinstance}
PASSTHROUGH_KWARGS = {"cache_modifier", "eviction_policy", "volatile", "boundary_check",
                      "padding_option", "allow_tf32", "input_precision", "max_num_imprecise_acc",
                      "out_dtype", "num_stages", "loop_unroll_factor", "disallow_acc_multi_buffer",
                      "flatten", "warp_specialize", "fp_downcast_rounding"}



class CodeGenerator(ControlFlow, MemoryBuiltins, MathBuiltins, ReductionBuiltins,
                    ConstructorBuiltins,
                    ShapeBuiltins):
    """Walks one function's AST, appending ops through ``builder`` (syntax here; what each
    ``tl.*`` function means is in ``builtins/``)."""

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
        for stmt in fold_early_returns(statements):
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
        self.return_node = node
        self.returned = True

    def visit_Assert(self, node):
        cond = self.visit(node.test)
        if isinstance(cond, Value):
            raise self.error(node, "assert needs a compile-time condition; use tl.static_assert")
        if not cond:
            msg = self.visit(node.msg) if node.msg is not None else "assertion failed"
            raise self.error(node, f"assertion failed: {msg}")




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
        if is_compile_time(x):
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
            if is_compile_time(result) and is_compile_time(v):
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
        if is_compile_time(cond):
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
        if callable(callee) and all(is_compile_time(a) for a in args) and \
                all(is_compile_time(v) for v in kwargs.values()):
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
        node = generator.return_node
        raise CompilationError("a kernel cannot return a value; write results with tl.store",
                               generator.loc_of(node) if node is not None else fn_loc, name)
    return function


