"""The tile puzzles' checks: each accepts the right kernel and rejects, with a message saying what
to fix, the wrong kernels a learner writes (a missing mask, a wrong broadcast axis, a reloaded
tile, an int32 offset), and the traffic counter counts what a kernel moves."""

import pytest
import torch
import triton
import triton.language as tl

from course.check import NotSolvedYet, WrongAnswer
from course.exercises import puzzles
from course.traffic import measure_traffic

# --- right answers --------------------------------------------------------------------------


@triton.jit
def add_row(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + cols, mask=cols < N)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b[None, :], mask=mask)


@triton.jit
def outer(x_ptr, y_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    x = tl.load(x_ptr + rows, mask=rows < M)
    y = tl.load(y_ptr + cols, mask=cols < N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], x[:, None] * y[None, :], mask=mask)


@triton.jit
def row_sum(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + rows, tl.sum(x, axis=1), mask=rows < M)


@triton.jit
def col_sum(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    total = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for start in range(0, M, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        mask = (rows[:, None] < M) & (cols[None, :] < N)
        x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask, other=0.0)
        total += tl.sum(x, axis=0)
    tl.store(out_ptr + cols, total, mask=cols < N)


@triton.jit
def transpose(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    tl.store(out_ptr + cols[None, :] * M + rows[:, None], x, mask=mask)


@triton.jit
def dot(a_ptr, b_ptr, c_ptr, M, N, K,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    m = tl.arange(0, BLOCK_M)
    n = tl.arange(0, BLOCK_N)
    k = tl.arange(0, BLOCK_K)
    a = tl.load(a_ptr + m[:, None] * K + k[None, :], mask=(m[:, None] < M) & (k[None, :] < K),
                other=0.0)
    b = tl.load(b_ptr + k[:, None] * N + n[None, :], mask=(k[:, None] < K) & (n[None, :] < N),
                other=0.0)
    tl.store(c_ptr + m[:, None] * N + n[None, :], tl.dot(a, b),
             mask=(m[:, None] < M) & (n[None, :] < N))


@triton.jit
def offsets(out_ptr, stride, n_rows, n_cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    offs = rows.to(tl.int64)[:, None] * stride + cols[None, :]
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    tl.store(out_ptr + rows[:, None] * n_cols + cols[None, :], offs, mask=mask)


@triton.jit
def gather(x_ptr, idx_ptr, out_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    idx = tl.load(idx_ptr + i, mask=mask, other=0)
    tl.store(out_ptr + i, tl.load(x_ptr + idx, mask=mask), mask=mask)


# --- wrong answers ----------------------------------------------------------------------------


@triton.jit
def add_row_wrong_axis(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr,
                       BLOCK_N: tl.constexpr):
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + rows, mask=rows < N)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b[:, None], mask=mask)


@triton.jit
def add_row_b_as_tile(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr,
                      BLOCK_N: tl.constexpr):
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + rows[:, None] * 0 + cols[None, :], mask=mask)  # b once per row
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b, mask=mask)


@triton.jit
def add_row_no_column_mask(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr,
                           BLOCK_N: tl.constexpr):
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = rows[:, None] < M  # the columns past N are not masked
    a = tl.load(a_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    b = tl.load(b_ptr + cols)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], a + b[None, :], mask=mask)


@triton.jit
def outer_x_as_tile(x_ptr, y_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] + cols[None, :] * 0, mask=mask)  # x once per column
    y = tl.load(y_ptr + cols, mask=cols < N)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], x * y[None, :], mask=mask)


@triton.jit
def row_sum_wrong_axis(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + rows, tl.sum(x, axis=0), mask=rows < M)


