"""Checks for lesson 4's compiler exercises: the values a loop carries, and the layout
conversions that can stay in registers.

Each check first tries the learner's function on its own, on cases chosen so that each usual
mistake shows (with a message naming the case and what to change), then plugs it into
mini_compiler (``mini_compiler.hooks.override``) and compiles lesson 4's ``attention_fwd_kernel``
with it: on a laptop the kernel runs as x86 code (loop-carried values) or every GPU pass is
interpreted and the PTX assembled (register maps); on a GPU it runs there, against torch.
"""

from __future__ import annotations

import ast
import math
import textwrap

import torch

from ..check import WrongAnswer
from ..env import configure
from . import learner_code, passed

# -- exercise 1: loop-carried values ---------------------------------------------------------------

# (what the case shows, loop source, names bound before it, the names it carries)
CARRIED_CASES = [
    ("a running sum", """
        for i in range(n):
            x = tl.load(ptr + i)
            total = total + x
        """, {"n", "ptr", "total"}, ["total"]),
    ("an augmented assignment", """
        for i in range(n):
            total += tl.load(ptr + i)
        """, {"n", "ptr", "total"}, ["total"]),
    ("a tuple target", """
        for i in range(n):
            a, b = b, a + b
        """, {"n", "a", "b"}, ["a", "b"]),
    ("an assignment inside an if", """
        for i in range(n):
            x = tl.load(ptr + i)
            if i > 0:
                best = tl.maximum(best, x)
        """, {"n", "ptr", "best"}, ["best"]),
    ("an assignment inside a nested loop", """
        for i in range(n):
            for j in range(m):
                acc = acc + j
        """, {"n", "m", "acc"}, ["acc"]),
    ("the loop's own variable bound before", """
        for i in range(n):
            total = total + i
        """, {"n", "i", "total"}, ["total"]),
    ("a value only read", """
        for i in range(n):
            total = total + scale * i
        """, {"n", "scale", "total"}, ["total"]),
    ("a while loop", """
        while n > 1:
            n = n // 2
            steps += 1
        """, {"n", "steps"}, ["n", "steps"]),
]


def _lesson_loop() -> tuple[ast.For, set[str], list[str]]:
    """The K/V loop of lesson 4's ``_fwd_inner``, with the names bound before it."""
    import inspect

    from course.kernels.attention import _fwd_inner

    tree = ast.parse(textwrap.dedent(inspect.getsource(_fwd_inner.fn)))
    function = tree.body[0]
    loop = next(node for node in ast.walk(function) if isinstance(node, ast.For))
    before = {a.arg for a in function.args.args}
    return loop, before, ["l_i", "acc", "m_i"]


def _how_assigned(loop: ast.AST, name: str) -> str:
    """How ``name`` is assigned in ``loop``'s body, to say why it is carried."""
    for node in ast.walk(loop):
        if isinstance(node, ast.AugAssign) and getattr(node.target, "id", None) == name:
            return "an augmented assignment (`+=`) assigns it too"
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and any(
                        getattr(e, "id", None) == name for e in target.elts):
                    return "each name of a tuple target (`a, b = ...`) is assigned"
    for node in ast.walk(loop):
        if isinstance(node, (ast.If, ast.For, ast.While)) and node is not loop and any(
                isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                for n in ast.walk(node)):
            return ("it is assigned inside a nested `if` or loop: walk the whole body, not only "
                    "its top-level statements")
    return "the body assigns it and it exists before the loop"


def _why_not_carried(loop: ast.AST, name: str, before: set[str]) -> str:
    if isinstance(loop, ast.For) and getattr(loop.target, "id", None) == name:
        return ("it is the loop's own variable: `tile.for` makes the induction variable itself, "
                "it is not a value carried from one iteration to the next")
    stored = any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                 for stmt in loop.body for n in ast.walk(stmt))
    if name not in before:
        return ("it is first bound inside the loop: a temporary of one iteration, with no value "
                "to enter the loop with")
    if not stored:
        return "it is only read in the loop: it never changes, so there is nothing to carry"
    return "it should not be carried"


