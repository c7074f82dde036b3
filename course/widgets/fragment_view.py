"""Lesson 3's compiler view: which lane of which warp holds which element of a ``tl.dot``.

``mma.sync.m16n8k16`` is issued by a whole warp, and each of its 32 lanes supplies a fixed part
of A and B and keeps a fixed part of the accumulator (the *fragment map*). mini_compiler's
``#mma`` layout repeats that 16x8 pattern over the warps and over the tile; its ``#dot_op``
layouts say what each lane must hold of A and B. The view draws the three tiles for the shape
and ``num_warps`` picked, each element coloured by its warp and labelled with its lane; the lane
picked is outlined everywhere it appears, so one can follow one thread through A, B and C.
The maps drawn are the very functions the GPU code is generated from
(``mini_compiler/passes/gpu/mma_layouts.py``).
"""

from __future__ import annotations

import ipywidgets as widgets

from mini_compiler.backends import gpu
from mini_compiler.passes.gpu.mma_layouts import DotOperandLayout, choose_mma_layout

from .layout_view import _WARP_COLOURS

MAX_ELEMENTS = 4096


def _table(title: str, layout, shape: tuple[int, int], lane: int) -> str:
    if shape[0] * shape[1] > MAX_ELEMENTS:
        return f"<p><b>{title}</b> <i>(too big to draw)</i></p>"
    owners = gpu.thread_map(layout, shape)  # per element: warp, lane, register, copies
    rows = []
    for r in range(shape[0]):
        cells = []
        for c in range(shape[1]):
            warp, this_lane = owners["warp"][r][c], owners["lane"][r][c]
            selected = " sel" if this_lane == lane else ""
            cells.append(f'<td class="w{warp % len(_WARP_COLOURS)}{selected}">{this_lane}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div style='display:inline-block;vertical-align:top;margin:0 8px'>"
            f"<p style='font:12px monospace'><b>{title}</b> {shape[0]}x{shape[1]}<br>{layout}</p>"
            "<table class='frag'>" + "".join(rows) + "</table></div>")


def _style() -> str:
    colours = "".join(f".frag td.w{i}{{background:{c}}}" for i, c in enumerate(_WARP_COLOURS))
    return ("<style>.frag{border-collapse:collapse}.frag td{color:white;font:8px monospace;"
            "padding:0 1px;text-align:center}.frag td.sel{outline:2px solid black}"
            + colours + "</style>")


def fragments_html(block_m: int = 32, block_n: int = 16, block_k: int = 16, num_warps: int = 2,
                   lane: int = 5) -> str:
    """A, B and the accumulator of a ``block_m x block_k`` by ``block_k x block_n`` dot."""
    layout = choose_mma_layout(block_m, block_n, num_warps)
    if layout is None:
        return (f"<p>A {block_m}x{block_n} accumulator cannot be split over {num_warps} warps "
                "in whole 16x16 pieces: the compiler refuses it (fewer warps or a bigger "
                "tile).</p>")
    legend = " ".join(
        f'<span style="background:{_WARP_COLOURS[w]};color:white;padding:0 4px;'
        f'font:11px monospace">warp {w}</span>' for w in range(num_warps))
    return (_style() + f"<div style='margin:4px 0'>{legend} numbers are lanes; lane {lane} "
            f"outlined (g = lane >> 2 = {lane >> 2}, t = lane & 3 = {lane & 3})</div>"
            + _table("A", DotOperandLayout(0, layout), (block_m, block_k), lane)
            + _table("B", DotOperandLayout(1, layout), (block_k, block_n), lane)
            + _table("C (accumulator)", layout, (block_m, block_n), lane))


def fragment_view(block_m: int = 32, block_n: int = 16, block_k: int = 16, num_warps: int = 2,
                  lane: int = 5) -> widgets.VBox:
    """Pick the tile and the warps; see which lane holds what."""
    m_w = widgets.Dropdown(options=[16, 32, 64], value=block_m, description="BLOCK_M")
    n_w = widgets.Dropdown(options=[16, 32, 64], value=block_n, description="BLOCK_N")
    k_w = widgets.Dropdown(options=[16, 32], value=block_k, description="BLOCK_K")
    warps_w = widgets.Dropdown(options=[1, 2, 4], value=num_warps, description="num_warps")
    lane_w = widgets.IntSlider(value=lane, min=0, max=31, description="lane")
    picture = widgets.HTML(fragments_html(block_m, block_n, block_k, num_warps, lane))

    def redraw(_change=None) -> None:
        picture.value = fragments_html(m_w.value, n_w.value, k_w.value, warps_w.value,
                                       lane_w.value)

    for w in (m_w, n_w, k_w, warps_w, lane_w):
        w.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox([m_w, n_w, k_w]), widgets.HBox([warps_w, lane_w]),
                         picture])


def fragment_static(block_m: int = 32, block_n: int = 16, block_k: int = 16, num_warps: int = 2,
                    lane: int = 5) -> str:
    """The view's picture at these values, for pages that cannot run Python (the book), and the
    same dot with another number of warps beside it: the warps split the accumulator between
    them, while each lane's 16x8 pattern stays the same."""
    pictures = fragments_html(block_m, block_n, block_k, num_warps, lane)
    for other in (num_warps // 2, num_warps * 2):
        if other >= 1 and other != num_warps and choose_mma_layout(block_m, block_n, other):
            return pictures + (f"<p><b>The same dot with num_warps = {other}</b></p>"
                               + fragments_html(block_m, block_n, block_k, other, lane))
    return pictures
