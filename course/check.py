"""Checking a result the way a patient teaching assistant would.

``torch.testing.assert_close`` tells you *that* two tensors differ. A learner also needs to know
*how*: were some elements never written (a grid too small, a mask too strict)? Did the kernel
produce NaN or infinity? Are the values off everywhere (wrong formula) or only at the end of the
tensor (a missing mask)? :func:`check_close` answers those questions in words.

The trick that makes "never written" detectable is poisoning: fill the output with NaN (or, for
integers, with a sentinel) *before* the kernel runs. Any element the kernel forgets keeps the
poison, and no correct result is ever NaN where the reference is finite.
"""

from __future__ import annotations

import math

import torch

# Tolerances for comparing with a higher-precision reference: about the rounding error of the
# output's dtype, a little looser than one unit in the last place.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {  # dtype: (rtol, atol)
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-3),
    torch.bfloat16: (1.6e-2, 1e-2),
}

INT_POISON = -(2**31) + 7  # an integer nobody's kernel should produce
SECOND_POISON = 1234.0  # the second run's fill value: tells a computed NaN from the poison


class WrongAnswer(AssertionError):
    """A result that differs from the reference; the message says how and where."""


class NotSolvedYet(WrongAnswer):
    """An exercise that still holds its ``# YOUR CODE HERE`` stub."""


def poison(t: torch.Tensor) -> torch.Tensor:
    """Fill ``t`` in place with a value no correct kernel writes (NaN, or a sentinel integer)."""
    if t.is_floating_point() or t.is_complex():
        t.fill_(float("nan"))
    elif t.dtype == torch.bool:
        raise TypeError("a bool tensor cannot be poisoned: every value is a valid answer")
    else:
        t.fill_(INT_POISON)
    return t


