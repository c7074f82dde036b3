"""The capstone's chart: where the time of a forward pass goes, kernel by kernel, beside each
kernel's ceiling (the time its bytes take at the copy bandwidth, or its FLOPs at cuBLAS's rate)."""

from __future__ import annotations


def breakdown_chart(parts: dict[str, list[dict]], *, title: str = "Where the time goes"):
    """One panel per phase (``{"prefill b=1": rows, ...}`` from
    :func:`course.llm.speed.kernel_breakdown`): horizontal bars of each kernel's total time per
    pass, measured and ceiling, in milliseconds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 4.2), squeeze=False)
    for ax, (label, rows) in zip(axes[0], parts.items(), strict=True):
        names = [f"{r['kernel']} (x{r['calls']})" for r in rows]
        measured = [r["ms_total"] for r in rows]
        ceiling = [r["ceiling_ms_per_call"] * r["calls"] for r in rows]
        ys = range(len(rows))
        ax.barh([y + 0.2 for y in ys], measured, height=0.4, label="measured")
        ax.barh([y - 0.2 for y in ys], ceiling, height=0.4, label="ceiling", alpha=0.6)
        ax.set_yticks(list(ys), names, fontsize=8)
        ax.invert_yaxis()
        total, floor = sum(measured), sum(ceiling)
        ax.set(xlabel="ms per forward pass", title=f"{label}: {total:.2f} ms (ceiling {floor:.2f})")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
