"""Draw the compiler's pipeline as an SVG: ``python -m course.figures.pipeline``.

Boxes are the stages (with the folder of ``mini_compiler`` that makes each), arrows the order,
and the labels on the arrows the ``MINI_COMPILER_DEBUG`` switch that prints what flows there.
Plain SVG written by hand, so the file is small, sharp at any size and the same on every run.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 980, 390
COLOURS = {"source": "#e8eef7", "ir": "#fdf1d6", "cpu": "#e3f2e1", "gpu": "#f6e3e3",
           "oracle": "#eeeeee"}


def box(x, y, w, h, title, lines, kind) -> str:
    parts = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{COLOURS[kind]}" '
             'stroke="#555" stroke-width="1.2"/>',
             f'<text x="{x + w / 2}" y="{y + 20}" text-anchor="middle" font-weight="bold">'
             f'{escape(title)}</text>']
    for i, line in enumerate(lines):
        style = ' font-family="monospace" font-size="11"' if line.startswith("mini_compiler/") \
            else ""
        parts.append(f'<text x="{x + w / 2}" y="{y + 38 + 15 * i}" text-anchor="middle"{style}>'
                     f'{escape(line)}</text>')
    return "\n".join(parts)


def arrow(x1, y1, x2, y2, label="", at=(0, 0)) -> str:
    line = (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" stroke-width="1.5" '
            'marker-end="url(#head)"/>')
    if not label:
        return line
    return line + (f'\n<text x="{at[0]}" y="{at[1]}" font-size="11" fill="#8a2be2" '
                   f'font-family="monospace">{escape(label)}</text>')


def pipeline_svg() -> str:
    items = [
        box(10, 40, 150, 96, "Python source", ["@triton.jit or", "@mini_compiler.jit", "kernel"],
            "source"),
        box(200, 40, 170, 96, "specialise + front end",
            ["dtypes, ÷16, constexprs", "ast → SSA values", "mini_compiler/runtime/",
             "mini_compiler/frontend/"], "source"),
        box(410, 40, 190, 96, "Tile IR passes",
            ["infer_shapes → constant_fold", "→ cse → dce", "mini_compiler/passes/"], "ir"),
        box(700, 10, 270, 80, "CPU back end",
            ["LLVM IR → -O3 → x86, JIT (llvmlite)", "mini_compiler/backends/cpu/"], "cpu"),
        box(700, 115, 270, 128, "GPU back end",
            ["axis info → coalesce → layouts →", "shared memory → barriers (tile.gpu)",
             "LLVM IR + NVVM → PTX (NVPTX, sm_90)", "mini_compiler/passes/gpu/",
             "mini_compiler/backends/gpu/"],
            "gpu"),
        box(700, 282, 270, 60, "CUDA driver", ["loads the PTX, compiles it for the GPU"], "gpu"),
        box(300, 200, 260, 76, "reference interpreter",
            ["runs the IR between any two passes", "mini_compiler/interpreter.py"], "oracle"),
        arrow(160, 88, 200, 88),
        arrow(370, 88, 410, 88, "ir", at=(382, 80)),
        arrow(600, 70, 700, 50, "llvm, asm", at=(612, 48)),
        arrow(600, 110, 700, 160, "ir, llvm, ptx", at=(606, 180)),
        arrow(835, 243, 835, 282),
        arrow(505, 136, 470, 200),
    ]
    legend = ('<text x="10" y="376" font-size="12">Arrow labels: what '
              '<tspan font-family="monospace">MINI_COMPILER_DEBUG=ir,llvm,asm,ptx</tspan> '
              'prints at that point. Every stage is also in '
              '<tspan font-family="monospace">kernel.stages(...)</tspan>.</text>')
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" '
        'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        *items, legend, "</svg>", ""])


def main() -> Path:
    target = Path(__file__).resolve().parent / "compiler_pipeline.svg"
    target.write_text(pipeline_svg())
    return target


if __name__ == "__main__":
    print(main())