@triton.jit
def col_sum_no_row_mask(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    total = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for start in range(0, M, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=cols[None, :] < N, other=0.0)
        total += tl.sum(x, axis=0)
    tl.store(out_ptr + cols, total, mask=cols < N)


@triton.jit
def col_sum_reloads(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    for start in range(0, M, BLOCK_M):  # accumulates in memory: reads out back every step
        rows = start + tl.arange(0, BLOCK_M)
        mask = (rows[:, None] < M) & (cols[None, :] < N)
        x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask, other=0.0)
        before = tl.load(out_ptr + cols, mask=(cols < N) & (start > 0), other=0.0)
        tl.store(out_ptr + cols, before + tl.sum(x, axis=0), mask=cols < N)


@triton.jit
def transpose_wrong_stride(x_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask)
    tl.store(out_ptr + cols[None, :] * N + rows[:, None], x, mask=mask)  # out's rows are M long


@triton.jit
def dot_by_columns(a_ptr, b_ptr, c_ptr, M, N, K,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    m = tl.arange(0, BLOCK_M)
    k = tl.arange(0, BLOCK_K)
    for j in range(0, N):  # one column of c at a time: a is loaded again for every column
        a = tl.load(a_ptr + m[:, None] * K + k[None, :],
                    mask=(m[:, None] < M) & (k[None, :] < K), other=0.0)
        b = tl.load(b_ptr + k * N + j, mask=k < K, other=0.0)
        tl.store(c_ptr + m * N + j, tl.sum(a * b[None, :], axis=1), mask=m < M)


@triton.jit
def offsets_int32(out_ptr, stride, n_rows, n_cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    offs = rows[:, None] * stride + cols[None, :]
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    tl.store(out_ptr + rows[:, None] * n_cols + cols[None, :], offs.to(tl.int64), mask=mask)


@triton.jit
def gather_no_mask(x_ptr, idx_ptr, out_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    idx = tl.load(idx_ptr + i)
    tl.store(out_ptr + i, tl.load(x_ptr + idx), mask=i < n)


@triton.jit
def gather_twice(x_ptr, idx_ptr, out_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    first = tl.load(x_ptr + tl.load(idx_ptr + i, mask=mask, other=0), mask=mask)
    again = tl.load(x_ptr + tl.load(idx_ptr + i, mask=mask, other=0), mask=mask)
    tl.store(out_ptr + i, 0.5 * (first + again), mask=mask)


@triton.jit
def stub(x_ptr, idx_ptr, out_ptr, n, BLOCK: tl.constexpr):
    # YOUR CODE HERE
    raise NotImplementedError()


RIGHT = [
    (puzzles.check_add_row, add_row),
    (puzzles.check_outer, outer),
    (puzzles.check_row_sum, row_sum),
    (puzzles.check_col_sum, col_sum),
    (puzzles.check_transpose, transpose),
    (puzzles.check_dot, dot),
    (puzzles.check_offsets, offsets),
    (puzzles.check_gather, gather),
]


@pytest.mark.parametrize("check, kernel", RIGHT, ids=[k.__name__ for _, k in RIGHT])
def test_right_answer_passes_and_reports_its_traffic(check, kernel, capsys):
    check(kernel)
    line = capsys.readouterr().out
    assert line.startswith("✓") and "moved" in line and "budget" in line, line


WRONG = [
    (puzzles.check_add_row, add_row_wrong_axis, "wrong axis"),
    (puzzles.check_add_row, add_row_b_as_tile, "b[None, :]"),
    (puzzles.check_add_row, add_row_no_column_mask, "reads outside its tensor"),
    (puzzles.check_outer, outer_x_as_tile, "as 1-D tiles"),
    (puzzles.check_row_sum, row_sum_wrong_axis, "axis=1"),
    (puzzles.check_col_sum, col_sum_no_row_mask, "reads outside its tensor"),
    (puzzles.check_col_sum, col_sum_reloads, "store once after the loop"),
    (puzzles.check_transpose, transpose_wrong_stride, "outside its tensor"),
    (puzzles.check_dot, dot_by_columns, "tl.dot(a, b)"),
    (puzzles.check_offsets, offsets_int32, "int32 overflow"),
    (puzzles.check_gather, gather_no_mask, "reads outside its tensor"),
    (puzzles.check_gather, gather_twice, "each gathered value once"),
]


@pytest.mark.parametrize("check, kernel, message", WRONG, ids=[k.__name__ for _, k, _ in WRONG])
def test_wrong_answer_is_rejected_with_what_to_fix(check, kernel, message):
    with pytest.raises(WrongAnswer) as error:
        check(kernel)
    assert message in str(error.value), str(error.value)


def test_an_unsolved_puzzle_says_so():
    with pytest.raises(NotSolvedYet, match="not solved yet"):
        puzzles.check_gather(stub)


def test_traffic_counts_active_lanes_per_tensor():
    m, n = 37, 50
    x, y, out = torch.randn(m), torch.randn(n), torch.full((m, n), float("nan"))
    traffic = measure_traffic(outer, (3, 2), x, y, out, m, n, BLOCK_M=16, BLOCK_N=32)
    # every program loads its rows of x and columns of y; masked-off lanes move nothing
    assert traffic.loaded == {"x_ptr": 4 * m * 2, "y_ptr": 4 * n * 3}
    assert traffic.stored == {"out_ptr": 4 * m * n}
    assert out.isnan().all()  # the count runs on CPU copies: the caller's tensors are untouched
    wasteful = measure_traffic(outer_x_as_tile, (3, 2), x, y, out, m, n, BLOCK_M=16, BLOCK_N=32)
    assert wasteful.loaded["x_ptr"] == 4 * m * n


def test_traffic_counts_bytes_of_the_element_type():
    m, n = 9, 21
    x, out = torch.randn(m, n).half(), torch.empty(n, m).half()
    traffic = measure_traffic(transpose, (1, 1), x, out, m, n, BLOCK_M=16, BLOCK_N=32)
    assert (traffic.bytes_loaded, traffic.bytes_stored) == (2 * m * n, 2 * m * n)


def test_traffic_count_refuses_a_stray_access():
    import mini_compiler

    m, n = 5, 7
    with pytest.raises(mini_compiler.OutOfBoundsError, match="did you forget a mask"):
        measure_traffic(add_row_no_column_mask, (1,), torch.randn(m, n), torch.randn(n),
                        torch.empty(m, n), m, n, BLOCK_M=8, BLOCK_N=8)
