"""Python control flow in a kernel: ``if`` (on a compile-time value: one branch; on a runtime
scalar: ``tile.if``, with names assigned in a branch becoming its results, and ``return``
inside it folded into the branches), ``for ... in range`` (``tile.for``, carried values found
from the names the body assigns) and ``while`` (``tile.while``)."""

from __future__ import annotations

import ast

from ..ir.ops import Block, Value
from ..ir.types import i32, i64, scalar
from .source import RangeSpec, is_compile_time
from .values import SUPPORTED, GeneratorBase


class ControlFlow(GeneratorBase):
    def visit_If(self, node):
        cond = self.visit(node.test)
        if not isinstance(cond, Value):
            self.visit_body(node.body if cond else node.orelse)
            return
        if not cond.type.is_scalar:
            raise self.error(node.test, f"`if` needs a scalar condition, got a {cond.type}; "
                                        "for a per-element choice use tl.where(cond, a, b)")
        cond = self.to_bool(cond)
        outer = self.builder.block
        before = dict(self.scope)
        branches = []
        returns = []
        for stmts in (node.body, node.orelse):
            block = Block()
            self.scope = dict(before)
            self.builder.block = block
            self.returned, self.return_value = False, None
            self.visit_body(stmts)
            if self.return_value is not None:
                self.scope[RETURN_SLOT] = self.return_value
            returns.append((self.returned, self.return_value is not None))
            branches.append((block, self.scope))
        self.scope = before
        (then_block, then_scope), (else_block, else_scope) = branches
        if any(has_value for _, has_value in returns) and \
                not all(returned and has_value for returned, has_value in returns):
            raise self.error(node, "when a function returns a value from inside a runtime `if`, "
                                   "every path must return one")
        self.returned = all(returned for returned, _ in returns)
        # A name becomes a result of the `if` when both branches see it afterwards and at least
        # one of them changed it (the returned value travels the same way, as RETURN_SLOT).
        results = []
        names = _assigned_names(node.body + node.orelse)
        if RETURN_SLOT in then_scope:
            names.append(RETURN_SLOT)
        for name in names:
            if name not in then_scope or name not in else_scope:
                continue
            a, b = then_scope[name], else_scope[name]
            if a is before.get(name) and b is before.get(name):
                continue
            if is_compile_time(a) and is_compile_time(b):
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
        if RETURN_SLOT in self.scope:
            self.return_value = self.scope.pop(RETURN_SLOT)

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
        if all(is_compile_time(a) for a in args) and spec.static:
            for i in range(*args):
                self.scope[node.target.id] = i
                self.visit_body(node.body)
            return
        if all(is_compile_time(a) for a in args) and args[2] == 0:
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
        carried_names = self._carried_names(node, before)
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
        """``while cond: body`` becomes ``tile.while``: a region that computes the condition
        from the carried values, and a body region that yields their next values. The carried
        values are found as for ``for`` loops: names assigned in the body that exist before."""
        if node.orelse:
            raise self.error(node, "`while ... else` is not supported")
        for stmt in ast.walk(node):
            if isinstance(stmt, (ast.Break, ast.Continue)):
                raise self.error(stmt, "`break` and `continue` are not supported in kernels")
            if isinstance(stmt, ast.Return):
                raise self.error(stmt, "`return` inside a while-loop is not supported")
        before = dict(self.scope)
        carried_names = self._carried_names(node, before)
        inits = [self.to_value(before[n], None, node) for n in carried_names]
        outer = self.builder.block
        regions = []
        for part in ("condition", "body"):
            block = Block()
            args = [block.add_arg(v.type, n) for n, v in zip(carried_names, inits, strict=True)]
            self.scope = dict(before)
            self.scope.update(zip(carried_names, args, strict=True))
            self.builder.block = block
            if part == "condition":
                cond = self.visit(node.test)
                if is_compile_time(cond):
                    raise self.error(node.test, "the condition of a while-loop must depend on "
                                                "values the loop changes (a runtime value)")
                if not cond.type.is_scalar:
                    raise self.error(node.test, f"`while` needs a scalar condition, got a "
                                                f"{cond.type}")
                self.builder.create("tile.yield", [self.to_bool(cond)], [])
            else:
                self.visit_body(node.body)
                yields = []
                for n, arg in zip(carried_names, args, strict=True):
                    v = self.to_value(self.scope[n], arg.type, node)
                    if v.type != arg.type:
                        raise self.error(node, f"loop-carried variable `{n}` enters the loop as "
                                               f"a {arg.type} but the body makes it a {v.type}; "
                                               "it must keep one type")
                    yields.append(v)
                self.builder.create("tile.yield", yields, [])
            regions.append(block)
        self.builder.block = outer
        self.scope = before
        op = self.builder.create("tile.while", inits, [v.type for v in inits], regions=regions)
        for n, r in zip(carried_names, op.results, strict=True):
            self.scope[n] = r


    def _carried_names(self, loop: ast.For | ast.While, before: dict) -> list[str]:
        """The loop's carried values (:data:`RULES` ``"loop_carried_names"``), keeping those
        that hold a runtime value or a number (names of functions, pointers' constexprs and
        booleans stay compile-time)."""
        names = RULES["loop_carried_names"](loop, set(before))
        for n in names:
            if n not in before:
                raise self.error(loop, f"loop_carried_names gave `{n}`, which is not bound "
                                       "before the loop: only a value that exists before the "
                                       "loop can enter it")
        if len(set(names)) != len(names):
            raise self.error(loop, f"loop_carried_names gave a name twice: {names}")
        return [n for n in names if isinstance(before[n], (Value, int, float))
                and not isinstance(before[n], bool)]


