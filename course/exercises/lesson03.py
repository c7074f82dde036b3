"""Checks for lesson 3's exercises: grouped program order, a fused bias + SiLU epilogue, and a
batched matmul.

The kernel checks launch the learner's kernel on fresh random fp16 matrices whose sizes are not
multiples of the tiles, with the output poisoned with NaN, and compare with a float64 product at a
tolerance that follows fp16's rounding and the length of the sum.
"""

from __future__ import annotations

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from ..kernels.matmul import grouped_order, tolerance
from . import learner_code, passed, reads_stay_inside

BLOCKS = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}


def _shapes() -> list[tuple[int, int, int]]:
    small = [(70, 45, 50), (1, 33, 17), (64, 64, 64)]
    return small if configure().interpreted else small + [(1000, 513, 1031)]


def check_grouped_pid(grouped_pid) -> None:
    """``grouped_pid(pid, num_pid_m, num_pid_n, group_size) -> (pid_m, pid_n)`` in plain Python."""
    name = "grouped_pid"
    grids = [(1, 1, 8), (4, 4, 2), (5, 3, 2), (9, 4, 4), (4, 7, 8), (16, 16, 8), (7, 5, 3)]
    for num_pid_m, num_pid_n, group in grids:
        for pid in range(num_pid_m * num_pid_n):
            expected = grouped_order(pid, num_pid_m, num_pid_n, group)
            with learner_code(name):
                got = grouped_pid(pid, num_pid_m, num_pid_n, group)
            if tuple(got) != expected:
                hint = ""
                if num_pid_m % group:
                    hint = (
                        " This grid's last group is shorter than GROUP_SIZE: its programs must "
                        "cycle over the rows that remain, not over GROUP_SIZE rows."
                    )
                raise WrongAnswer(
                    f"{name}: for a grid of {num_pid_m} x {num_pid_n} tiles with "
                    f"group_size={group}, "
                    f"program {pid} should compute tile {expected}, but your function returned "
                    f"{tuple(got)}.{hint}"
                )
    passed(name, f"matches the grouped order on {len(grids)} grids, including partial last groups")


def _launch_2d(exercise: str, kernel, a, b, c, *extra, bounds_checked: bool = False) -> None:
    """Launch on a 1-D grid of tiles; ``bounds_checked`` runs it through ``mini_compiler``'s
    bounds-checked CPU back end instead (see :func:`~course.exercises.reads_stay_inside`)."""
    import triton

    m, k = a.shape
    n = b.shape[1]
    grid = (triton.cdiv(m, BLOCKS["BLOCK_M"]) * triton.cdiv(n, BLOCKS["BLOCK_N"]),)
    args = (a, b, *extra, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
            c.stride(0), c.stride(1))  # fmt: skip
    if bounds_checked:
        reads_stay_inside(exercise, kernel, grid, *args, **BLOCKS)
        return
    with learner_code(exercise):
        kernel[grid](*args, **BLOCKS)


def check_matmul_bias_silu(matmul_bias_silu_kernel) -> None:
    """``matmul_bias_silu_kernel(a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, stride_am, stride_ak,
    stride_bk, stride_bn, stride_cm, stride_cn, BLOCK_M, BLOCK_N, BLOCK_K)``: ``silu(A @ B + bias)``
    with one bias per column, launched on a 1-D grid of ``cdiv(M, BLOCK_M) * cdiv(N, BLOCK_N)``."""
    name = "matmul_bias_silu"
    device = configure().device
    shapes = _shapes()
    m, n, k = 70, 45, 50  # no size a multiple of the 32-wide tiles: every edge is partial
    a, b = torch.randn(m, k, dtype=torch.float16), torch.randn(k, n, dtype=torch.float16)
    bias, c = torch.randn(n, dtype=torch.float16), torch.empty(m, n, dtype=torch.float16)
    # First on the CPU with bounds checks, then on the device: a stray read can fault a GPU.
    _launch_2d(name, matmul_bias_silu_kernel, a, b, c, bias, bounds_checked=True)
    for m, n, k in shapes:
        a = torch.randn(m, k, device=device, dtype=torch.float16)
        b = torch.randn(k, n, device=device, dtype=torch.float16)
        bias = torch.randn(n, device=device, dtype=torch.float16)
        c = torch.full((m, n), float("nan"), device=device, dtype=torch.float16)
        _launch_2d(name, matmul_bias_silu_kernel, a, b, c, bias)
        z = a.double() @ b.double() + bias.double()
        rtol, atol = tolerance(torch.float16, k)
        check_close(
            c, z * torch.sigmoid(z), name=f"{name} ({m}x{n}x{k})", rtol=rtol, atol=atol, quiet=True
        )
    passed(
        name,
        f"silu(A @ B + bias) matches float64 for (M, N, K) in {shapes}, blocks of 32; no load "
        "or store leaves its tensor",
    )


def check_batched_matmul(batched_matmul_kernel) -> None:
    """``batched_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_ab, stride_am, stride_ak,
    stride_bb, stride_bk, stride_bn, stride_cb, stride_cm, stride_cn, BLOCK_M, BLOCK_N, BLOCK_K)``:
    ``C[i] = A[i] @ B[i]`` on a grid of ``(cdiv(M, BLOCK_M) * cdiv(N, BLOCK_N), batch)``."""
    import triton

    name = "batched_matmul"
    device = configure().device
    cases = []
    for m, n, k in _shapes()[:2]:
        for shared_b in (False, True):
            batch = 3
            a = torch.randn(batch, m, k, device=device, dtype=torch.float16)
            if shared_b:  # one B for every batch entry: a stride of 0 repeats it without a copy
                b = torch.randn(k, n, device=device, dtype=torch.float16).expand(batch, k, n)
            else:
                b = torch.randn(batch, k, n, device=device, dtype=torch.float16)
            c = torch.full((batch, m, n), float("nan"), device=device, dtype=torch.float16)
            grid = (triton.cdiv(m, BLOCKS["BLOCK_M"]) * triton.cdiv(n, BLOCKS["BLOCK_N"]), batch)
            with learner_code(name):
                batched_matmul_kernel[grid](
                    a,
                    b,
                    c,
                    m,
                    n,
                    k,
                    *a.stride(),
                    *b.stride(),
                    *c.stride(),
                    **BLOCKS,
                )
            rtol, atol = tolerance(torch.float16, k)
            what = f"{name} ({batch} x {m}x{n}x{k}{', B shared, stride_bb=0' if shared_b else ''})"
            check_close(c, a.double() @ b.double(), name=what, rtol=rtol, atol=atol, quiet=True)
            cases.append(what)
    passed(name, f"right for {len(cases)} cases, including a B shared by the whole batch")
