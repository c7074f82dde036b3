"""The exercise checks accept right answers and explain wrong ones (lesson 1)."""

import pytest
import torch
import triton
import triton.language as tl

from course import NotSolvedYet, WrongAnswer
from course.exercises import lesson01


@triton.jit
def axpy_right(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, a * x + y, mask=mask)


@triton.jit
def axpy_wrong_formula(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + a * y, mask=mask)


@triton.jit
def axpy_no_store_mask(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offsets)
    y = tl.load(y_ptr + offsets)
    tl.store(out_ptr + offsets, a * x + y)


@triton.jit
def axpy_masked_loads_only(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, a * x + y)


@triton.jit
def axpy_stub(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    raise NotImplementedError()


@triton.jit
def reverse_off_by_one(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + (n_elements - offsets), mask=mask), mask=mask)


def test_axpy_accepts_a_right_answer(capsys):
    lesson01.check_axpy(axpy_right)
    assert "✓ axpy" in capsys.readouterr().out


def test_axpy_reports_a_wrong_formula():
    with pytest.raises(WrongAnswer, match="elements differ from the reference"):
        lesson01.check_axpy(axpy_wrong_formula)


def test_axpy_without_any_mask_is_caught_at_its_first_stray_read():
    # Checked on the CPU before the kernel runs on the device, where the read could fault.
    with pytest.raises(WrongAnswer, match=r"(?s)axpy: your kernel reads outside its tensor.*"
                       r"element offset 13.*forget a mask"):  # fmt: skip
        lesson01.check_axpy(axpy_no_store_mask)


def test_axpy_catches_writes_past_the_end():
    with pytest.raises(WrongAnswer, match="past the end of the output.*mask=offsets < n_elements"):
        lesson01.check_axpy(axpy_masked_loads_only)


def test_unsolved_exercise_says_so():
    with pytest.raises(NotSolvedYet, match="axpy: not solved yet"):
        lesson01.check_axpy(axpy_stub)


def test_reverse_reports_an_off_by_one():
    with pytest.raises(WrongAnswer, match="reverse"):
        lesson01.check_reverse(reverse_off_by_one)


