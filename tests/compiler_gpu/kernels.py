"""Kernels the GPU back end is tested and benchmarked on, with their torch references.

The course's own Triton kernels (vector add, softmax) are compiled as they are; the others are
written here with ``mini_compiler.language`` to cover 2-D tiles, reductions along either axis,
broadcasts and masks at the edges.
"""

from __future__ import annotations

import mini_compiler
import mini_compiler.language as tl


@mini_compiler.jit
def row_softmax(x_ptr, out_ptr, n_cols, row_stride, BLOCK: tl.constexpr):
    """One row per program, no loop: the lesson's kernel in its simplest form."""
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=-float("inf"))
    shifted = x - tl.max(x, axis=0)
    numerator = tl.exp(shifted)
    tl.store(out_ptr + row * row_stride + cols, numerator / tl.sum(numerator, axis=0), mask=mask)


@mini_compiler.jit
def sum_rows_and_columns(x_ptr, row_sum_ptr, col_max_ptr, n_rows, n_cols, stride,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """A 2-D tile reduced along both axes: per-row sums and a per-column max of one row block."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * stride + cols[None, :], mask=mask, other=0.0)
    tl.store(row_sum_ptr + rows, tl.sum(x, axis=1), mask=rows < n_rows)
    masked = tl.where(mask, x, -float("inf"))
    tl.store(col_max_ptr + tl.program_id(0) * n_cols + cols, tl.max(masked, axis=0),
             mask=cols < n_cols)


@mini_compiler.jit
def scale_rows_2d(x_ptr, scale_ptr, bias_ptr, out_ptr, n_rows, n_cols, stride,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Broadcasts both ways: out = relu(x * scale[row] + bias[col]) - mean over the row."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offsets = rows[:, None] * stride + cols[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    scale = tl.load(scale_ptr + rows, mask=rows < n_rows, other=0.0)
    bias = tl.load(bias_ptr + cols, mask=cols < n_cols, other=0.0)
    y = tl.maximum(x * scale[:, None] + bias[None, :], 0.0)
    y = tl.where(mask, y, 0.0)
    mean = tl.sum(y, axis=1) / BLOCK_N
    tl.store(out_ptr + offsets, y - mean[:, None], mask=mask)


@mini_compiler.jit
def gelu_like(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """Elementwise math on a 1-D tile: exp, log, sqrt, abs, where, minimum."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=1.0)
    y = x / (1.0 + tl.exp(-1.702 * x))
    y = y + tl.log(1.0 + tl.abs(x)) - tl.sqrt(tl.abs(x))
    y = tl.where(x > 0, y, tl.minimum(y, 0.5))
    tl.store(out_ptr + offsets, y, mask=mask)


@mini_compiler.jit
def row_sums_plus_vector(x_ptr, v_ptr, out_ptr, n_rows, n_cols,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """out = x.sum(1) + v, where v is loaded through its own 1-D indices: the reduction's
    result (a slice layout) meets a plain 1-D layout, so one must be converted."""
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * n_cols + cols[None, :], mask=mask, other=0.0)
    local = tl.arange(0, BLOCK_M)
    v = tl.load(v_ptr + pid * BLOCK_M + local, mask=local < n_rows - pid * BLOCK_M, other=0.0)
    tl.store(out_ptr + rows, tl.sum(x, axis=1) + v, mask=rows < n_rows)


@mini_compiler.jit
def row_sums_looped(x_ptr, out_ptr, n_cols, row_stride, BLOCK: tl.constexpr):
    """A tile carried through a loop: each program sums a long row BLOCK columns at a time."""
    row = tl.program_id(0)
    acc = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + row * row_stride + cols, mask=cols < n_cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(acc, axis=0))


def torch_reference(name: str):
    """The torch function each test kernel is compared with (inputs as the test passes them)."""
    import torch

    def sum_rows_and_columns(x, block_m):
        row_sum = x.sum(dim=1)
        blocks = [x[i:i + block_m].amax(dim=0) for i in range(0, x.shape[0], block_m)]
        return row_sum, torch.stack(blocks)

    def scale_rows_2d(x, scale, bias, block_n):
        y = torch.relu(x * scale[:, None] + bias[None, :])
        out = torch.empty_like(y)
        for j in range(0, x.shape[1], block_n):
            part = y[:, j:j + block_n]
            out[:, j:j + block_n] = part - part.sum(dim=1, keepdim=True) / block_n
        return out

    def gelu_like(x):
        y = x / (1.0 + torch.exp(-1.702 * x))
        y = y + torch.log(1.0 + x.abs()) - x.abs().sqrt()
        return torch.where(x > 0, y, torch.minimum(y, torch.tensor(0.5, device=x.device)))

    return {"sum_rows_and_columns": sum_rows_and_columns, "scale_rows_2d": scale_rows_2d,
            "gelu_like": gelu_like, "row_softmax": lambda x: torch.softmax(x, dim=-1)}[name]


@mini_compiler.jit
def dot_transposed(a_ptr, b_ptr, c_ptr, n, BLOCK: tl.constexpr):
    """c = a @ b.T for n x n fp16 matrices (n <= BLOCK), masked, through tl.trans."""
    rows = tl.arange(0, BLOCK)
    inside = (rows[:, None] < n) & (rows[None, :] < n)
    a = tl.load(a_ptr + rows[:, None] * n + rows[None, :], mask=inside, other=0.0)
    b = tl.load(b_ptr + rows[:, None] * n + rows[None, :], mask=inside, other=0.0)
    c = tl.dot(a, tl.trans(b))
    tl.store(c_ptr + rows[:, None] * n + rows[None, :], c, mask=inside)