def _check_carried_case(what: str, loop: ast.AST, before: set[str], want: list[str], fn) -> None:
    got = fn(loop, set(before))
    if got is None or isinstance(got, (str, bytes)) or not hasattr(got, "__iter__"):
        raise WrongAnswer(f"loop_carried_names: return a list of names; got {got!r}")
    got = list(got)
    source = textwrap.indent(ast.unparse(loop), "    ")
    intro = (f"loop_carried_names, case {what!r}:\n{source}\nwith {sorted(before)} bound "
             f"before it, you returned {got}; it carries {want}.")
    duplicated = sorted({n for n in got if got.count(n) > 1})
    if duplicated:
        raise WrongAnswer(f"{intro} {duplicated} appear more than once: the loop would carry "
                          "two copies. Give each name once.")
    missing = [n for n in want if n not in got]
    if missing:
        raise WrongAnswer(f"{intro} `{missing[0]}` is missing: {_how_assigned(loop, missing[0])}.")
    extra = [n for n in got if n not in want]
    if extra:
        raise WrongAnswer(f"{intro} `{extra[0]}` should not be there: "
                          f"{_why_not_carried(loop, extra[0], before)}.")


def check_loop_carried_names(fn) -> None:
    """``fn(loop, defined_before) -> list of names``: the cases above, lesson 4's loop, then
    lesson 4's forward kernel compiled by mini_compiler with ``fn`` and run."""
    exercise = "loop_carried_names"
    with learner_code(exercise):
        for what, source, before, want in CARRIED_CASES:
            loop = ast.parse(textwrap.dedent(source)).body[0]
            _check_carried_case(what, loop, before, want, fn)
        loop, before, want = _lesson_loop()
        _check_carried_case("lesson 4's K/V loop", loop, before, want, fn)
        done = _run_attention_with({"frontend": {"loop_carried_names": fn}}, exercise)
    passed(exercise, f"right on {len(CARRIED_CASES) + 1} loops; with it mini_compiler "
                     f"compiled lesson 4's forward kernel, {done}")


def _run_attention_with(rule: dict, exercise: str) -> str:
    """Lesson 4's forward pass through ``attention_forward(..., kernel=mini_compiler.jit(...))``
    with ``rule`` installed, against float64 attention: x86 code on a laptop, the GPU where
    there is one. Returns what ran."""
    import mini_compiler
    from course.kernels.attention import (
        FwdConfig,
        attention_forward,
        attention_fwd_kernel,
        naive_attention,
    )
    from mini_compiler.hooks import override

    env = configure()
    dtype = torch.float16 if env.on_gpu else torch.float32
    config = FwdConfig(128, 64, 8, 3) if env.on_gpu else FwdConfig(32, 16)
    n, d = (1000, 64) if env.on_gpu else (77, 32)
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 2, n, d, device=env.device, dtype=dtype) for _ in range(3))
    with override(**rule):
        kernel = mini_compiler.jit(attention_fwd_kernel)
        for causal in (False, True):
            out, _ = attention_forward(q, k, v, causal=causal, config=config, kernel=kernel)
            want = naive_attention(q.double(), k.double(), v.double(), causal)
            error = float((out.double() - want).abs().nan_to_num(1e9).max())
            bound = 1e-2 if env.on_gpu else 1e-4
            if error > bound:
                raise WrongAnswer(
                    f"{exercise}: with your function, lesson 4's forward kernel compiled by "
                    f"mini_compiler computes wrong attention (causal={causal}, N={n}): the "
                    f"largest error is {error:.3g}, more than {bound}.")
    where = "on the GPU" if env.on_gpu else "as x86 code on the CPU"
    return f"which ran {where} and matched float64 attention, causal and not, N = {n}"


