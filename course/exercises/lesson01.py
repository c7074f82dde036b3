"""Checks for lesson 1's exercises: a fused ``a * x + y``, a reversed copy, and the grid size.

Each check launches the learner's kernel itself, on fresh random data, with lengths that are and
are not multiples of the block. Outputs are poisoned with NaN, and every input and output tensor is
a slice of a longer buffer whose tail holds a sentinel value: a kernel without a correct mask then
neither crashes nor goes unnoticed, because its stray writes change the sentinel.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from . import learner_code, passed

SENTINEL = 12345.0
GUARD = 4096  # elements of padding after each tensor: more than any block the checks use


def _lengths() -> list[int]:
    return [1, 13, 1000, 4097] if configure().interpreted else [1, 13, 1000, 4097, 1_000_003]


def _guarded(n: int, *, fill: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A length-``n`` view of a buffer with ``GUARD`` sentinel elements after it."""
    buffer = torch.full((n + GUARD,), SENTINEL, device=device)
    view = buffer[:n]
    if fill == "random":
        view.normal_()
    else:
        view.fill_(float("nan"))
    return view, buffer


def _check_guard(exercise: str, buffer: torch.Tensor, n: int, block: int) -> None:
    tail = buffer[n:]
    stray = (tail != SENTINEL).nonzero().flatten()
    if len(stray):
        raise WrongAnswer(
            f"{exercise}: with n={n} and BLOCK_SIZE={block} your kernel wrote {len(stray)} "
            f"element(s) past the end of the output (first at offset {n + int(stray[0])}). "
            "On a GPU that silently corrupts other memory. Store with mask=offsets < n_elements."
        )


def check_axpy(axpy_kernel) -> None:
    """``axpy_kernel(a, x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE)`` must write ``a*x + y``."""
    import triton

    name = "axpy"
    device = configure().device
    lengths = _lengths()
    for n in lengths:
        for block in (64, 1024):
            a = float(torch.randn(()).item())
            x, _ = _guarded(n, fill="random", device=device)
            y, _ = _guarded(n, fill="random", device=device)
            out, out_buffer = _guarded(n, fill="nan", device=device)
            with learner_code(name):
                axpy_kernel[(triton.cdiv(n, block),)](a, x, y, out, n, BLOCK_SIZE=block)
            _check_guard(name, out_buffer, n, block)
            expected = a * x.double() + y.double()
            check_close(
                out, expected, name=f"{name} (n={n}, BLOCK_SIZE={block}, a={a:.3f})", quiet=True
            )
    passed(name, f"a*x + y is right for n in {lengths}, with BLOCK_SIZE 64 and 1024")


def check_reverse(reverse_kernel) -> None:
    """``reverse_kernel(x_ptr, out_ptr, n_elements, BLOCK_SIZE)`` must write ``x`` back to front."""
    import triton

    name = "reverse"
    device = configure().device
    lengths = _lengths()
    for n in lengths:
        for block in (64, 1024):
            x, _ = _guarded(n, fill="random", device=device)
            out, out_buffer = _guarded(n, fill="nan", device=device)
            with learner_code(name):
                reverse_kernel[(triton.cdiv(n, block),)](x, out, n, BLOCK_SIZE=block)
            _check_guard(name, out_buffer, n, block)
            check_close(
                out,
                x.flip(0),
                name=f"{name} (n={n}, BLOCK_SIZE={block})",
                rtol=0,
                atol=0,
                quiet=True,
            )
    passed(name, f"the reversed copy is exact for n in {lengths}, with BLOCK_SIZE 64 and 1024")


def check_grid_size(grid_size) -> None:
    """``grid_size(n_elements, block_size)`` must return how many programs cover the vector."""
    name = "grid_size"
    cases = [
        (1, 1024),
        (1024, 1024),
        (1025, 1024),
        (98_432, 1024),
        (4097, 64),
        (0, 64),
        (2**28, 4096),
    ]
    for n, block in cases:
        expected = -(-n // block)
        with learner_code(name):
            got = grid_size(n, block)
        if not isinstance(got, int):
            raise WrongAnswer(
                f"{name}({n}, {block}) returned {got!r} ({type(got).__name__}); return an int"
            )
        if got != expected:
            hint = (
                " Too few: the last, partial block has no program."
                if got < expected
                else " Too many."
            )
            raise WrongAnswer(
                f"{name}({n}, {block}) returned {got}, but {expected} programs are needed.{hint}"
            )
    passed(name, f"right for all {len(cases)} cases, including partial blocks and n=0")