def empty_poisoned(*shape, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """``torch.empty`` that is NaN-filled, so unwritten elements show up in :func:`check_close`."""
    return poison(torch.empty(*shape, dtype=dtype, device=device))


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    idx = []
    for extent in reversed(shape):
        idx.append(flat % extent)
        flat //= extent
    return tuple(reversed(idx))


def _fmt_index(i: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in i) + "]"


def _describe_positions(flat_positions: torch.Tensor, shape, limit: int = 5) -> str:
    first = [_fmt_index(_index(int(p), tuple(shape))) for p in flat_positions[:limit]]
    more = f" and {len(flat_positions) - limit} more" if len(flat_positions) > limit else ""
    return ", ".join(first) + more


def written_by_rerun(rerun, dtype: torch.dtype) -> torch.Tensor:
    """Which elements a kernel writes, found by running it again on an output filled with
    :data:`SECOND_POISON` instead of NaN: an element that still holds that value was never
    written. ``rerun(fill_value)`` must allocate the output filled with ``fill_value``, launch the
    kernel and return the output. With this, a NaN the kernel *computed* (``inf - inf``,
    ``inf / inf``, ``0 * inf``) is told apart from a NaN that is only the poison."""
    out = rerun(SECOND_POISON).detach().to("cpu")
    stored = torch.full((), SECOND_POISON, dtype=dtype).item()  # the sentinel as dtype rounds it
    return out.reshape(-1) != stored


def _pattern(where: torch.Tensor, shape: tuple[int, ...], n: int) -> str:
    """A sentence about *where* the wrong elements are, when the positions suggest a cause."""
    count = len(where)
    if count == n:
        return " Every element is wrong: check the formula itself."
    if len(shape) >= 2 and shape[-1] > 1:
        cols = where % shape[-1]
        rows = where // shape[-1]
        first_col = int(cols.min())
        if first_col > 0 and count == len(rows.unique()) * (shape[-1] - first_col):
            return (
                f" Only the last columns ({first_col} and after) are wrong, in "
                f"{len(rows.unique())} row(s): check the mask at the end of each row."
            )
        bad_rows = rows.unique()
        total_rows = n // shape[-1]
        if len(bad_rows) < total_rows and 2 * len(bad_rows) <= total_rows:
            listed = ", ".join(str(int(r)) for r in bad_rows[:8])
            more = " ..." if len(bad_rows) > 8 else ""
            return (
                f" Only {len(bad_rows)} of {total_rows} rows (of the last dimension) are wrong: "
                f"{listed}{more}. What is special about those rows?"
            )
    if 2 * count > n:
        return f" Most elements ({100 * count / n:.0f}%) are wrong: check the formula itself."
    one_per_row = len(shape) >= 2 and shape[-1] == 1  # then the "tail" is just the last row
    if not one_per_row and int(where[0]) > 0 and count == n - int(where[0]):
        return " Only the tail is wrong: check the mask at the end of the tensor."
    return ""


def check_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    name: str = "result",
    rtol: float | None = None,
    atol: float | None = None,
    max_report: int = 5,
    quiet: bool = False,
    poisoned: bool = True,
    written: torch.Tensor | None = None,
) -> None:
    """Raise :class:`WrongAnswer` unless ``actual`` matches ``expected`` within tolerance.

    ``expected`` may be in higher precision (say float64); the tolerance follows ``actual``'s dtype
    unless given. The message reports, in this order, the first problem a learner should fix:
    shape, never-written elements (poison), NaN/Inf the code computed, then wrong values with
    their first positions and, where the positions suggest one, a likely cause.

    ``poisoned=False`` says the output was not NaN-poisoned (say, a value returned by a Python
    function): every NaN was then computed. ``written`` (a bool tensor of ``actual``'s shape, from
    :func:`written_by_rerun`) says which elements the kernel is known to write, so that a NaN the
    kernel computed is not reported as an element it forgot.
    """
    if not isinstance(actual, torch.Tensor):
        raise WrongAnswer(f"{name}: expected a torch.Tensor, got {type(actual).__name__}")
    if tuple(actual.shape) != tuple(expected.shape):
        raise WrongAnswer(
            f"{name}: shape {tuple(actual.shape)} but the reference has shape "
            f"{tuple(expected.shape)}. Check how you allocate the output."
        )
    default_rtol, default_atol = TOLERANCES.get(actual.dtype, (0.0, 0.0))
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    got = actual.detach().to("cpu")
    ref = expected.detach().to("cpu")
    n = got.numel()
    flat_got = got.reshape(-1)
    flat_ref = ref.reshape(-1)

    if got.is_floating_point():
        got64, ref64 = flat_got.double(), flat_ref.double()
        nan_here = torch.isnan(got64) & ~torch.isnan(ref64)
        if not poisoned:
            known_written = torch.ones_like(nan_here)
        elif written is not None:
            known_written = written.detach().to("cpu").reshape(-1).bool()
        else:
            known_written = None
        unwritten = nan_here if known_written is None else nan_here & ~known_written
        if unwritten.any():
            where = unwritten.nonzero().flatten()
            maybe = ", unless your code computed NaN there" if known_written is None else ""
            first = _describe_positions(where, got.shape, max_report)
            raise WrongAnswer(
                f"{name}: {len(where)} of {n} elements were never written (they still hold the "
                f"NaN poison{maybe}), first at {first}. "
                "Does the grid launch enough programs, and does the store's mask cover every "
                "valid element?"
            )
        if nan_here.any():
            where = nan_here.nonzero().flatten()
            first = _describe_positions(where, got.shape, max_report)
            raise WrongAnswer(
                f"{name}: your code computed NaN in {len(where)} of {n} elements where the "
                f"reference is a number, first at {first}. "
                "NaN comes from inf - inf, inf / inf or 0 * inf: look for an exp that overflows "
                "(did you subtract the maximum?) or a -inf - (-inf)."
            )
        bad_inf = torch.isinf(got64) & ~torch.isinf(ref64)
        if bad_inf.any():
            where = bad_inf.nonzero().flatten()
            raise WrongAnswer(
                f"{name}: {len(where)} elements are infinite where the reference is finite, first "
                f"at {_describe_positions(where, got.shape, max_report)}. Look for an overflow "
                "(exp of a large number: did you subtract the maximum?), the log of a number "
                "that underflowed to 0, or a division by zero."
            )
        finite = torch.isfinite(ref64)
        diff = (got64 - ref64).abs()
        allowed = atol + rtol * ref64.abs()
        wrong = finite & (diff > allowed)
        wrong |= ~finite & ~((got64 == ref64) | (torch.isnan(got64) & torch.isnan(ref64)))
    else:
        unwritten = flat_got == INT_POISON
        if unwritten.any() and not (flat_ref == INT_POISON).any():
            where = unwritten.nonzero().flatten()
            raise WrongAnswer(
                f"{name}: {len(where)} of {n} elements were never written, first at "
                f"{_describe_positions(where, got.shape, max_report)}. Check the grid and the mask."
            )
        diff = (flat_got.long() - flat_ref.long()).abs().double()
        wrong = diff > atol
        ref64 = flat_ref.double()
        got64 = flat_got.double()
        finite = torch.ones_like(wrong)

    if wrong.any():
        where = wrong.nonzero().flatten()
        lines = []
        for p in where[:max_report]:
            p = int(p)
            lines.append(
                f"  at {_fmt_index(_index(p, tuple(got.shape)))}: got {float(got64[p]):.6g}, "
                f"expected {float(ref64[p]):.6g} (off by {float(diff[p]):.3g})"
            )
        pattern = _pattern(where, tuple(got.shape), n)
        largest = float(diff[wrong & finite].max()) if (wrong & finite).any() else math.inf
        raise WrongAnswer(
            f"{name}: {len(where)} of {n} elements differ from the reference by more than "
            f"rtol={rtol:g}, atol={atol:g} (largest error {largest:.3g}).{pattern}\n"
            + "\n".join(lines)
        )
    if not quiet:
        print(f"✓ {name}: all {n} elements match (rtol={rtol:g}, atol={atol:g})")
