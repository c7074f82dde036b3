"""Checks for lesson 2's exercises: log-softmax, a fused RMSNorm, and softmax over a strided view.

Each check launches the learner's kernel itself, one program per row, on fresh random rows whose
length is not a power of two, against a float64 reference. Outputs are poisoned with NaN and sit in
a longer buffer whose tail holds a sentinel, so a missing mask shows up as a write past the end.
Some rows hold large values (around 1000): a kernel that forgets to subtract the maximum overflows.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from . import learner_code, passed

SENTINEL = 12345.0


def _row_lengths() -> list[int]:
    return [1, 100, 781] if configure().interpreted else [1, 100, 781, 4097, 12_000]


def _rows(n_rows: int, n_cols: int, device: str) -> torch.Tensor:
    x = 3 * torch.randn(n_rows, n_cols, device=device)
    x[0] += 1000.0  # exp(1000) overflows fp32: only the stable formula survives this row
    return x


def _guarded_output(n_rows: int, n_cols: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A NaN-poisoned (n_rows, n_cols) output followed by a block of sentinel values."""
    buffer = torch.full((n_rows * n_cols + 16_384,), SENTINEL, device=device)
    buffer[: n_rows * n_cols] = float("nan")
    return buffer[: n_rows * n_cols].view(n_rows, n_cols), buffer


def _check_guard(exercise: str, buffer: torch.Tensor, used: int, n_cols: int, block: int) -> None:
    stray = (buffer[used:] != SENTINEL).nonzero().flatten()
    if len(stray):
        raise WrongAnswer(
            f"{exercise}: with n_cols={n_cols} and BLOCK_SIZE={block} your kernel wrote past "
            "the end of "
            f"the output (first stray write {int(stray[0])} elements after it). Store with "
            "mask=cols < n_cols."
        )


def _check_rows(exercise: str, launch, reference, n_rows: int = 9) -> list[int]:
    """Run ``launch(x, out, n_cols, block)`` for each row length; compare with ``reference(x)``."""
    import triton

    device = configure().device
    lengths = _row_lengths()
    for n_cols in lengths:
        x = _rows(n_rows, n_cols, device)
        out, buffer = _guarded_output(n_rows, n_cols, device)
        block = triton.next_power_of_2(n_cols)
        with learner_code(exercise):
            launch(x, out, n_cols, block)
        _check_guard(exercise, buffer, n_rows * n_cols, n_cols, block)
        check_close(
            out,
            reference(x),
            name=f"{exercise} ({n_rows} rows of {n_cols})",
            rtol=1e-5,
            atol=1e-5,
            quiet=True,
        )
    return lengths


def check_log_softmax(log_softmax_kernel) -> None:
    """``log_softmax_kernel(x_ptr, out_ptr, n_cols, BLOCK_SIZE)``: one contiguous row a program."""

    def launch(x, out, n_cols, block):
        log_softmax_kernel[(x.shape[0],)](x, out, n_cols, BLOCK_SIZE=block)

    lengths = _check_rows("log_softmax", launch, lambda x: torch.log_softmax(x.double(), dim=-1))
    passed(
        "log_softmax", f"matches float64 for rows of {lengths} elements, including rows near 1000"
    )


RMS_EPS = 1e-6


def check_rms_norm(rms_norm_kernel) -> None:
    """``rms_norm_kernel(x_ptr, w_ptr, out_ptr, n_cols, eps, BLOCK_SIZE)``: ``x / rms(x) * w``,
    with ``rms(x) = sqrt(mean(x^2) + eps)``."""
    weights: dict[int, torch.Tensor] = {}

    def launch(x, out, n_cols, block):
        weights[n_cols] = torch.rand(n_cols, device=x.device) + 0.5
        rms_norm_kernel[(x.shape[0],)](x, weights[n_cols], out, n_cols, RMS_EPS, BLOCK_SIZE=block)

    def reference(x):
        x64 = x.double()
        rms = torch.sqrt(x64.pow(2).mean(dim=-1, keepdim=True) + RMS_EPS)
        return x64 / rms * weights[x.shape[1]].double()

    lengths = _check_rows("rms_norm", launch, reference)
    passed(
        "rms_norm",
        f"matches float64 for rows of {lengths} elements, with eps={RMS_EPS:g} and random weights",
    )


def _strided_views(device: str) -> dict[str, torch.Tensor]:
    base = 3 * torch.randn(40, 300, device=device)
    return {
        "transposed (rows run down the columns)": base.t()[:, :33],
        "every third column": base[:, ::3],
        "every other row, from column 7": base[::2, 7:],
        "contiguous": base[:13, :281].contiguous(),
    }


def check_strided_softmax(strided_softmax_kernel) -> None:
    """``strided_softmax_kernel(x_ptr, out_ptr, n_cols, x_row_stride, x_col_stride, out_row_stride,
    BLOCK_SIZE)``: softmax of each row of a view with any strides, into a contiguous output."""
    import triton

    name = "strided_softmax"
    device = configure().device
    views = _strided_views(device)
    for what, x in views.items():
        n_rows, n_cols = x.shape
        out, buffer = _guarded_output(n_rows, n_cols, device)
        block = triton.next_power_of_2(n_cols)
        with learner_code(name):
            strided_softmax_kernel[(n_rows,)](
                x, out, n_cols, x.stride(0), x.stride(1), out.stride(0), BLOCK_SIZE=block
            )
        _check_guard(name, buffer, n_rows * n_cols, n_cols, block)
        check_close(
            out,
            torch.softmax(x.double(), dim=-1),
            name=f"{name}, {what} (strides {x.stride()})",
            quiet=True,
        )
    passed(name, f"right for {len(views)} views: " + "; ".join(views))