def test_grid_size_feedback():
    lesson01.check_grid_size(lambda n, b: (n + b - 1) // b)
    with pytest.raises(
        WrongAnswer, match=r"grid_size\(1025, 1024\) returned 1, but 2 programs are needed"
    ):
        lesson01.check_grid_size(lambda n, b: max(n // b, 1) if n else 0)
    with pytest.raises(WrongAnswer, match="return an int"):
        lesson01.check_grid_size(lambda n, b: n / b)
    with pytest.raises(WrongAnswer, match="your code raised an error:\nZeroDivisionError"):
        lesson01.check_grid_size(lambda n, b: n // 0)


def _c_floordiv(a, b):
    if b == 0:
        return None
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def test_fold_floordiv_accepts_c_semantics(capsys):
    lesson01.check_fold_floordiv(_c_floordiv)
    assert "✓ fold_floordiv" in capsys.readouterr().out


def test_fold_floordiv_explains_python_floor_division():
    with pytest.raises(WrongAnswer, match="Python's floor division, which rounds toward minus"):
        lesson01.check_fold_floordiv(lambda a, b: a // b if b else None)


def test_fold_floordiv_must_not_fold_division_by_zero():
    with pytest.raises(WrongAnswer, match="a division by zero must not be folded"):
        lesson01.check_fold_floordiv(lambda a, b: _c_floordiv(a, b) if b else 0)


def test_lower_abs_accepts_a_right_rule_and_rejects_a_wrong_one():
    def lower_abs(builder, element, x):
        if element.is_float:
            return builder.select(builder.fcmp_ordered("<", x, x.type(0.0)), builder.fneg(x), x)
        if not element.is_signed:
            return x
        return builder.select(builder.icmp_signed("<", x, x.type(0)), builder.neg(x), x)

    lesson01.check_lower_abs(lower_abs)
    with pytest.raises(WrongAnswer, match="lower_abs on float32: .* elements differ"):
        lesson01.check_lower_abs(lambda builder, element, x: x)


def test_lower_abs_that_treats_unsigned_as_signed_is_explained():
    def signed_only(builder, element, x):
        if element.is_float:
            return builder.select(builder.fcmp_ordered("<", x, x.type(0.0)), builder.fneg(x), x)
        return builder.select(builder.icmp_signed("<", x, x.type(0)), builder.neg(x), x)

    with pytest.raises(WrongAnswer, match=r"lower_abs on uint8: \d+ of 777 elements differ.*"
                       r"When element.is_signed is False, \|x\| is x itself"):
        lesson01.check_lower_abs(signed_only)


def test_lower_abs_in_the_old_two_argument_form_is_explained():
    with pytest.raises(WrongAnswer, match=r"called as lower_abs\(builder, element, x\)"):
        lesson01.check_lower_abs(lambda builder, operands: operands[0])


def test_compiler_exercise_stub_is_reported_as_unsolved():
    def stub(*_):
        raise NotImplementedError()

    with pytest.raises(NotSolvedYet):
        lesson01.check_fold_floordiv(stub)
    with pytest.raises(NotSolvedYet):
        lesson01.check_lower_abs(stub)


# ---- every kind of wrong answer is rejected, with a message that says what to fix -------------


@triton.jit
def reverse_unmasked_load(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    """Right values (the store is masked), but masked-off lanes load from before the start of x."""
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + (n_elements - 1 - offsets)), mask=mask)


@triton.jit
def reverse_right(x_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(out_ptr + offsets, tl.load(x_ptr + (n_elements - 1 - offsets), mask=mask), mask=mask)


@triton.jit
def axpy_unmasked_loads(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offsets)
    y = tl.load(y_ptr + offsets)
    tl.store(out_ptr + offsets, a * x + y, mask=offsets < n_elements)


def test_reverse_accepts_a_right_answer(capsys):
    lesson01.check_reverse(reverse_right)
    assert "no load reads before the start of x" in capsys.readouterr().out


def test_reverse_rejects_a_load_before_the_start_of_the_input():
    with pytest.raises(
        WrongAnswer,
        match=r"(?s)reverse: your kernel reads outside its tensor.*"
        r"element offset -\d+.*A masked-off lane must neither load nor store",
    ):
        lesson01.check_reverse(reverse_unmasked_load)


def test_axpy_rejects_loads_past_the_end_of_the_inputs():
    with pytest.raises(WrongAnswer, match=r"axpy: your kernel reads outside its tensor"):
        lesson01.check_axpy(axpy_unmasked_loads)


def test_lower_abs_for_floats_only_gets_a_hint_not_llvms_parse_error():
    def floats_only(builder, element, x):
        return builder.select(builder.fcmp_ordered("<", x, x.type(0.0)), builder.fneg(x), x)

    with pytest.raises(WrongAnswer, match="for int32 tiles your rule built LLVM IR that LLVM "
                       "rejects.*fcmp and fneg on floats only"):  # fmt: skip
        lesson01.check_lower_abs(floats_only)


# lesson 2 -------------------------------------------------------------------------------------


@triton.jit
def log_of_softmax(x_ptr, out_ptr, n_cols, BLOCK_SIZE: tl.constexpr):
    """Stable softmax, then its log: -inf wherever a probability underflows."""
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * n_cols + cols, tl.log(e / tl.sum(e, axis=0)), mask=mask)


@triton.jit
def strided_softmax_without_max(
    x_ptr, out_ptr, n_cols, x_row_stride, x_col_stride, out_row_stride, BLOCK_SIZE: tl.constexpr
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=mask, other=-float("inf"))
    e = tl.exp(x)
    tl.store(out_ptr + row * out_row_stride + cols, e / tl.sum(e, axis=0), mask=mask)


@triton.jit
def strided_softmax_right(
    x_ptr, out_ptr, n_cols, x_row_stride, x_col_stride, out_row_stride, BLOCK_SIZE: tl.constexpr
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * out_row_stride + cols, e / tl.sum(e, axis=0), mask=mask)


@triton.jit
def rms_norm_eps_outside_the_root(x_ptr, w_ptr, out_ptr, n_cols, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    rms = tl.sqrt(tl.sum(x * x, axis=0) / n_cols) + eps
    tl.store(out_ptr + row * n_cols + cols, x / rms * w, mask=mask)


@triton.jit
def rms_norm_right(x_ptr, w_ptr, out_ptr, n_cols, eps, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    rms = tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    tl.store(out_ptr + row * n_cols + cols, x / rms * w, mask=mask)


def test_log_softmax_rejects_the_log_of_the_softmax():
    from course.exercises import lesson02

    with pytest.raises(WrongAnswer, match=r"row 2: a row spanning -300 to 300.*infinite where "
                       r"the reference is finite.*log of a number that underflowed"):  # fmt: skip
        lesson02.check_log_softmax(log_of_softmax)


def test_strided_softmax_without_the_maximum_is_a_computed_nan_not_an_unwritten_one(capsys):
    from course.exercises import lesson02

    lesson02.check_strided_softmax(strided_softmax_right)
    assert "rows near +-1000" in capsys.readouterr().out
    with pytest.raises(WrongAnswer, match=r"transposed.*row 1: a row near \+1000.*your code "
                       r"computed NaN in \d+ of \d+ elements.*subtract the maximum"):  # fmt: skip
        lesson02.check_strided_softmax(strided_softmax_without_max)


def test_rms_norm_rejects_eps_outside_the_square_root(capsys):
    from course.exercises import lesson02

    lesson02.check_rms_norm(rms_norm_right)
    assert "rows of tiny magnitude" in capsys.readouterr().out
    for seed in range(4):  # the diagnosis must not depend on the random rows drawn
        torch.manual_seed(seed)
        with pytest.raises(WrongAnswer, match=r"rows 4-5: rows of tiny magnitude.*inside the "
                           r"square root.*elements differ"):  # fmt: skip
            lesson02.check_rms_norm(rms_norm_eps_outside_the_root)


def test_no_tail_hint_for_rows_of_one_element():
    """In a column of one-element rows, a wrong last element says nothing about a mask."""
    from course.check import _pattern

    assert "tail" not in _pattern(torch.tensor([3]), (4, 1), 4)
    assert "tail" in _pattern(torch.tensor([3]), (4,), 4)


# lesson 4 -------------------------------------------------------------------------------------


def online_update_without_a_safe_maximum(m, l_run, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=1).values)
    alpha = torch.exp(m - m_new)  # exp(-inf - (-inf)) = NaN on a fully masked first tile
    p = torch.exp(s - m_new[:, None])
    return m_new, l_run * alpha + p.sum(dim=1), acc * alpha[:, None] + p @ v


def test_online_update_rejects_an_update_that_breaks_on_a_fully_masked_tile():
    from course.exercises import lesson04

    with pytest.raises(WrongAnswer, match=r"after key tile 0 .*row 3 holds NaN.*fully masked.*"
                       r"m_safe"):  # fmt: skip
        lesson04.check_online_update(online_update_without_a_safe_maximum)


def _window_attention(skip: bool):
    import math

    from sliding_window_kernel import sliding_window_kernel

    from course.check import empty_poisoned

    def window_attention(q, k, v, window, block_m=32, block_n=32):
        b, h, n, d = q.shape
        out = empty_poisoned(b, h, n, d, dtype=q.dtype, device=q.device)
        grid = (triton.cdiv(n, block_m), b * h)
        sliding_window_kernel[grid](q, k, v, out, n, 1.4426950408889634 / math.sqrt(d), window,
                                    HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n,
                                    SKIP=skip)  # fmt: skip
        return out

    return window_attention


def test_window_attention_accepts_a_kernel_that_skips_tiles(capsys):
    from course.exercises import lesson04

    lesson04.check_window_attention(_window_attention(skip=True))
    assert "each query tile reads only the key tiles of its window" in capsys.readouterr().out


def test_window_attention_rejects_a_kernel_that_visits_every_earlier_tile():
    from course.exercises import lesson04

    with pytest.raises(WrongAnswer, match=r"query tile \d+ \(rows \d+\.\.\d+\) read key/value "
                       r"tiles its window cannot see"):  # fmt: skip
        lesson04.check_window_attention(_window_attention(skip=False))


@triton.jit
def axpy_with_fma(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    """Right, but written with tl.fma, which mini_compiler does not compile."""
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.fma(x, a, y), mask=mask)


def test_a_right_kernel_the_course_compiler_cannot_compile_still_passes(capsys):
    import mini_compiler

    with pytest.raises(mini_compiler.CompilationError):  # the case this test is about
        mini_compiler.jit(axpy_with_fma)[(1,)](0.5, *(torch.ones(8) for _ in range(3)), 8,
                                               BLOCK_SIZE=8)  # fmt: skip
    lesson01.check_axpy(axpy_with_fma)
    assert "✓ axpy" in capsys.readouterr().out


# lesson 3 -------------------------------------------------------------------------------------


@triton.jit
def bias_silu_right(
    a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
    stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    rows = (pid // num_pid_n) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = (pid % num_pid_n) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        a_mask = (rows[:, None] < M) & (k0 + ks[None, :] < K)
        b_mask = (k0 + ks[:, None] < K) & (cols[None, :] < N)
        a = tl.load(a_ptr + rows[:, None] * stride_am + (k0 + ks[None, :]) * stride_ak,
                    mask=a_mask, other=0.0)  # fmt: skip
        b = tl.load(b_ptr + (k0 + ks[:, None]) * stride_bk + cols[None, :] * stride_bn,
                    mask=b_mask, other=0.0)  # fmt: skip
        acc = tl.dot(a, b, acc)
    bias = tl.load(bias_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)
    z = acc + bias[None, :]
    c_mask = (rows[:, None] < M) & (cols[None, :] < N)
    tl.store(c_ptr + rows[:, None] * stride_cm + cols[None, :] * stride_cn,
             (z * tl.sigmoid(z)).to(tl.float16), mask=c_mask)  # fmt: skip


@triton.jit
def bias_silu_unmasked_bias(
    a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
    stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    rows = (pid // num_pid_n) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = (pid % num_pid_n) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        a_mask = (rows[:, None] < M) & (k0 + ks[None, :] < K)
        b_mask = (k0 + ks[:, None] < K) & (cols[None, :] < N)
        a = tl.load(a_ptr + rows[:, None] * stride_am + (k0 + ks[None, :]) * stride_ak,
                    mask=a_mask, other=0.0)  # fmt: skip
        b = tl.load(b_ptr + (k0 + ks[:, None]) * stride_bk + cols[None, :] * stride_bn,
                    mask=b_mask, other=0.0)  # fmt: skip
        acc = tl.dot(a, b, acc)
    bias = tl.load(bias_ptr + cols).to(tl.float32)  # columns past N: right values, wrong reads
    z = acc + bias[None, :]
    c_mask = (rows[:, None] < M) & (cols[None, :] < N)
    tl.store(c_ptr + rows[:, None] * stride_cm + cols[None, :] * stride_cn,
             (z * tl.sigmoid(z)).to(tl.float16), mask=c_mask)  # fmt: skip


def test_matmul_bias_silu_rejects_an_unmasked_bias_load():
    from course.exercises import lesson03

    lesson03.check_matmul_bias_silu(bias_silu_right)
    with pytest.raises(WrongAnswer, match=r"(?s)matmul_bias_silu: your kernel reads outside its "
                       r"tensor.*bias_ptr \+ cols"):  # fmt: skip
        lesson03.check_matmul_bias_silu(bias_silu_unmasked_bias)
