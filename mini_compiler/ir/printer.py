"""A textual form of Tile IR in the spirit of MLIR's generic printer.

One op per line, results numbered ``%0, %1, ...`` in program order, function parameters by their
Python names, the result type after a colon::

    %5 = tile.add %3, %4 : tile<128xi32>
    %9 = tile.load %7, mask %6, other %8 : tile<128xf32>
    %2 = tile.splat %1 : i32 -> tile<128xi32>

The numbering depends only on the IR, so the text is stable: notebooks print it and tests compare
it. ``print_function(fn, locations=True)`` appends ``loc("file":line:col)`` to each op.
"""

from __future__ import annotations

import math
import os

from .ops import Block, Function, Op, Value, dot_parts, for_parts, load_parts, store_parts


def format_constant(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def _format_attr(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return format_constant(value)


class _Printer:
    def __init__(self, locations: bool):
        self.names: dict[Value, str] = {}
        self.counter = 0
        self.lines: list[str] = []
        self.locations = locations

    def name(self, v: Value) -> str:
        if v not in self.names:
            self.names[v] = f"%{self.counter}"
            self.counter += 1
        return self.names[v]

    def names_of(self, values) -> str:
        return ", ".join(self.name(v) for v in values)

    def emit(self, indent: int, text: str, op: Op | None = None) -> None:
        if self.locations and op is not None:
            text += f'  loc("{os.path.basename(op.loc.file)}":{op.loc.line}:{op.loc.col})'
        self.lines.append("  " * indent + text)

    def block(self, block: Block, indent: int) -> None:
        for op in block.ops:
            self.op(op, indent)

    def op(self, op: Op, indent: int) -> None:
        attrs = {k: v for k, v in op.attrs.items() if not k.startswith("has_")}
        if op.layout is not None:
            attrs["layout"] = str(op.layout)
        if op.name == "tile.for":
            self.for_op(op, indent)
            return
        if op.name == "tile.if":
            self.if_op(op, indent)
            return
        results = self.names_of(op.results)
        lhs = f"{results} = " if results else ""
        if op.name == "tile.constant":
            body = format_constant(attrs.pop("value"))
        elif op.name == "tile.full":
            body = format_constant(attrs.pop("value"))
        elif op.name == "tile.load":
            ptr, mask, other = load_parts(op)
            body = self.name(ptr)
            if mask is not None:
                body += f", mask {self.name(mask)}"
            if other is not None:
                body += f", other {self.name(other)}"
        elif op.name == "tile.store":
            ptr, value, mask = store_parts(op)
            body = f"{self.name(ptr)}, {self.name(value)}"
            if mask is not None:
                body += f", mask {self.name(mask)}"
        elif op.name == "tile.dot":
            a, b, acc = dot_parts(op)
            body = f"{self.name(a)}, {self.name(b)}"
            if acc is not None:
                body += f", acc {self.name(acc)}"
        else:
            body = self.names_of(op.operands)
        if attrs:
            attr_text = ", ".join(f"{k} = {_format_attr(v)}" for k, v in attrs.items())
            body = f"{body} {{{attr_text}}}" if body else f"{{{attr_text}}}"
        self.emit(indent, f"{lhs}{op.name} {body} : {self.type_suffix(op)}".replace("  ", " "), op)

    def type_suffix(self, op: Op) -> str:
        if op.name in ("tile.splat", "tile.broadcast", "tile.expand_dims", "tile.cast",
                       "tile.reduce", "tile.trans"):
            return f"{op.operands[0].type} -> {op.result.type}"
        if op.name == "tile.store":
            return f"{op.operands[0].type}"
        if op.name == "tile.yield":
            return ", ".join(str(v.type) for v in op.operands) or "()"
        return ", ".join(str(r.type) for r in op.results)

    def for_op(self, op: Op, indent: int) -> None:
        lower, upper, step, inits = for_parts(op)
        body = op.regions[0]
        iv, carried = body.args[0], body.args[1:]
        results = self.names_of(op.results)
        lhs = f"{results} = " if results else ""
        iter_args = ", ".join(f"{self.name(a)} = {self.name(i)}"
                              for a, i in zip(carried, inits, strict=True))
        types = ", ".join(str(r.type) for r in op.results)
        text = (f"{lhs}tile.for {self.name(iv)} = {self.name(lower)} to {self.name(upper)} "
                f"step {self.name(step)}")
        if carried:
            text += f" iter_args({iter_args}) -> ({types})"
        if op.attrs.get("num_stages"):
            text += f" {{num_stages = {op.attrs['num_stages']}}}"
        self.emit(indent, text + " {", op)
        self.block(body, indent + 1)
        self.emit(indent, "}")

    def if_op(self, op: Op, indent: int) -> None:
        results = self.names_of(op.results)
        lhs = f"{results} = " if results else ""
        types = ", ".join(str(r.type) for r in op.results)
        arrow = f" -> ({types})" if op.results else ""
        self.emit(indent, f"{lhs}tile.if {self.name(op.operands[0])}{arrow} {{", op)
        self.block(op.regions[0], indent + 1)
        self.emit(indent, "} else {")
        self.block(op.regions[1], indent + 1)
        self.emit(indent, "}")


def print_function(fn: Function, locations: bool = False) -> str:
    """The text of ``fn`` (one op per line; see the module docstring)."""
    printer = _Printer(locations)
    params = []
    used: set[str] = set()
    for i, arg in enumerate(fn.args):
        base = arg.name_hint or f"arg{i}"
        name = base
        while name in used:
            name += "_"
        used.add(name)
        printer.names[arg] = f"%{name}"
        extra = ""
        attrs = fn.arg_attrs[i] if i < len(fn.arg_attrs) else {}
        flags = [k for k, v in attrs.items() if v is True]
        if flags:
            extra = " {" + ", ".join(flags) + "}"
        params.append(f"%{name}: {arg.type}{extra}")
    header = f"tile.func @{fn.name}({', '.join(params)})"
    if fn.constexprs:
        consts = ", ".join(f"{k} = {_format_attr(v)}" for k, v in fn.constexprs.items())
        header += f" constexprs {{{consts}}}"
    printer.lines.append(header + " {")
    printer.block(fn.body, 1)
    printer.lines.append("}")
    return "\n".join(printer.lines) + "\n"
