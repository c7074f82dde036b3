"""Lesson 4's compiler exercises: the solutions pass, and each wrong answer a learner would
write is rejected with a message that says what to change."""

from __future__ import annotations

import ast

import pytest

import mini_compiler.language as tl
from course.check import NotSolvedYet, WrongAnswer
from course.exercises import lesson04_compiler as exercises
from mini_compiler.passes.gpu.layouts import element_coordinates


# -- loop-carried names ---------------------------------------------------------------------
def carried(loop, defined_before):
    names = []
    for stmt in loop.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) \
                    and node.id not in names:
                names.append(node.id)
    own = loop.target.id if isinstance(loop, ast.For) else None
    return [n for n in names if n in defined_before and n != own]


def every_assigned(loop, defined_before):  # forgets the names bound before
    return [n.id for s in loop.body for n in ast.walk(s)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def top_level_only(loop, defined_before):  # skips the bodies of nested `if` and loops
    names = []
    for s in loop.body:
        if isinstance(s, (ast.If, ast.For, ast.While)):
            continue
        names += [n.id for n in ast.walk(s) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store) and n.id in defined_before
                  and n.id not in names]
    return names


def no_augmented(loop, defined_before):
    names = [n for n in carried(loop, defined_before)]
    augmented = {n.target.id for s in loop.body for n in ast.walk(s)
                 if isinstance(n, ast.AugAssign)}
    return [n for n in names if n not in augmented]


def no_tuples(loop, defined_before):  # `x = ...` and `x += ...`, but not `a, b = ...`
    names = []
    for s in loop.body:
        for node in ast.walk(s):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AugAssign) else []
            names += [t.id for t in targets if isinstance(t, ast.Name)
                      and t.id in defined_before and t.id not in names]
    return names


def with_loop_variable(loop, defined_before):
    names = carried(loop, defined_before)
    if isinstance(loop, ast.For) and loop.target.id in defined_before:
        names.append(loop.target.id)
    return names


def every_name_used(loop, defined_before):  # reads too
    names = []
    for s in loop.body:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and n.id in defined_before and n.id not in names \
                    and n.id not in ("tl",):
                names.append(n.id)
    return names


def twice(loop, defined_before):
    return [n.id for s in loop.body for n in ast.walk(s) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store) and n.id in defined_before]


def test_loop_carried_solution_passes(capsys):
    exercises.check_loop_carried_names(carried)
    assert "✓ loop_carried_names" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [
    (every_assigned, "first bound inside the loop"),
    (top_level_only, "nested `if`"),
    (no_augmented, "augmented assignment"),
    (no_tuples, "tuple target"),
    (with_loop_variable, "loop's own variable"),
    (every_name_used, "only read"),
    (twice, "more than once"),
    (lambda loop, before: None, "return a list of names"),
])
def test_loop_carried_wrong_answers_are_named(wrong, message):
    with pytest.raises(WrongAnswer, match="loop_carried_names") as caught:
        exercises.check_loop_carried_names(wrong)
    assert message in str(caught.value)


def test_stubs_are_not_solved_yet():
    def stub(*args):
        raise NotImplementedError
    for check in (exercises.check_loop_carried_names, exercises.check_register_map):
        with pytest.raises(NotSolvedYet, match="not solved yet"):
            check(stub)


def _running_sum(x, out, n):
    total = 0.0
    for i in range(n):
        t = tl.load(x + i)
        total = total + t
    tl.store(out, total)


def test_the_front_end_refuses_a_name_that_is_not_bound_before():
    """A rule that passes the unit cases by luck still cannot make the compiler use a name
    bound inside the loop: the front end says so, with the kernel's line."""
    import torch

    import mini_compiler
    from mini_compiler.errors import CompilationError
    from mini_compiler.hooks import override

    running = mini_compiler.jit(_running_sum)
    x, out = torch.arange(5.0), torch.zeros(1)
    running[(1,)](x, out, 5)  # compiled with the compiler's own rule, and cached on disk
    assert out.item() == 10.0
    # the learner's rule is used, not the kernel compiled (and cached) without it
    with override(frontend={"loop_carried_names": every_assigned}):
        with pytest.raises(CompilationError, match="`t`, which is not bound before the loop"):
            mini_compiler.jit(_running_sum)[(1,)](x, out, 5)