def loop_carried_names(loop: ast.For | ast.While, defined_before: set[str]) -> list[str]:
    """The names a loop carries from one iteration to the next, in the order the body first
    assigns them: every name the body assigns (``=``, ``+=``, tuple targets, inside nested
    ``if`` and ``for`` too) that is bound before the loop. A name first bound inside the loop
    is a temporary of one iteration; the ``for`` loop's own variable is the induction variable,
    not a carried value. Triton's front end finds them the same way."""
    own = {loop.target.id} if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) \
        else set()
    return [n for n in _assigned_names(loop.body) if n in defined_before and n not in own]


# The front end's exercise rule (``mini_compiler.hooks.override(frontend=...)``).
RULES = {"loop_carried_names": loop_carried_names}
DEFAULT_RULES = dict(RULES)


def _assigned_names(statements: list[ast.stmt]) -> list[str]:
    """Names assigned anywhere in ``statements`` (in first-assignment order)."""
    names: list[str] = []
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if node.id not in names:
                    names.append(node.id)
    return names


RETURN_SLOT = "$return"


def _contains_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def _ends_in_return(statements: list[ast.stmt]) -> bool:
    if not statements:
        return False
    last = statements[-1]
    if isinstance(last, ast.Return):
        return True
    return isinstance(last, ast.If) and _ends_in_return(last.body) and \
        _ends_in_return(last.orelse)


def fold_early_returns(statements: list[ast.stmt]) -> list[ast.stmt]:
    """Move what follows an ``if`` that may ``return`` into its branches.

    ``if pid >= n: return`` followed by the rest of the kernel becomes
    ``if pid >= n: return`` / ``else: <the rest>``: each branch then ends where the function
    ends, which is what a ``tile.if`` with two regions can express. A branch that already ends
    in ``return`` does not get the rest (it would never run)."""
    for i, stmt in enumerate(statements):
        if isinstance(stmt, ast.If) and _contains_return(stmt) and i + 1 < len(statements):
            rest = statements[i + 1:]
            body = stmt.body if _ends_in_return(stmt.body) else stmt.body + rest
            orelse = stmt.orelse if _ends_in_return(stmt.orelse) else stmt.orelse + rest
            folded = ast.copy_location(ast.If(test=stmt.test, body=body, orelse=orelse), stmt)
            return statements[:i] + [folded]
    return statements
