"""Throughput plots: a kernel and its peers against problem size, with the hardware ceiling.

A benchmark number means little alone. Drawn against the measured ceiling (copy bandwidth for
memory-bound kernels, the vendor library's matmul rate for compute-bound ones) it says how much
room is left; drawn beside its peers it says whether the kernel is competitive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt


def throughput(
    sizes: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    ceiling: float | Mapping[str, float] | None = None,
    ceiling_label: str = "measured ceiling",
    xlabel: str = "problem size",
    ylabel: str = "GB/s",
    title: str = "",
    logx: bool = True,
    on_gpu: bool = True,
):
    """Plot one line per entry of ``series`` (name -> values at ``sizes``) and the ceiling.

    ``ceiling`` is one measured value (labelled ``ceiling_label``) or several, as a mapping from
    label to value (say one per dtype): each is drawn as its own dashed line, with its value.
    A series whose name contains "graph" is drawn dotted, beside its per-call twin.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        style = ":" if "graph" in name else "-"
        ax.plot(sizes, values, marker="o", linestyle=style, label=name)
    ceilings = {ceiling_label: ceiling} if isinstance(ceiling, (int, float)) else (ceiling or {})
    for (label, value), dashes in zip(ceilings.items(), ("--", "-.", (0, (5, 5))), strict=False):
        ax.axhline(
            value, color="black", linestyle=dashes, linewidth=1, label=f"{label} ({value:.4g})"
        )
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if on_gpu else f"{ylabel} (CPU wall-clock, not GPU speed)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