# -- register maps ---------------------------------------------------------------------------
def register_map(source, target, shape):
    first = None
    for warp in range(target.num_warps):
        for lane in range(32):
            held = {}
            for i, c in enumerate(element_coordinates(source, shape, lane, warp)):
                held.setdefault(c, i)
            order = []
            for c in element_coordinates(target, shape, lane, warp):
                if c not in held:
                    return None
                order.append(held[c])
            if first is None:
                first = order
            elif order != first:
                return None
    return tuple(first)


def lane_zero_only(source, target, shape):
    held = {c: i for i, c in enumerate(element_coordinates(source, shape, 0, 0))}
    wanted = element_coordinates(target, shape, 0, 0)
    return None if any(c not in held for c in wanted) else [held[c] for c in wanted]


def inverse(source, target, shape):
    order = register_map(source, target, shape)
    return None if order is None else sorted(range(len(order)), key=lambda j: order[j])


def never_none(source, target, shape):
    held = {c: i for i, c in enumerate(element_coordinates(source, shape, 0, 0))}
    return [held.get(c, 0) for c in element_coordinates(target, shape, 0, 0)]


def warp_zero_only(source, target, shape):
    first = None
    for lane in range(32):
        held = {c: i for i, c in enumerate(element_coordinates(source, shape, lane, 0))}
        order = [held.get(c) for c in element_coordinates(target, shape, lane, 0)]
        if None in order:
            return None
        first = first or order
        if order != first:
            return None
    return first


def same_elements_same_order(source, target, shape):
    held, wanted = (element_coordinates(lay, shape, 0, 0) for lay in (source, target))
    return list(range(len(wanted))) if set(held) == set(wanted) else None


def always_shared_memory(source, target, shape):
    return None


def test_register_map_solution_passes(capsys):
    exercises.check_register_map(register_map)
    out = capsys.readouterr().out
    assert "✓ register_map" in out and "P stays in registers" in out


@pytest.mark.parametrize("wrong,message", [
    (lane_zero_only, "every thread of every warp"),
    (inverse, "inverse renumbering"),
    (never_none, "return None"),
    (warp_zero_only, "two threads' renumberings differ"),
    (same_elements_same_order, "must go through shared memory"),
    (always_shared_memory, "can stay in registers"),
])
def test_register_map_wrong_answers_are_named(wrong, message):
    with pytest.raises(WrongAnswer, match="register_map") as caught:
        exercises.check_register_map(wrong)
    assert message in str(caught.value)


def test_the_compiler_takes_the_learners_map():
    """With a rule that says no conversion stays in registers, P goes through shared memory in
    lesson 4's loop (the check's plug-in is real)."""
    import torch

    from course.kernels.attention import attention_fwd_kernel
    from mini_compiler.backends.gpu import compile_for_gpu
    from mini_compiler.hooks import override

    x = torch.empty(8192, 64, dtype=torch.float16)

    def loop_of(**rule):
        with override(**rule):
            ir = compile_for_gpu(attention_fwd_kernel, x, x, x, x, torch.empty(8192), 4096, 0.1,
                                 HEAD_DIM=64, BLOCK_M=128, BLOCK_N=64, CAUSAL=False,
                                 EVEN_N=True, num_warps=8, num_stages=3).asm["tile.gpu"]
        return ir[ir.index("tile.for"):ir.index("tile.yield")]

    assert "in_registers = true" in loop_of()
    refused = loop_of(gpu={"register_map": always_shared_memory})
    assert "in_registers = true" not in refused
