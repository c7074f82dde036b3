"""Lesson 2's compiler view: how a blocked layout spreads a tile over warps and threads.

A GPU back end must decide, for every tile, which thread holds which element. A *blocked* layout
answers with four numbers per dimension: elements per thread (side by side), threads per warp,
warps per program, and the order of the dimensions (the fastest first). The view draws a tile
with each element coloured by the warp that holds it and labelled with the lane (thread of the
warp) and the register, for the shape, ``num_warps`` and vector width the learner picks. Where the
tile is smaller than the layout, several threads hold copies of an element: those are marked.
"""

from __future__ import annotations

import ipywidgets as widgets

from mini_compiler.backends import gpu

_WARP_COLOURS = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
    "#8cd17d",
    "#86bcb6",
    "#d4a6c8",
    "#fabfd2",
    "#499894",
    "#b6992d",
]
MAX_ELEMENTS = 2048  # beyond this the picture stops being readable


def layout_html(rows: int, cols: int, num_warps: int, vector: int) -> str:
    """The layout the compiler picks for a ``rows x cols`` tile, drawn as an HTML table."""
    layout = gpu.choose_blocked_layout((rows, cols), num_warps=num_warps, vector=vector)
    header = f"<div style='font:12px monospace'>{layout}</div>"
    if rows * cols > MAX_ELEMENTS:
        return header + f"<i>(too many elements to draw: at most {MAX_ELEMENTS})</i>"
    owners = gpu.thread_map(layout, (rows, cols))
    body = []
    for r in range(rows):
        cells = []
        for c in range(cols):
            warp = owners["warp"][r][c]
            lane = owners["lane"][r][c]
            register = owners["register"][r][c]
            copies = owners["copies"][r][c]
            mark = f"×{copies}" if copies > 1 else ""
            title = f"element [{r}, {c}]: warp {warp}, lane {lane}, register {register}"
            if copies > 1:
                title += f", held by {copies} threads"
            cells.append(
                f'<td title="{title}" style="background:{_WARP_COLOURS[warp % len(_WARP_COLOURS)]};'
                f'color:white;font:9px monospace;padding:1px 2px;text-align:center">'
                f"{lane}{mark}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = " ".join(
        f'<span style="background:{_WARP_COLOURS[w % len(_WARP_COLOURS)]};color:white;'
        f'padding:0 4px;font:11px monospace">warp {w}</span>'
        for w in range(num_warps)
    )
    return (
        header
        + f"<div style='margin:4px 0'>{legend} (numbers are lanes; ×k: held by k threads)</div>"
        + "<table style='border-collapse:collapse'>"
        + "".join(body)
        + "</table>"
    )


def layout_static(rows: int = 8, cols: int = 64, num_warps: int = 4, vector: int = 4) -> str:
    """The view at these values as HTML, then a tile smaller than its layout (copies marked)."""
    views = [(rows, cols, num_warps, vector), (1, 16, num_warps, 1)]
    return "".join(
        f"<p><b>rows = {r}, cols = {c}, num_warps = {w}, vector = {v}</b></p>"
        + layout_html(r, c, w, v)
        for r, c, w, v in dict.fromkeys(views)
    )


def layout_view(rows: int = 8, cols: int = 64, num_warps: int = 4, vector: int = 4) -> widgets.VBox:
    """Pick a tile shape, the number of warps and the vector width; see the layout."""
    rows_w = widgets.Dropdown(options=[1, 2, 4, 8, 16, 32], value=rows, description="rows")
    cols_w = widgets.Dropdown(options=[16, 32, 64, 128, 256], value=cols, description="cols")
    warps_w = widgets.Dropdown(options=[1, 2, 4, 8], value=num_warps, description="num_warps")
    vector_w = widgets.Dropdown(options=[1, 2, 4], value=vector, description="vector")
    picture = widgets.HTML(layout_html(rows, cols, num_warps, vector))

    def redraw(_change=None) -> None:
        picture.value = layout_html(rows_w.value, cols_w.value, warps_w.value, vector_w.value)

    for w in (rows_w, cols_w, warps_w, vector_w):
        w.observe(redraw, names="value")
    return widgets.VBox(
        [widgets.HBox([rows_w, cols_w]), widgets.HBox([warps_w, vector_w]), picture]
    )
