"""What ``tl.dot`` becomes on a Hopper GPU: tensor cores, warpgroups (``wgmma``) and TMA.

Two things for lesson 3, both without a GPU:

* :func:`sm90_instructions` compiles a kernel for ``sm_90`` with Triton's own compiler (in a
  separate process, as :mod:`course.gpu_resources` does: a process that runs Triton's interpreter
  cannot also use its GPU compiler) and counts the matrix and copy instructions in the PTX, so the
  lesson can show which instructions its matmul really uses instead of asserting it;
* :func:`draw_hopper_matmul` draws one ``wgmma`` instruction, how the warpgroups of a program
  share a tile of ``C``, and a TMA copy.

The facts drawn are from NVIDIA's *PTX ISA* (sections "Asynchronous Warpgroup Level Matrix
Multiply-Accumulate Instructions" and "cp.async.bulk.tensor") and the *CUDA C++ Programming
Guide* (section "Asynchronous Data Copies using the Tensor Memory Accelerator").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

from .gpu_resources import _kernel_source

# Instruction families worth counting, from the PTX ISA: warpgroup MMA (Hopper), warp MMA
# (Ampere and later), shared-memory matrix loads, Ampere's async copies, Hopper's bulk tensor
# copies (TMA) and the mbarriers they signal.
_FAMILIES = re.compile(
    r"\b(wgmma\.[\w.]+|mma\.sync[\w.]*|ldmatrix[\w.]*|cp\.async\.bulk\.tensor[\w.:]*"
    r"|cp\.async\.(?:cg|ca)[\w.:]*|mbarrier\.[\w.:]+)"
)

_COMPILE = r"""
import importlib, json, os, sys
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

job = json.loads(sys.stdin.read())
import course.env
course.env._chosen = course.env.Environment("cuda", "sm_90", "compiling for sm_90 only")
module = importlib.import_module(job["module"])
attrs = {(i,): [["tt.divisibility", 16]] for i in job["divisible"]}
source = ASTSource(fn=getattr(module, job["name"]), signature=job["signature"],
                   constexprs=job["constexprs"], attrs=attrs)
compiled = triton.compile(source, target=GPUTarget("cuda", 90, 64),
                          options={"num_warps": job["num_warps"], "num_stages": job["num_stages"]})
print(json.dumps({"ptx": compiled.asm["ptx"], "shared": compiled.metadata.shared}))
"""


def sm90_instructions(kernel, signature: dict[str, str], constexprs: dict, *, num_warps: int,
                      num_stages: int = 3, divisible: tuple[str, ...] = ()) -> tuple[Counter, int]:
    """(instruction -> count in the PTX, shared memory bytes per program) of ``kernel`` compiled
    for ``sm_90`` by Triton. ``kernel`` must come from a ``course.`` module.

    ``divisible`` names the integer and pointer parameters to treat as multiples of 16, as
    Triton's launcher does on a GPU for aligned tensors and sizes (it is what lets Triton use
    vector loads and asynchronous copies).
    """
    name, _, module = _kernel_source(kernel)
    if module is None:
        raise ValueError(f"sm90_instructions: {name} must be defined in a course. module")
    params = list(signature)
    unknown = [p for p in divisible if p not in params]
    if unknown:
        raise ValueError(f"sm90_instructions: {unknown} are not parameters of {name}: {params}")
    job = {"name": name, "module": module, "signature": signature, "constexprs": constexprs,
           "num_warps": num_warps, "num_stages": num_stages,
           "divisible": [params.index(p) for p in divisible]}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", _COMPILE], input=json.dumps(job),
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"Triton could not compile {name} for sm_90:\n{result.stderr[-2000:]}")
    compiled = json.loads(result.stdout.strip().splitlines()[-1])
    return Counter(_FAMILIES.findall(compiled["ptx"])), int(compiled["shared"])


def draw_hopper_matmul():
    """Three panels: one ``wgmma.m64n256k16``; a 128 x 256 tile of C shared by two warpgroups;
    a TMA copy of a tile from global to shared memory."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    reg, smem, glob = "#cfe2f3", "#fde9c9", "#e6e6e6"

    def box(ax, x, y, w, h, color, text, size=8, **kw):
        ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", **kw))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)

    def arrow(ax, start, end, text="", color="black"):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                                     color=color, linewidth=1.2))  # fmt: skip
        if text:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 2, text, ha="center",
                    fontsize=7)  # fmt: skip

    # 1. one instruction: D(64 x N) += A(64 x 16) B(16 x N), issued by one warpgroup
    ax = axes[0]
    box(ax, -1, 10, 11, 40, reg, "A\n64\nx\n16", 7)
    ax.text(4.5, 6, "registers\nor shared", ha="center", va="top", fontsize=6.5)
    box(ax, 12, 54, 80, 8, smem, "B  16 x 256, shared memory", 7)
    for w in range(4):  # the accumulator's rows are split among the 4 warps, 16 rows each
        box(ax, 12, 40 - 10 * w, 80, 10, reg, f"warp {w}: rows {16 * w}-{16 * w + 15}", 7)
    ax.text(52, 2, "D  64 x 256 fp32 accumulator, in the registers\nof the warpgroup's 128 "
            "threads", ha="center", fontsize=7.5)  # fmt: skip
    ax.set_title("one wgmma.mma_async m64n256k16\n(a warpgroup = 4 warps = 128 threads)",
                 fontsize=9)  # fmt: skip

    # 2. a program with 8 warps: two warpgroups, 64 rows of the 128 x 256 tile each
    ax = axes[1]
    box(ax, 5, 34, 85, 24, reg, "warpgroup 0 (warps 0-3)\nrows 0-63", 8)
    box(ax, 5, 10, 85, 24, reg, "warpgroup 1 (warps 4-7)\nrows 64-127", 8)
    ax.text(47.5, 2, "each BLOCK_K = 64 step: 4 wgmma (k16) per warpgroup,\nB tile read by both "
            "from shared memory", ha="center", fontsize=7.5)  # fmt: skip
    ax.set_title("a 128 x 256 tile of C, num_warps = 8", fontsize=9)

    # 3. TMA: a box of a tensor in global memory copied to shared memory by the copy engine
    ax = axes[2]
    box(ax, 2, 24, 40, 38, glob, "", 8)
    ax.text(22, 57, "tensor in global memory", ha="center", fontsize=7)
    box(ax, 10, 34, 16, 14, smem, "box", 8, linestyle="--")
    box(ax, 62, 34, 30, 24, smem, "tile in\nshared memory", 8)
    arrow(ax, (27, 41), (61, 46))
    ax.text(44, 51, "cp.async.bulk\n.tensor", ha="center", fontsize=7)
    ax.text(47, -3, "tensor map (128 bytes): base address, sizes,\nstrides, box size, swizzle\n"
            "one thread issues the copy, the TMA unit moves it;\nan mbarrier in shared memory "
            "counts the bytes that arrived", ha="center", fontsize=7)  # fmt: skip
    ax.set_title("TMA: an asynchronous tile copy", fontsize=9)

    for ax in axes:
        ax.set_xlim(-2, 96)
        ax.set_ylim(-4, 66)
        ax.axis("off")
    fig.tight_layout()
    return fig
