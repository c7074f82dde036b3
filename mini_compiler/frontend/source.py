"""A kernel's source as the front end reads it, and the small objects that stand for Python and
``tl`` things while a kernel is compiled (the ``tl`` namespace, a builtin, a range)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from ..ir.ops import Value
from ..ir.types import ScalarType, f32, i1, i32, i64


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


def is_compile_time(x) -> bool:
    return not isinstance(x, Value)


def default_element_for_python(x) -> ScalarType:
    if isinstance(x, bool):
        return i1
    if isinstance(x, int):
        return i32 if -(2**31) <= x < 2**31 else i64
    if isinstance(x, float):
        return f32
    raise TypeError(type(x))


def describe(x) -> str:
    if isinstance(x, Value):
        return f"a {x.type}"
    return repr(x)


@dataclass
class ParamSpec:
    """What the runtime knows about one kernel parameter for this compilation."""

    name: str
    kind: str  # "pointer" | "int" | "float" | "constexpr"
    element: Any = None  # the IR element type of a runtime parameter
    value: Any = None  # the compile-time value of a constexpr (or an int specialised to 1)
    attrs: dict | None = None

