"""Timing kernels honestly.

A GPU runs asynchronously: the Python call that launches a kernel returns long before the kernel
finishes. So GPU time is measured with CUDA events recorded on the device around many repetitions,
after a warm-up that keeps compilation out of the numbers; ``triton.testing.do_bench`` does that
and we take its median. It also flushes the L2 cache between runs, so a small problem is not
timed from cache.

On the CPU the course runs Triton's *interpreter*, which is thousands of times slower than a GPU.
Its wall-clock time is useful only to compare CPU variants with each other, so every CPU timing
is labelled as such and the throughput helpers refuse to call it GPU speed.
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
    fn: Callable[[], object], *, warmup_ms: int = 25, rep_ms: int = 100, cpu_reps: int = 3
) -> Timing:
    """Median time of ``fn()``: CUDA events on a GPU, wall clock (labelled) on the CPU."""
    if configure().on_gpu:
        import triton.testing

        ms = triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")
        return Timing(float(ms), "gpu-events")
    fn()  # warm-up: the interpreter and torch both do one-time work on first call
    samples = []
    for _ in range(cpu_reps):
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
    lessons draw it as the ceiling for memory-bound kernels.
    """
    import torch

    env = configure()
    if nbytes is None:
        nbytes = 2**30 if env.on_gpu else 2**24
    src = torch.randn(nbytes // 4, device=env.device)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src))
    return gbps(2 * src.numel() * 4, t)


def matmul_ceiling(dtype=None, size: int | None = None) -> float:
    """Measured compute ceiling: the vendor library's rate (TFLOP/s) on a large square product."""
    import torch

    env = configure()
    dtype = dtype or (torch.float16 if env.on_gpu else torch.float32)
    size = size or (8192 if env.on_gpu else 512)
    a = torch.randn(size, size, device=env.device, dtype=dtype)
    b = torch.randn(size, size, device=env.device, dtype=dtype)
    t = bench(lambda: a @ b)
    return tflops(2 * size**3, t)
