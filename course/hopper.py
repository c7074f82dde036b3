"""What the "Going further on Hopper" sections of lessons 3 and 4 draw and print.

* :func:`draw_hopper_machinery`: a picture of TMA, shared-memory stages, wgmma by warpgroups, and
  of the timeline that warp specialisation changes;
* :func:`recorded` and the ``*_table`` functions: the measurements of
  ``benchmarks/bench_hopper.py`` as recorded on a GPU, so that a notebook run on a laptop shows the
  GPU's numbers (and says which GPU, when, with which versions).
"""

from __future__ import annotations

import json
from pathlib import Path

from .results import RESULTS_DIR

RECORD = RESULTS_DIR / "nvidia-h200" / "hopper.json"


def recorded(path: Path = RECORD) -> dict:
    """The recorded run of benchmarks/bench_hopper.py."""
    return json.loads(Path(path).read_text())


def describe(record: dict) -> str:
    return (f"{record['device']}, {record['date']}, torch {record['torch']}, "
            f"triton {record['triton']}")  # fmt: skip


def matmul_table(record: dict, include_sweep: bool = False) -> str:
    """TFLOP/s and ratio to cuBLAS of every matmul kernel, per dtype and size, as a text table."""
    rows = [r for r in record["rows"] if r.get("part") == "matmul" and "tflops" in r]
    if not include_sweep:
        rows = [r for r in rows if not r["kernel"].startswith("sweep")]
    columns = sorted({(r["dtype"], r["size"]) for r in rows}, key=lambda c: (c[0] != "float16", c))
    kernels = list(dict.fromkeys(r["kernel"] for r in rows))
    cell = {(r["kernel"], r["dtype"], r["size"]): r for r in rows}
    heads = [f"{d} {s}^3" for d, s in columns]
    lines = [f"{'kernel':<28}" + "".join(f"{h:>22}" for h in heads)]
    for kernel in kernels:
        parts = []
        for d, s in columns:
            r = cell.get((kernel, d, s))
            text = f"{r['tflops']:>8.0f} TF/s {r['vs_cublas']:>5.2f}x" if r else f"{'-':>22}"
            parts.append(text)
        lines.append(f"{kernel:<28}" + "".join(f"{p:>22}" for p in parts))
    return "\n".join(lines)


def attention_table(record: dict, include_sweep: bool = False, part: str = "attention") -> str:
    """TFLOP/s, and ratios to cuDNN and to the lesson's kernel, per case: of the forward pass
    (``part="attention"``) or of the backward pass (``part="attention-bwd"``)."""
    rows = [r for r in record["rows"] if r.get("part") == part and "tflops" in r]
    if not include_sweep:
        rows = [r for r in rows if not r["kernel"].startswith("sweep")]
    cases = list(dict.fromkeys((r["head_dim"], r["causal"]) for r in rows))
    width = max([28] + [len(r["kernel"]) + 2 for r in rows])
    lines = [f"{'case':<18}{'kernel':<{width}}{'TFLOP/s':>9}{'/ cuDNN':>9}{'/ lesson':>10}"]
    for d, causal in cases:
        name = f"d={d} {'causal' if causal else 'full'}"
        for r in rows:
            if (r["head_dim"], r["causal"]) == (d, causal):
                lines.append(f"{name:<18}{r['kernel']:<{width}}{r['tflops']:>9.0f}"
                             f"{r['vs_cudnn']:>8.2f}x{r['vs_lesson']:>9.2f}x")  # fmt: skip
                name = ""
    return "\n".join(lines)


def host_time_table(path: Path = RECORD.parent / "host_time.json") -> str:
    """CPU microseconds per call of each wrapper against torch (benchmarks/bench_host_time.py)."""
    record = recorded(path)
    lines = [f"{'op':<11}{'size':<22}{'wrapper':>9}{'Triton path':>13}{'autotuner':>11}"
             f"{'torch':>8}{'wrapper/torch':>15}"]
    for r in record["rows"]:
        if "wrapper_us" in r:
            auto = f"{r['autotuner_us']:>9.1f}us" if r.get("autotuner_us") else f"{'-':>11}"
            lines.append(f"{r['op']:<11}{r['size']:<22}{r['wrapper_us']:>7.1f}us"
                         f"{r['triton_launch_us']:>11.1f}us{auto}{r['torch_us']:>6.1f}us"
                         f"{r['wrapper_over_torch']:>14.2f}x")  # fmt: skip
    for r in record["rows"]:
        if r.get("part") == "breakdown":
            lines.append(f"  {r['op']}: checks {r['checks_us']:.1f} us, output allocation "
                         f"{r['allocation_us']:.1f} us, "
                         f"bound launcher {r['bound_launcher_us']:.1f} us")
        elif r.get("part") == "ways":
            lines.append(f"  an output of 64 x 1024 fp32: torch.empty(shape, device=...) "
                         f"{r['torch_empty_device_us']:.1f} us, torch.empty_like "
                         f"{r['empty_like_us']:.1f} us, x.new_empty {r['new_empty_us']:.1f} us")
    return "\n".join(lines)