# -- exercise 2: conversions that stay in registers ------------------------------------------------


def register_cases():
    """(what the case shows, source layout, target layout, shape) for the register-map check."""
    from mini_compiler.passes.gpu.layouts import BlockedLayout
    from mini_compiler.passes.gpu.mma_layouts import DotOperandLayout, MmaLayout

    mma8, mma4, mma22 = MmaLayout((8, 1)), MmaLayout((4, 1)), MmaLayout((2, 2))
    rows = BlockedLayout((1, 4), (8, 4), (4, 1), (1, 0))
    cols = BlockedLayout((4, 1), (4, 8), (1, 4), (0, 1))
    wide = BlockedLayout((2, 4), (8, 4), (2, 2), (1, 0))
    tall = BlockedLayout((2, 4), (8, 4), (2, 2), (0, 1))
    return [
        ("P of lesson 4 (128 x 64, 8 warps): accumulator -> A operand", mma8,
         DotOperandLayout(0, mma8), (128, 64)),
        ("the same with 4 warps, 2 row blocks per warp", mma4, DotOperandLayout(0, mma4),
         (128, 64)),
        ("warps that split the columns (2 x 2)", mma22, DotOperandLayout(0, mma22), (64, 64)),
        ("the accumulator as the B operand", mma8, DotOperandLayout(1, mma8), (128, 64)),
        ("B with warps along the rows -> B with warps along the columns",
         DotOperandLayout(1, mma4), DotOperandLayout(1, MmaLayout((1, 4))), (64, 64)),
        ("one layout to itself", rows, rows, (32, 32)),
        ("2 x 4 elements per thread, row-major -> column-major", wide, tall, (32, 32)),
        ("one warp's accumulator -> pairs along the rows", MmaLayout((1, 1)),
         BlockedLayout((1, 2), (8, 4), (1, 1), (1, 0)), (64, 64)),
        ("rows of 4 -> columns of 4 (other threads hold them)", rows, cols, (32, 32)),
        ("an accumulator -> a blocked layout", mma8, rows, (128, 64)),
    ]


def _check_register_case(what, source, target, shape, fn) -> None:
    from mini_compiler.passes.gpu.layouts import WARP_SIZE, element_coordinates
    from mini_compiler.passes.gpu.register_maps import derive_register_map

    want = derive_register_map(source, shape, target, shape)
    got = fn(source, target, shape)
    intro = f"register_map, case {what!r} ({source} -> {target}, shape {shape}):"
    if want is None:
        if got is None:
            return
        # which thread lacks an element, or disagrees: say where
        for warp in range(target.num_warps):
            for lane in range(WARP_SIZE):
                held = set(element_coordinates(source, shape, lane, warp))
                missing = [c for c in element_coordinates(target, shape, lane, warp)
                           if c not in held]
                if missing:
                    raise WrongAnswer(
                        f"{intro} you returned a renumbering, but warp {warp}, lane {lane} "
                        f"needs element {missing[0]} in the new layout and does not hold it in "
                        "the old one: the conversion must go through shared memory, so return "
                        "None. Check every thread of every warp, not one.")
        raise WrongAnswer(
            f"{intro} you returned a renumbering, but the threads would need different ones, "
            "and the generated code is one program for all threads: return None when two "
            "threads' renumberings differ (compare every thread of every warp with the first).")
    if got is None:
        raise WrongAnswer(
            f"{intro} you returned None, but every thread already holds every element it needs "
            f"(the renumbering is {list(want)[:12]}{' ...' if len(want) > 12 else ''}): "
            "this conversion can stay in registers.")
    got = list(got)
    if len(got) != len(want):
        raise WrongAnswer(f"{intro} a thread holds {len(want)} elements in the new layout; your "
                          f"renumbering has {len(got)} entries. Give one source register per "
                          "target register.")
    if got != list(want):
        new = element_coordinates(target, shape, 0, 0)
        old = element_coordinates(source, shape, 0, 0)
        i = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        inverse = sorted(range(len(want)), key=lambda j: want[j])
        hint = (" That is the inverse renumbering: entry i must say where target register i "
                "comes from, not where source register i goes.") if got == inverse else ""
        held = old[got[i]] if 0 <= got[i] < len(old) else "nothing (out of range)"
        raise WrongAnswer(
            f"{intro} in warp 0, lane 0, target register {i} is element {new[i]}, which the "
            f"thread holds in source register {want[i]}; you gave {got[i]}, which holds "
            f"{held}.{hint}")


