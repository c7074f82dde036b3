"""Checks for lesson 2's exercises: log-softmax, a fused RMSNorm, and softmax over a strided view.

Each check launches the learner's kernel itself, one program per row, on fresh random rows whose
length is not a power of two, against a float64 reference. Outputs are poisoned with NaN and sit in
a longer buffer whose tail holds a sentinel, so a missing mask shows up as a write past the end.
Some rows are chosen to expose numerically unsafe formulas: values near +1000 and near -1000 (a
softmax without the maximum subtracted overflows or divides 0 by 0), a row spanning -300..300
(log of a softmax gives -inf where probabilities underflow), and rows of tiny magnitude (an
RMSNorm with its epsilon outside the square root). Each group of rows is compared on its own, so
the message says which kind of row went wrong. A NaN in the output is told apart from the poison
by a second run on an output filled with another value.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close, written_by_rerun
from ..env import configure
from . import learner_code, passed

SENTINEL = 12345.0

# Rows with a story: each group is compared on its own, so a failure names what is special about
# the rows it failed on. (The first group is ordinary: a plain mistake is reported there first.)
ORDINARY = "ordinary rows"
NEAR_1000 = "a row near +1000 (exp(x) overflows float32 unless the row's maximum is subtracted)"
SPAN = (
    "a row spanning -300 to 300 (most exp(x - max) underflow to 0: log of the softmax gives -inf, "
    "and exp(x) without the maximum overflows)"
)
VERY_NEGATIVE = "a row near -1000 (exp(x) underflows to 0 unless the maximum is subtracted: 0 / 0)"
TINY = (
    "rows of tiny magnitude, about 1e-3 (there eps is not negligible: it belongs inside the square "
    "root, sqrt(mean(x^2) + eps))"
)


def _row_lengths() -> list[int]:
    return [1, 100, 781] if configure().interpreted else [1, 100, 781, 4097, 12_000]


def _rows(n_rows: int, n_cols: int, device: str) -> tuple[torch.Tensor, dict[str, list[int]]]:
    """Random rows, some of them with values that expose a numerically unsafe formula."""
    x = 3 * torch.randn(n_rows, n_cols, device=device)
    # Ordinary rows stay at least 0.5 away from zero: in a row of one element a value near zero
    # would be a "tiny" row by chance, and hide behind the wrong diagnosis.
    x += 0.5 * torch.sign(x)
    x[1] += 1000.0
    x[2] = (torch.rand(n_cols, device=device) * 600 - 300).to(x.dtype)
    x[2, 0] = 300.0  # the row really spans the whole range, even with a single column
    x[3] -= 1000.0
    x[4:6] *= 1e-3
    groups = {ORDINARY: [0, *range(6, n_rows)], NEAR_1000: [1], SPAN: [2], VERY_NEGATIVE: [3],
              TINY: [4, 5]}  # fmt: skip
    return x, groups


def _guarded_output(
    n_rows: int, n_cols: int, device: str, fill: float = float("nan")
) -> tuple[torch.Tensor, torch.Tensor]:
    """An (n_rows, n_cols) output filled with ``fill`` (NaN: poison), followed by sentinels."""
    buffer = torch.full((n_rows * n_cols + 16_384,), SENTINEL, device=device)
    buffer[: n_rows * n_cols] = fill
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


def _rows_named(rows: list[int]) -> str:
    if len(rows) == 1:
        return f"row {rows[0]}"
    if rows == list(range(rows[0], rows[-1] + 1)):
        return f"rows {rows[0]}-{rows[-1]}"
    return "rows " + ", ".join(str(r) for r in rows[:3]) + (" ..." if len(rows) > 3 else "")


def _compare(exercise, what, out, expected, groups, rerun, **tolerance) -> None:
    """Compare row group by row group; a NaN is checked against a second run (computed or
    never written?)."""
    written = None
    if torch.isnan(out).any():
        written = written_by_rerun(rerun, out.dtype).view(out.shape)
    for group, rows in groups.items():
        if not rows:
            continue
        check_close(
            out[rows],
            expected[rows],
            name=f"{exercise} ({what}), {_rows_named(rows)}: {group}",
            written=None if written is None else written[rows],
            quiet=True,
            **tolerance,
        )


def _check_rows(exercise: str, launch, reference, n_rows: int = 9) -> list[int]:
    """Run ``launch(x, out, n_cols, block)`` for each row length; compare with ``reference(x)``."""
    import triton

    device = configure().device
    lengths = _row_lengths()
    for n_cols in lengths:
        x, groups = _rows(n_rows, n_cols, device)
        out, buffer = _guarded_output(n_rows, n_cols, device)
        block = triton.next_power_of_2(n_cols)
        with learner_code(exercise):
            launch(x, out, n_cols, block)
        _check_guard(exercise, buffer, n_rows * n_cols, n_cols, block)

        def rerun(fill, x=x, n_cols=n_cols, block=block):
            again, _ = _guarded_output(n_rows, n_cols, device, fill)
            with learner_code(exercise):
                launch(x, again, n_cols, block)
            return again

        _compare(exercise, f"{n_rows} rows of {n_cols}", out, reference(x), groups, rerun,
                 rtol=1e-5, atol=1e-5)  # fmt: skip
    return lengths


def check_log_softmax(log_softmax_kernel) -> None:
    """``log_softmax_kernel(x_ptr, out_ptr, n_cols, BLOCK_SIZE)``: one contiguous row a program."""

    def launch(x, out, n_cols, block):
        log_softmax_kernel[(x.shape[0],)](x, out, n_cols, BLOCK_SIZE=block)

    lengths = _check_rows("log_softmax", launch, lambda x: torch.log_softmax(x.double(), dim=-1))
    passed(
        "log_softmax",
        f"matches float64 for rows of {lengths} elements, including rows near +-1000 and rows "
        "spanning -300..300",
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
        f"matches float64 for rows of {lengths} elements, with eps={RMS_EPS:g} and random "
        "weights, including rows of tiny magnitude where eps matters",
    )


def _strided_views(device: str) -> dict[str, tuple[torch.Tensor, dict[str, list[int]]]]:
    """Non-contiguous views, each with rows near +1000 and -1000 and a row spanning -300..300."""
    makers = {
        "transposed (rows run down the columns)": lambda base: base.t()[:, :33],
        "every third column": lambda base: base[:, ::3],
        "every other row, from column 7": lambda base: base[::2, 7:],
        "contiguous": lambda base: base[:13, :281].contiguous(),
    }
    views = {}
    for what, make in makers.items():
        view = make(3 * torch.randn(40, 300, device=device))
        view[1] += 1000.0  # in place: the view's own elements, wherever its strides put them
        view[2] = torch.rand(view.shape[1], device=device) * 600 - 300
        view[2, 0] = 300.0
        view[3] -= 1000.0
        groups = {ORDINARY: [0, *range(4, view.shape[0])], NEAR_1000: [1], SPAN: [2],
                  VERY_NEGATIVE: [3]}  # fmt: skip
        views[what] = (view, groups)
    return views


def check_strided_softmax(strided_softmax_kernel) -> None:
    """``strided_softmax_kernel(x_ptr, out_ptr, n_cols, x_row_stride, x_col_stride, out_row_stride,
    BLOCK_SIZE)``: softmax of each row of a view with any strides, into a contiguous output."""
    import triton

    name = "strided_softmax"
    device = configure().device
    views = _strided_views(device)
    for what, (x, groups) in views.items():
        n_rows, n_cols = x.shape
        block = triton.next_power_of_2(n_cols)

        def launch(fill, x=x, n_rows=n_rows, n_cols=n_cols, block=block):
            out, buffer = _guarded_output(n_rows, n_cols, device, fill)
            with learner_code(name):
                strided_softmax_kernel[(n_rows,)](
                    x, out, n_cols, x.stride(0), x.stride(1), out.stride(0), BLOCK_SIZE=block
                )
            return out, buffer

        out, buffer = launch(float("nan"))
        _check_guard(name, buffer, n_rows * n_cols, n_cols, block)
        _compare(name, f"{what}, strides {x.stride()}", out, torch.softmax(x.double(), dim=-1),
                 groups, lambda fill: launch(fill)[0])  # fmt: skip
    passed(
        name,
        f"right for {len(views)} views, each with rows near +-1000 and one spanning -300..300: "
        + "; ".join(views),
    )
