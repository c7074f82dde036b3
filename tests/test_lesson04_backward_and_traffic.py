"""Lesson 4: the dQ backward exercise's check and the sliding-window traffic score.

Each wrong answer below is one a learner is likely to write; the check must reject it with a
message that names what to fix. Both checks run with Triton's interpreter on the CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
import triton
import triton.language as tl
from sliding_window_kernel import sliding_window_kernel

from course.check import NotSolvedYet, WrongAnswer, empty_poisoned
from course.env import configure
from course.exercises import lesson04

# tests that launch Triton on CPU tensors, to show what the check sees with fp16 on a GPU
cpu_only = pytest.mark.skipif(configure().on_gpu, reason="Triton runs CPU tensors only in its "
                              "interpreter; on a GPU the other tests run the check in fp16")

# The planted bugs, read as globals inside the kernel below: a compiled (GPU) kernel may read only
# globals that are tl.constexpr, so they are constexprs (the interpreter would take plain ints).
RIGHT, NO_DELTA, DELTA_ROW, NO_SCALE, BASE2_SCALE, FP16_PRODUCT, TRANS_K, TRANS_DS, STUB = (
    tl.constexpr(i) for i in range(9))
TILE_DELTA = tl.constexpr(9)


@triton.jit
def _dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, N, sm_scale, qk_scale, HEAD_DIM: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BUG: tl.constexpr):  # fmt: skip
    base = tl.program_id(1).to(tl.int64) * N * HEAD_DIM
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = offs_m < N
    q_offsets = base + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    q = tl.load(Q + q_offsets, mask=rows[:, None], other=0.0)
    do = tl.load(DO + q_offsets, mask=rows[:, None], other=0.0)
    lse = tl.load(LSE + tl.program_id(1) * N + offs_m, mask=rows, other=0.0)
    delta = tl.load(DELTA + tl.program_id(1) * N + offs_m, mask=rows, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    if BUG == STUB:
        raise NotImplementedError()
    for start_n in range(0, N, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kv_offsets = base + offs_n[:, None] * HEAD_DIM + offs_d[None, :]
        k = tl.load(K + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
        v = tl.load(V + kv_offsets, mask=offs_n[:, None] < N, other=0.0)
        p = tl.math.exp2(tl.dot(q, tl.trans(k)) * qk_scale - lse[:, None])
        p = tl.where(offs_n[None, :] < N, p, 0.0)
        dp = tl.dot(do, tl.trans(v))
        if BUG == NO_DELTA:
            ds = p * dp
        elif BUG == TILE_DELTA:  # a row reduction over this key tile instead of the whole row
            ds = p * (dp - tl.sum(p * dp, 1)[:, None])
        elif BUG == DELTA_ROW:
            ds = p * (dp - delta[None, :])
        else:
            ds = p * (dp - delta[:, None])
        if BUG == FP16_PRODUCT:
            dq = dq + tl.dot(ds.to(k.dtype), k).to(tl.float16)
        elif BUG == TRANS_K:
            dq = tl.dot(ds.to(k.dtype), tl.trans(k), dq)
        elif BUG == TRANS_DS:
            dq = tl.dot(tl.trans(ds).to(k.dtype), k, dq)
        else:
            dq = tl.dot(ds.to(k.dtype), k, dq)
    if BUG == NO_SCALE:
        dq = dq * 1.0
    elif BUG == BASE2_SCALE:
        dq = dq * qk_scale
    else:
        dq = dq * sm_scale
    tl.store(DQ + q_offsets, dq.to(DQ.dtype.element_ty), mask=rows[:, None])


class _WithBug:
    """``_dq_kernel`` launched as the check launches a learner's kernel, with one planted bug."""

    def __init__(self, bug: int):
        self.bug = bug

    def __getitem__(self, grid):
        return lambda *args, **kwargs: _dq_kernel[grid](*args, BUG=self.bug.value, **kwargs)


def test_dq_check_accepts_the_solution(capsys):
    lesson04.check_dq_update(_WithBug(RIGHT))
    assert "dQ matches float64 formulas" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (NO_DELTA, r"you left out delta"),
        (TILE_DELTA, r"you summed P \* dP over this key tile only"),
        (DELTA_ROW, r"subtract delta\[:, None\] \(a column\), not delta\[None, :\]"),
        (NO_SCALE, r"multiply dq by sm_scale after the loop"),
        (BASE2_SCALE, r"you multiplied by qk_scale = sm_scale \* log2\(e\)"),
        # fp32 inputs (CPU): caught by the rounding; fp16 inputs (GPU): by the overflow case
        (FP16_PRODUCT, r"(went through a lower precision|part of the sum went through fp16)"
                       r".*Accumulate in fp32"),
        (TRANS_K, r"differ from the reference.*dQ \+= dS K, in that order"),
        (TRANS_DS, r"differ from the reference.*dQ \+= dS K, in that order"),
    ],
)
def test_dq_check_rejects_each_wrong_answer(bug, message):
    with pytest.raises(WrongAnswer, match=f"(?s){message}"):
        lesson04.check_dq_update(_WithBug(bug))