def check_register_map(fn) -> None:
    """``fn(source, target, shape) -> tuple | None``: the cases above, then lesson 4's forward
    kernel compiled with ``fn`` deciding every same-shape conversion."""
    exercise = "register_map"
    with learner_code(exercise):
        cases = register_cases()
        for case in cases:
            _check_register_case(*case, fn)
        done = _compile_attention_with_map(fn, exercise)
    passed(exercise, f"right on {len(cases)} layout pairs; {done}")


def _compile_attention_with_map(fn, exercise: str) -> str:
    """Compile lesson 4's forward kernel for the GPU with ``fn``: P must reach the second dot in
    registers; every GPU pass interpreted against float64; on a GPU, run against torch."""
    from course.kernels.attention import LOG2E, attention_fwd_kernel, naive_attention
    from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report
    from mini_compiler.backends.gpu.ptxas import find_ptxas
    from mini_compiler.hooks import override
    from mini_compiler.tools.gpu_stages import interpret_gpu_stages

    rule = {"gpu": {"register_map": fn}}
    n, d = 4096, 64
    x = torch.empty(2 * n, d, dtype=torch.float16)
    with override(**rule):
        compiled = compile_for_gpu(attention_fwd_kernel, x, x, x, x, torch.empty(2 * n), n, 0.1,
                                   HEAD_DIM=d, BLOCK_M=128, BLOCK_N=64, CAUSAL=False,
                                   EVEN_N=True, num_warps=8, num_stages=3)
    ir = compiled.asm["tile.gpu"]
    loop = ir[ir.index("tile.for"):ir.index("tile.yield")]
    converts = [line for line in loop.splitlines() if "gpu.convert_layout" in line]
    if "gpu.local_alloc" in loop or any("in_registers = true" not in c for c in converts):
        raise WrongAnswer(f"{exercise}: with your function P goes through shared memory inside "
                          "lesson 4's loop; it should stay in registers.")
    done = "with it P stays in registers in lesson 4's forward kernel"
    torch.manual_seed(5)
    small, heads = 40, 2
    q, k, v = (torch.randn(heads, small, 32).half() for _ in range(3))
    out, lse = torch.empty_like(q), torch.empty(heads, small)
    with override(**rule):
        stages = interpret_gpu_stages(
            attention_fwd_kernel, (math.ceil(small / 32), heads),
            (q, k, v, out, lse, small, LOG2E / math.sqrt(32)), [out, lse],
            dict(HEAD_DIM=32, BLOCK_M=32, BLOCK_N=16, CAUSAL=True, EVEN_N=False), num_warps=2)
    want = naive_attention(q.double(), k.double(), v.double(), True)
    for stage, (got, _) in stages.items():
        if float((got.double() - want).abs().max()) > 1e-2:
            raise WrongAnswer(f"{exercise}: with your function lesson 4's kernel computes wrong "
                              f"attention after the pass {stage!r}.")
    done += f", and computes attention right after each of its {len(stages)} GPU passes"
    if find_ptxas():
        report = ptxas_report(compiled).kernel()
        done += f"; ptxas: {report.registers} registers, {report.spill_store_bytes} B spilled"
    if configure().on_gpu:
        done += "; " + _run_attention_with(rule, exercise)
    return done