def failures(record: dict) -> list[str]:
    """The variants that did not compile or gave wrong answers, with what happened."""
    return [f"{r['part']}: {r['kernel']} ({r.get('dtype') or r.get('head_dim')}): {r['error']}"
            for r in record["rows"] if "error" in r and "kernel" in r]  # fmt: skip


def draw_hopper_machinery():
    """Two panels: where a tile goes on Hopper, and what warp specialisation does to time."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6),
                                      gridspec_kw={"width_ratios": [1.1, 1]})  # fmt: skip

    def box(ax, x, y, w, h, text, color, size=9):
        ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", linewidth=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)

    def arrow(ax, start, end, text="", offset=(0, 0.25)):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, lw=1.4))
        if text:
            mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
            ax.text(*mid, text, ha="center", va="bottom", fontsize=8)

    ax = left
    box(ax, 0.0, 3.2, 2.2, 1.6, "global memory\n(HBM)\nA, B as 2-D\ntensors", "#d9e6f2")
    box(ax, 3.4, 4.4, 2.6, 0.7, "TMA copy engine", "#f7d9a8")
    ax.text(4.85, 3.6, "one thread:\ndescriptor + coordinates\n-> the whole tile", ha="left",
            va="center", fontsize=8)
    for i in range(3):  # the ring of shared-memory stages
        box(ax, 3.2 + i * 1.0, 1.7, 0.95, 1.2, f"stage {i}\nA, B\ntiles", "#e3f1dc", 8)
        ax.text(3.67 + i * 1.0, 1.5, "mbarrier", ha="center", va="top", fontsize=7)
    ax.text(4.7, 1.05, "shared memory (per SM):\na ring of stages", ha="center", va="top",
            fontsize=8)
    arrow(ax, (2.2, 4.2), (3.4, 4.7))
    arrow(ax, (4.7, 4.4), (4.7, 2.95))
    box(ax, 7.0, 2.9, 2.6, 1.0, "warpgroup 0\nwarps 0-3 (128 threads)", "#f2d4d4", 8)
    box(ax, 7.0, 1.6, 2.6, 1.0, "warpgroup 1\nwarps 4-7", "#f2d4d4", 8)
    arrow(ax, (6.2, 2.3), (7.0, 3.3))
    ax.text(8.3, 4.05, "wgmma: operands\nfrom shared memory", ha="center", va="bottom", fontsize=8)
    arrow(ax, (6.2, 2.3), (7.0, 2.1))
    box(ax, 7.0, 0.1, 2.6, 0.9, "accumulators\nin registers", "#eeeeee", 8)
    arrow(ax, (8.3, 1.6), (8.3, 1.0))
    ax.set_xlim(-0.2, 9.8)
    ax.set_ylim(-0.2, 5.3)
    ax.axis("off")
    ax.set_title("Hopper: TMA fills shared memory, warpgroups multiply from it", fontsize=10)

    ax = right
    steps = 5
    rows = [("one kind of warp:\nload, wait, compute", 3.2),
            ("producer warp:\nTMA loads only", 1.7),
            ("consumer warpgroups:\nwgmma only", 0.6)]
    for label, y in rows:
        ax.text(-0.2, y + 0.3, label, ha="right", va="center", fontsize=8)
    for k in range(steps):  # without specialisation: each step waits for its load, then computes
        box(ax, k * 2.0, 3.2, 0.9, 0.6, f"load {k}", "#f7d9a8", 7)
        box(ax, k * 2.0 + 0.9, 3.2, 1.1, 0.6, f"mma {k}", "#f2d4d4", 7)
    for k in range(steps + 2):  # with it: loads run ahead by the number of stages
        box(ax, k * 0.9, 1.7, 0.9, 0.6, f"load {k}", "#f7d9a8", 7)
    for k in range(steps + 1):
        box(ax, 0.9 + k * 1.1, 0.6, 1.1, 0.6, f"mma {k}", "#f2d4d4", 7)
    ax.annotate("", xy=(10.0, 0.2), xytext=(0, 0.2), arrowprops={"arrowstyle": "->"})
    ax.text(5.0, 0.0, "time", ha="center", va="top", fontsize=8)
    ax.set_xlim(-3.2, 10.4)
    ax.set_ylim(-0.3, 4.3)
    ax.axis("off")
    ax.set_title("Warp specialisation: copies and products overlap", fontsize=10)
    fig.tight_layout()
    return fig