def test_dq_check_reports_an_unsolved_exercise():
    with pytest.raises(NotSolvedYet, match="not solved yet"):
        lesson04.check_dq_update(_WithBug(STUB))


# the sliding-window exercise's traffic score ----------------------------------------------


class _Window:
    """The kernel (``[grid]`` launch) and its wrapper, as the notebook defines them."""

    def __init__(self, reload_q: bool):
        self.reload_q = reload_q

    def __getitem__(self, grid):
        return lambda *args, **kw: sliding_window_kernel[grid](*args, RELOAD_Q=self.reload_q, **kw)

    def attention(self, q, k, v, window, block_m=32, block_n=32):
        b, h, n, d = q.shape
        out = empty_poisoned(b, h, n, d, dtype=q.dtype, device=q.device)
        self[(triton.cdiv(n, block_m), b * h)](q, k, v, out, n, 1.4426950408889634 / math.sqrt(d),
                                               window, HEAD_DIM=d, BLOCK_M=block_m,
                                               BLOCK_N=block_n)  # fmt: skip
        return out


def test_window_traffic_budget_counts_whole_key_tiles():
    # N=100, window 16, tiles of 32: query tiles walk keys [0,32), [0,64), [32,96), [64,100)
    minimum, budget = lesson04.window_traffic_budget(100, 16, 16, 32, 32)
    q_and_out = 2 * 100 * 16 * 4
    assert budget == q_and_out + 2 * (32 + 64 + 64 + 36) * 16 * 4
    assert minimum == q_and_out + 2 * (32 + (64 - 17) + (96 - 49) + (100 - 81)) * 16 * 4


def test_window_check_scores_the_traffic_of_the_solution(capsys, monkeypatch):
    window = _Window(reload_q=False)
    monkeypatch.setattr(lesson04, "measure_traffic", _measure_with(window, RELOAD_Q=False))
    lesson04.check_window_attention(window.attention, window)
    out = capsys.readouterr().out
    assert "moved 46,080 B" in out and "budget 46,080 B" in out


def test_window_check_rejects_a_kernel_that_reloads_the_query_tile(monkeypatch):
    window = _Window(reload_q=True)
    monkeypatch.setattr(lesson04, "measure_traffic", _measure_with(window, RELOAD_Q=True))
    with pytest.raises(WrongAnswer, match=r"right answer, but your kernel moves 59,136 bytes "
                       r"\(Q: loaded 19,456 B.*budget.*Load q before the loop"):  # fmt: skip
        lesson04.check_window_attention(window.attention, window)


def _measure_with(window, **constexprs):
    """measure_traffic on the underlying @triton.jit kernel, with the test's switch bound."""
    from course.traffic import measure_traffic

    def measure(kernel, grid, *args, **kw):
        assert kernel is window
        return measure_traffic(sliding_window_kernel, grid, *args, **kw, **constexprs)

    return measure


@cpu_only
def test_the_overflow_inputs_tell_an_fp16_sum_from_an_fp32_one():
    """The check's last case (what catches fp16 partial sums when the inputs are fp16 on a GPU)."""
    from course.exercises import lesson04_backward as backward

    q, k, v, do = backward._overflow_inputs("cpu")
    p, lse, delta = backward._saved_state(q, k, v, do)
    right = backward._launch(_WithBug(RIGHT), q, k, v, do, lse, delta, torch.float32, 16, 16)
    assert torch.isfinite(right).all() and right.abs().max() > 1e6
    with pytest.warns(RuntimeWarning, match="overflow"):
        wrong = backward._launch(_WithBug(FP16_PRODUCT), q, k, v, do, lse, delta,
                                 torch.float32, 16, 16)  # fmt: skip
    assert not torch.isfinite(wrong).all()


@cpu_only
def test_dq_check_with_fp16_inputs_as_on_a_gpu(monkeypatch):
    """On a GPU the check feeds fp16: the solution passes, each mistake is still named."""
    from course.env import Environment
    from course.exercises import lesson04_backward as backward

    gpu_like = Environment("cpu", "CPU, fp16 inputs as on a GPU", "test")
    monkeypatch.setattr(backward, "configure", lambda: gpu_like)
    monkeypatch.setattr(Environment, "on_gpu", property(lambda self: True))
    backward.check_dq_update(_WithBug(RIGHT))
    for bug, message in ((NO_DELTA, "you left out delta"), (NO_SCALE, "multiply dq by sm_scale"),
                         (FP16_PRODUCT, "part of the sum went through fp16")):
        with pytest.raises(WrongAnswer, match=message):
            backward.check_dq_update(_WithBug(bug))
