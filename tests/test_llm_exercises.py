"""Lesson 5's exercise checks: the solutions pass, and each kind of wrong answer a learner would
write is rejected with a message that names the mistake."""

import importlib.util
import itertools
from pathlib import Path

import pytest

import course
from course.check import NotSolvedYet, WrongAnswer
from course.exercises import lesson05

course.configure()
SOLUTIONS = Path(__file__).parent / "llm_exercise_solutions" / "solutions.py"
_counter = itertools.count()


def kernels(tmp_path, *replacements):
    """The solution kernels with ``(old, new)`` text replacements, as a fresh module (Triton reads
    a kernel's source from its file)."""
    source = SOLUTIONS.read_text()
    for old, new in replacements:
        assert old in source, f"test bug: {old!r} is not in the solutions"
        source = source.replace(old, new)
    path = tmp_path / f"variant_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_solutions_pass(tmp_path, capsys):
    k = kernels(tmp_path)
    lesson05.check_rope(k.rope_kernel)
    lesson05.check_swiglu_matmul(k.matmul_swiglu_kernel)
    lesson05.check_gqa_decode(k.gqa_decode_kernel)
    assert capsys.readouterr().out.count("✓") == 3


ROPE_MISTAKES = {
    "neighbouring": [
        ("x1 = tl.load(x_ptr + row + d)", "x1 = tl.load(x_ptr + row + 2 * d)"),
        ("x2 = tl.load(x_ptr + row + HALF + d)", "x2 = tl.load(x_ptr + row + 2 * d + 1)"),
        ("tl.store(out_ptr + row + d, x1", "tl.store(out_ptr + row + 2 * d, x1"),
        ("tl.store(out_ptr + row + HALF + d, x2", "tl.store(out_ptr + row + 2 * d + 1, x2"),
    ],
    "-angle": [("x1 * cos - x2 * sin", "x1 * cos + x2 * sin"),
               ("x2 * cos + x1 * sin", "x2 * cos - x1 * sin")],
    "first row of cos/sin": [("cos_ptr + t * HALF + d", "cos_ptr + d"),
                             ("sin_ptr + t * HALF + d", "sin_ptr + d")],
    "head 0's values": [("x1 = tl.load(x_ptr + row + d)",
                         "x1 = tl.load(x_ptr + t * n_heads * HEAD_DIM + d)"),
                        ("x2 = tl.load(x_ptr + row + HALF + d)",
                         "x2 = tl.load(x_ptr + t * n_heads * HEAD_DIM + HALF + d)")],
    "never written": [("    tl.store(out_ptr + row + HALF + d, x2 * cos + x1 * sin)\n", "")],
}  # fmt: skip


@pytest.mark.parametrize("mistake", ROPE_MISTAKES)
def test_rope_mistakes_are_named(tmp_path, mistake):
    k = kernels(tmp_path, *ROPE_MISTAKES[mistake])
    with pytest.raises(WrongAnswer, match=mistake.replace("(", r"\(").replace(")", r"\)")):
        lesson05.check_rope(k.rope_kernel)


SWIGLU_MISTAKES = {
    "gate and up are swapped": [("out = gate * tl.sigmoid(gate) * up",
                                 "out = up * tl.sigmoid(up) * gate")],
    "there is no SiLU": [("out = gate * tl.sigmoid(gate) * up", "out = gate * up")],
    "sigmoid\\(gate\\), not silu": [("out = gate * tl.sigmoid(gate) * up",
                                    "out = tl.sigmoid(gate) * up")],
    "never written|at the end|rows": [("mask=(rows[:, None] < M) & (cols[None, :] < N))",
                                       "mask=(rows[:, None] < M) & (cols[None, :] < 32))")],
    "outside its tensor": [("mask=(rows[:, None] < M) & (kk[None, :] < K), other=0.0)",
                            "mask=kk[None, :] < K, other=0.0)")],
}  # fmt: skip


@pytest.mark.parametrize("mistake", SWIGLU_MISTAKES)
def test_swiglu_mistakes_are_named(tmp_path, mistake):
    k = kernels(tmp_path, *SWIGLU_MISTAKES[mistake])
    with pytest.raises(WrongAnswer, match=mistake):
        lesson05.check_swiglu_matmul(k.matmul_swiglu_kernel)


GQA_MISTAKES = {
    "round robin": [("kv = h // (N_HEADS // N_KV_HEADS)", "kv = h % N_KV_HEADS")],
    "not scaled": [("tl.sum(k * q[None, :], 1) * sm_scale", "tl.sum(k * q[None, :], 1)")],
    "newest key is missing": [("keep = n < n_keys", "keep = n < n_keys - 1"),
                              ("tl.where(keep, ", "tl.where(keep | (n_keys == 1), ")],
    "mask the keys": [("s = tl.where(keep, tl.sum(k * q[None, :], 1) * sm_scale, float(\"-inf\"))",
                       "s = tl.sum(k * q[None, :], 1) * sm_scale"),
                      ("k = tl.load(k_ptr + offsets, mask=keep[:, None], other=0.0)",
                       "k = tl.load(k_ptr + offsets)"),
                      ("v = tl.load(v_ptr + offsets, mask=keep[:, None], other=0.0)",
                       "v = tl.load(v_ptr + offsets)")],
}  # fmt: skip


@pytest.mark.parametrize("mistake", GQA_MISTAKES)
def test_gqa_decode_mistakes_are_named(tmp_path, mistake):
    k = kernels(tmp_path, *GQA_MISTAKES[mistake])
    with pytest.raises(WrongAnswer, match=mistake):
        lesson05.check_gqa_decode(k.gqa_decode_kernel)


def test_unsolved_stub_says_so(tmp_path):
    stub = '''
import triton
import triton.language as tl


@triton.jit
def rope_kernel(x_ptr, cos_ptr, sin_ptr, out_ptr, n_heads, HEAD_DIM: tl.constexpr):
    # YOUR CODE HERE
    raise NotImplementedError()
'''
    path = tmp_path / "stub.py"
    path.write_text(stub)
    spec = importlib.util.spec_from_file_location("stub", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(NotSolvedYet, match="not solved yet"):
        lesson05.check_rope(module.rope_kernel)
