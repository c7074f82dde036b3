"""Checks for lesson 3's compiler exercises: the swizzle of shared memory, and the placement
of shared-memory buffers by liveness.

Each check first tests the learner's function on its own (the properties it must have, with a
message that names the case that breaks one), then plugs it into mini_compiler and compiles
lesson 3's ``matmul_kernel`` with it: the IR after every GPU pass runs in the reference
interpreter on the CPU (which keeps placed buffers in a simulated shared memory, swizzle
included, so a wrong placement gives a wrong product), the PTX is assembled where ptxas is
available, and on a GPU the kernel runs and is compared with torch.
"""

from __future__ import annotations

import random

import torch

from ..check import WrongAnswer
from ..env import configure
from . import learner_code, passed

CHUNK_BYTES, LINE_BYTES = 16, 128  # one ldmatrix row; 32 banks of 4 bytes


# -- running the lesson's kernel with a learner's rule --------------------------------------------
def _matmul_inputs(dtype=torch.float16, m=70, n=96, k=80):
    torch.manual_seed(0)
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    c = torch.empty(m, n, dtype=dtype)
    args = (a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
            c.stride(1))
    constexprs = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_SIZE": 2,
                  "ACTIVATION": "leaky_relu", "EVEN_K": k % 32 == 0}
    grid = (-(-m // 64) * -(-n // 64),)
    want = (a.double() @ b.double())
    want = torch.where(want >= 0, want, 0.01 * want)
    return args, constexprs, grid, want


def _compiles_and_runs(exercise: str, **rule) -> str:
    """Interpret lesson 3's matmul after every GPU pass with ``rule`` plugged in; assemble it;
    run it on a GPU if there is one. Returns what was done, for the success message."""
    from course.kernels.matmul import matmul_kernel, tolerance
    from mini_compiler.tools.gpu_stages import interpret_gpu_stages

    args, constexprs, grid, want = _matmul_inputs()
    rtol, atol = tolerance(torch.float16, args[5])
    stages = interpret_gpu_stages(matmul_kernel, grid, args, [args[2]], constexprs,
                                  num_warps=4, **rule)
    for stage, (got,) in stages.items():
        wrong = ~torch.isclose(got.double(), want, rtol=rtol, atol=atol)
        if wrong.any():
            row, col = (int(i) for i in wrong.nonzero()[0])
            raise WrongAnswer(
                f"{exercise}: with your function, lesson 3's matmul computes a wrong product "
                f"after the pass {stage!r}: {int(wrong.sum())} of {wrong.numel()} elements "
                f"differ, the first at C[{row}, {col}] = {float(got[row, col]):.4g} instead of "
                f"{float(want[row, col]):.4g}. The interpreter keeps placed buffers in a "
                f"simulated shared memory: data was overwritten before it was read.")
    done = f"interpreted lesson 3's matmul after all {len(stages)} stages"
    ptx = _assemble(exercise, rule)
    if ptx:
        done += "; " + ptx
    if configure().on_gpu:
        done += "; " + _run_on_gpu(exercise, rule)
    return done


def _assemble(exercise: str, rule: dict) -> str:
    from course.kernels.matmul import matmul_kernel
    from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report
    from mini_compiler.backends.gpu.ptxas import find_ptxas
    from mini_compiler.hooks import override

    args, constexprs, _, _ = _matmul_inputs()
    try:
        with override(gpu=rule):
            compiled = compile_for_gpu(matmul_kernel, *args, num_warps=4, **constexprs)
    except Exception as exc:  # noqa: BLE001 - a learner's rule that cannot become GPU code
        raise WrongAnswer(
            f"{exercise}: the interpreter ran, but compiling to PTX with your function failed "
            f"({type(exc).__name__}: {exc}). In the GPU code your function computes with "
            "values known only when the kernel runs: use arithmetic and bit operators "
            "(+ - * // % ^ & | >> <<) on row and chunk, no `if`, min() or max() on them.") from exc
    if find_ptxas() is None:
        return "compiled to PTX"
    resources = ptxas_report(compiled).kernel()
    return (f"ptxas: {resources.registers} registers, {resources.shared_memory_bytes} bytes of "
            f"shared memory, no spills" if not resources.spills else "ptxas: spills")


def _run_on_gpu(exercise: str, rule: dict) -> str:
    from course.kernels.matmul import matmul_kernel, tolerance
    from mini_compiler.backends.gpu import run_on_gpu
    from mini_compiler.hooks import override

    args, constexprs, grid, want = _matmul_inputs(m=300, n=200, k=96)
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)
    args[2].fill_(float("nan"))
    with override(gpu=rule):
        run_on_gpu(matmul_kernel, grid, *args, num_warps=4, **constexprs)
    rtol, atol = tolerance(torch.float16, 96)
    if not torch.allclose(args[2].double().cpu(), want, rtol=rtol, atol=atol):
        raise WrongAnswer(f"{exercise}: on the GPU, the matmul compiled with your function "
                          "gives a wrong product")
    return "ran it on the GPU against torch"


# -- exercise 1: the swizzle --------------------------------------------------------------------
def _swizzle_problem(swizzle) -> str | None:
    """What is wrong with ``swizzle``, in words, or None."""
    for chunks in (1, 2, 4, 8, 16):
        for row in range(64):
            placed = [swizzle(row, c, chunks) for c in range(chunks)]
            for c, p in enumerate(placed):
                if not isinstance(p, int) or not 0 <= p < chunks:
                    return (f"swizzle({row}, {c}, {chunks}) = {p!r}: a row of {chunks} chunks "
                            f"has places 0..{chunks - 1}")
            if sorted(placed) != list(range(chunks)):
                twice = next(p for p in placed if placed.count(p) > 1)
                first = [c for c, p in enumerate(placed) if p == twice]
                return (f"in a row of {chunks} chunks, row {row} sends chunks {first} to the "
                        f"same place {twice}: one overwrites the other. Each row's chunks "
                        "must be a permutation")
        row_bytes = chunks * CHUNK_BYTES
        for first in range(0, 64, 8):  # one ldmatrix: 8 consecutive rows, the same chunk
            for c in range(chunks):
                slots = {}
                for row in range(first, first + 8):
                    slot = (row * row_bytes + swizzle(row, c, chunks) * CHUNK_BYTES) % LINE_BYTES
                    slots.setdefault(slot // CHUNK_BYTES, []).append(row)
                if len(slots) < 8:
                    rows = max(slots.values(), key=len)
                    return (f"with {chunks} chunks per row ({row_bytes} bytes), rows {rows} "
                            f"read their chunk {c} from the same banks: a {len(rows)}-way bank "
                            "conflict for ldmatrix. Eight consecutive rows must use eight "
                            "different 16-byte slots of a 128-byte line")
    return None


def _check_rule(name: str, rule, find_problem, summary: str) -> None:
    """Both exercises: the learner's ``rule`` checked on its own (``find_problem`` returns what
    is wrong, or None), then plugged into the compiler for lesson 3's matmul and run."""
    with learner_code(name):
        problem = find_problem(rule)
    if problem:
        raise WrongAnswer(f"{name}: {problem}.")
    with learner_code(name):
        done = _compiles_and_runs(name, **{name: rule})
    passed(name, f"{summary}; {done}")


def check_swizzle(swizzle) -> None:
    """``swizzle(row, chunk, chunks_per_row) -> chunk``: where a 16-byte chunk is stored."""
    _check_rule("swizzle", swizzle, _swizzle_problem, "a permutation of every row's chunks, "
                "free of bank conflicts for rows of 16 to 256 bytes")


# -- exercise 2: placing buffers by liveness ----------------------------------------------------
def _buffer_sets() -> list[list]:
    from mini_compiler.passes.gpu.allocate_shared_memory import LiveBuffer

    cases = [
        # the matmul's: two operands live together, the epilogue's scratch after them
        [LiveBuffer("a", 4096, 10, 14), LiveBuffer("b", 4096, 11, 14),
         LiveBuffer("epilogue", 8192, 20, 20)],
        # touching ranges overlap: both are live at op 5
        [LiveBuffer("x", 256, 0, 5), LiveBuffer("y", 256, 5, 9)],
        # nothing live at the same time: all can start at 0
        [LiveBuffer(f"t{i}", 64 * (i + 1), 3 * i, 3 * i + 2) for i in range(4)],
    ]
    rng = random.Random(3)
    for _ in range(30):
        case = []
        for i in range(rng.randint(2, 9)):
            start = rng.randint(0, 30)
            case.append(LiveBuffer(f"r{i}", 16 * rng.randint(1, 32), start,
                                   start + rng.randint(0, 10)))
        cases.append(case)
    return cases


def _peak(buffers) -> int:
    """The most bytes live at any one op: no placement can use less."""
    ends = max(b.end for b in buffers)
    return max(sum(b.size for b in buffers if b.start <= t <= b.end) for t in range(ends + 1))


def _placement_problem(place_buffers) -> str | None:
    for buffers in _buffer_sets():
        offsets = place_buffers([type(b)(b.name, b.size, b.start, b.end) for b in buffers])
        if not isinstance(offsets, (list, tuple)) or len(offsets) != len(buffers):
            return f"for {len(buffers)} buffers it returned {offsets!r}: one offset per buffer"
        for b, o in zip(buffers, offsets, strict=True):
            if not isinstance(o, int) or o < 0 or o % 16:
                return (f"buffer {b.name} got offset {o!r}: offsets are non-negative "
                        "multiples of 16 bytes")
        placed = list(zip(buffers, offsets, strict=True))
        for i, (b1, o1) in enumerate(placed):
            for b2, o2 in placed[i + 1:]:
                if b1.live_with(b2) and o1 < o2 + b2.size and o2 < o1 + b1.size:
                    return (f"buffers {b1.name} (ops {b1.start}..{b1.end}, bytes {o1}.."
                            f"{o1 + b1.size - 1}) and {b2.name} (ops {b2.start}..{b2.end}, "
                            f"bytes {o2}..{o2 + b2.size - 1}) are live at the same time but "
                            "share bytes (a live range includes both its ends)")
        total = max(o + b.size for b, o in placed)
        if all(not b1.live_with(b2) for i, b1 in enumerate(buffers) for b2 in buffers[i + 1:]):
            if total != max(b.size for b in buffers):
                return (f"buffers {[b.name for b in buffers]} are never live at the same "
                        f"time, yet the placement uses {total} bytes: they can all reuse the "
                        f"same bytes ({max(b.size for b in buffers)})")
        if total > 2 * _peak(buffers):
            return (f"for {[(b.name, b.size, b.start, b.end) for b in buffers]} the placement "
                    f"uses {total} bytes although at most {_peak(buffers)} are live at once: "
                    "reuse the bytes of buffers that are dead")
    return None


def check_place_buffers(place_buffers) -> None:
    """``place_buffers(buffers) -> offsets``: shared-memory offsets by liveness."""
    _check_rule("place_buffers", place_buffers, _placement_problem,
                "buffers live together never share bytes and dead ones are reused, on "
                f"{len(_buffer_sets())} sets of buffers")
