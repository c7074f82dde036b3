"""The roofline: each lesson's kernel against the device's two measured ceilings.

A kernel that does ``F`` floating-point operations and must move ``Q`` bytes between main memory
and the chip has the *arithmetic intensity* ``I = F / Q`` (flop per byte). On a device whose
memory moves ``B`` bytes per second and whose arithmetic does ``P`` operations per second, the
kernel can run at most at ``min(P, I * B)`` operations per second (Williams, Waterman and
Patterson, *Roofline*, CACM 2009): drawn against ``I`` on log-log axes, a slanted roof (memory)
meets a flat one (compute) at the ridge point ``P / B``.

Both ``F`` and ``Q`` are *derived* here from the problem, not measured: ``Q`` is the least
traffic the problem allows (each input read once, each output written once), ``F`` the
operations counted by a stated convention. Each :class:`Work` records how its two numbers were
counted, so a reader can redo the count. The *measured* part is the time: a :class:`Point` is a
piece of work and the median time a kernel took for it, and its height on the plot is ``F`` over
that time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Work:
    """What a kernel must do: operations and least bytes moved, with how they were counted."""

    name: str
    flops: float
    bytes: float
    how: str

    @property
    def intensity(self) -> float:
        """Operations per byte of the least traffic."""
        return self.flops / self.bytes


def vector_add(n: int, element: int = 4) -> Work:
    """``out = x + y``: one addition per element; read ``x`` and ``y``, write ``out``."""
    return Work("vector add", n, 3 * n * element,
                f"{n:,} additions / (read x, y + write out: 3 x {n:,} x {element} B)")


def softmax(rows: int, cols: int, element: int = 4) -> Work:
    """Row softmax, counted as 5 operations per element: the max, the subtraction, the
    exponential, the sum and the division (the exponential counts as one); one read, one write."""
    n = rows * cols
    return Work("softmax", 5 * n, 2 * n * element,
                f"5 x {n:,} (max, subtract, exp, sum, divide) / (read + write: 2 x {n:,} x "
                f"{element} B)")


def matmul(m: int, n: int, k: int, element: int = 2) -> Work:
    """``C = A B``: a multiply and an add per term; read ``A`` and ``B`` once, write ``C`` once."""
    return Work("matmul", 2 * m * n * k, (m * k + k * n + m * n) * element,
                f"2 x {m} x {n} x {k} / ((MK + KN + MN) x {element} B)")


def attention(batch: int, heads: int, n: int, head_dim: int, element: int = 2) -> Work:
    """Attention forward (non-causal): two products of ``2 N^2 d`` per head (the usual
    convention: the softmax's operations are not counted); read ``Q, K, V``, write ``O`` and one
    fp32 log-sum-exp per row."""
    flops = 4 * batch * heads * n * n * head_dim
    traffic = batch * heads * n * (4 * head_dim * element + 4)
    return Work("attention fwd", flops, traffic,
                f"4 x B H N^2 d (QK^T and PV) / (Q, K, V, O: 4 x B H N d x {element} B "
                "+ lse: B H N x 4 B)")


@dataclass(frozen=True)
class Point:
    """A piece of work and the measured median time a kernel took for it."""

    work: Work
    ms: float
    label: str = ""

    @property
    def tflops(self) -> float:
        """Achieved rate of the counted operations."""
        return self.work.flops / (self.ms * 1e-3) / 1e12

    @property
    def gbps(self) -> float:
        """Achieved rate of the least traffic."""
        return self.work.bytes / (self.ms * 1e-3) / 1e9


def attainable(intensity: float, peak_tflops: float, bandwidth_gbps: float) -> float:
    """The roof at ``intensity``: ``min(P, I * B)`` in TFLOP/s."""
    return min(peak_tflops, intensity * bandwidth_gbps / 1e3)


def table(points: Sequence[Point], peak_tflops: float, bandwidth_gbps: float) -> str:
    """One line per point: intensity, achieved rates, the roof there and the fraction reached."""
    lines = [f"{'kernel':<16}{'flop/byte':>11}{'TFLOP/s':>11}{'GB/s':>9}{'roof TFLOP/s':>14}"
             f"{'of roof':>9}  bound by"]  # fmt: skip
    ridge = peak_tflops * 1e3 / bandwidth_gbps
    for p in points:
        roof = attainable(p.work.intensity, peak_tflops, bandwidth_gbps)
        bound = "memory" if p.work.intensity < ridge else "compute"
        lines.append(f"{p.label or p.work.name:<16}{p.work.intensity:>11.3g}{p.tflops:>11.4g}"
                     f"{p.gbps:>9.4g}{roof:>14.4g}{p.tflops / roof:>9.0%}  {bound}")  # fmt: skip
    lines.append(f"ridge point: {ridge:.4g} flop/byte")
    return "\n".join(lines)


def plot(
    points: Sequence[Point],
    roofs: Mapping[str, float],
    bandwidth_gbps: float,
    *,
    bandwidth_label: str = "copy",
    title: str = "",
    on_gpu: bool = True,
):
    """Log-log roofline: the slanted memory roof, one flat roof per entry of ``roofs`` (label ->
    TFLOP/s, say one per dtype), and each point labelled with its kernel's name."""
    import matplotlib.pyplot as plt
    import numpy as np

    if not points or not roofs:
        raise ValueError("roofline.plot needs at least one point and one flat roof")
    intensities = [p.work.intensity for p in points]
    top = max(roofs.values())
    lo = min(min(intensities), 0.5 * min(roofs.values()) * 1e3 / bandwidth_gbps) / 4
    hi = max(max(intensities), top * 1e3 / bandwidth_gbps) * 4
    x = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(x, np.minimum(x * bandwidth_gbps / 1e3, top), color="black", linewidth=1.5,
            label=f"{bandwidth_label}: {bandwidth_gbps:,.4g} GB/s")  # fmt: skip
    for (label, value), style in zip(roofs.items(), ("--", "-.", ":"), strict=False):
        ridge = value * 1e3 / bandwidth_gbps
        ax.plot([ridge, hi], [value, value], color="black", linestyle=style, linewidth=1,
                label=f"{label}: {value:,.4g} TFLOP/s (ridge {ridge:,.3g} flop/B)")  # fmt: skip
    for p in points:
        ax.plot(p.work.intensity, p.tflops, "o", markersize=7)
        ax.annotate(f"{p.label or p.work.name}\n{p.tflops:.3g} TFLOP/s", (p.work.intensity,
                    p.tflops), textcoords="offset points", xytext=(6, -14), fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (flop per byte of least traffic)")
    unit = "TFLOP/s" if on_gpu else "TFLOP/s (CPU wall-clock, not GPU speed)"
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
