"""Timing kernels honestly.

A GPU runs asynchronously: the Python call that launches a kernel returns long before the kernel
finishes. So GPU time is measured with CUDA events recorded on the device around many repetitions,
after a warm-up that keeps compilation out of the numbers; ``triton.testing.do_bench`` does that
and we take its median. It also flushes the L2 cache between runs, so a small problem is not
timed from cache.

On the CPU the course runs Triton's *interpreter*, a simulator thousands of times slower than
compiled code, so the lessons do not time it. Their benchmarks run the same kernel compiled to x86
code by the course's compiler, ``mini_compiler``, beside torch on the CPU, against a copy ceiling
measured on buffers far larger than the CPU's caches. Every CPU timing is labelled as CPU
wall-clock, never as GPU speed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from .env import configure


@dataclass(frozen=True)
class Timing:
    """A median time and how it was measured."""

    ms: float
    method: str  # "gpu-events" (do_bench median) or "cpu-wall" (perf_counter median)

    @property
    def on_gpu(self) -> bool:
        return self.method == "gpu-events"

    def __str__(self) -> str:
        label = "GPU, CUDA events" if self.on_gpu else "CPU wall-clock, not GPU speed"
        return f"{self.ms:.4g} ms ({label})"


def bench(
    fn: Callable[[], object],
    *,
    warmup_ms: int = 25,
    rep_ms: int = 100,
    cpu_reps: int = 3,
    cpu_budget_s: float = 0.2,
) -> Timing:
    """Median time of ``fn()``: CUDA events on a GPU, wall clock (labelled) on the CPU.

    On the CPU ``fn`` runs at least ``cpu_reps`` times and, while it is fast, until about
    ``cpu_budget_s`` seconds have passed (at most 200 times): short calls need many samples
    before their median settles.
    """
    if configure().on_gpu:
        import triton.testing

        ms = triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")
        return Timing(float(ms), "gpu-events")
    fn()  # warm-up: compilation, and torch's one-time work on a first call
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < cpu_reps or (
        time.perf_counter() - started < cpu_budget_s and len(samples) < 200
    ):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(samples), "cpu-wall")


def gbps(nbytes: int, timing: Timing) -> float:
    """Bandwidth in GB/s (10^9 bytes per second) for ``nbytes`` moved in ``timing``."""
    return nbytes / (timing.ms * 1e-3) / 1e9


def tflops(flops: int, timing: Timing) -> float:
    """Arithmetic rate in TFLOP/s (10^12 floating-point operations per second)."""
    return flops / (timing.ms * 1e-3) / 1e12


def copy_bandwidth(nbytes: int | None = None) -> float:
    """Measured memory ceiling: a device-to-device copy, counting bytes read plus bytes written.

    This is the fastest any kernel that reads its inputs and writes its outputs once can go, so the
    lessons draw it as the ceiling for memory-bound kernels. The buffer is far larger than any
    cache (1 GiB on a GPU, whose L2 holds tens of MB; 256 MiB on a CPU, whose last-level cache
    holds tens of MB), so the copy measures the main memory, not a cache.
    """
    import torch

    env = configure()
    if nbytes is None:
        nbytes = 2**30 if env.on_gpu else 2**28
    src = torch.randn(nbytes // 4, device=env.device)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src))
    return gbps(2 * src.numel() * 4, t)


def matmul_ceiling(dtype=None, size: int | None = None) -> float:
    """Measured compute ceiling: the vendor library's rate (TFLOP/s) on a large square product.

    On a GPU that is cuBLAS through ``torch.matmul``, 8192^3 by default; on the CPU, torch's CPU
    matmul (oneDNN/MKL or OpenBLAS, not cuBLAS), 512^3 by default. It depends on the dtype:
    measure it once per dtype and label it with the dtype."""
    import torch

    env = configure()
    dtype = dtype or (torch.float16 if env.on_gpu else torch.float32)
    size = size or (8192 if env.on_gpu else 512)
    a = torch.randn(size, size, device=env.device, dtype=dtype)
    b = torch.randn(size, size, device=env.device, dtype=dtype)
    t = bench(lambda: a @ b)
    return tflops(2 * size**3, t)


def compiled_here(kernel) -> tuple[object, str]:
    """``(kernel, label)``: the lesson's kernel as this machine runs it at speed.

    On a GPU that is Triton's own compilation, the kernel itself. On a CPU, Triton's interpreter
    only *simulates* the GPU (its time says nothing about anyone's speed), so the same source is
    compiled to x86 code by the course's compiler, ``mini_compiler``, and launched the same way:
    ``kernel[grid](...)``. The label says which one it is, for the benchmark's legend.
    """
    if configure().on_gpu:
        return kernel, "Triton"
    import mini_compiler

    return mini_compiler.jit(kernel), "mini_compiler, x86"
