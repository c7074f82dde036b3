"""Lesson 1's view: which program of the grid handles which elements of a vector.

A Triton kernel is launched over a grid of programs; program ``pid`` owns the elements
``pid * BLOCK_SIZE ... pid * BLOCK_SIZE + BLOCK_SIZE - 1``. When the length is not a multiple of the
block, the last program's lanes past the end are *masked off*: they compute an offset but neither
load nor store. The view draws every element as a small square coloured by its program, with the
masked lanes hatched, for a size and block the learner picks.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]
MAX_LANES = 512  # beyond this the picture stops being readable


def program_map_html(n_elements: int, block_size: int) -> str:
    """An HTML picture of the launch: one square per lane, coloured by program id."""
    if n_elements < 1 or block_size < 1:
        raise ValueError("n_elements and block_size must be positive")
    programs = -(-n_elements // block_size)  # ceiling division, as triton.cdiv
    lanes = programs * block_size
    summary = (
        f"<b>{n_elements}</b> elements, BLOCK_SIZE <b>{block_size}</b> → grid of "
        f"<b>{programs}</b> program{'s' if programs != 1 else ''}; "
        f"{lanes - n_elements} lane{'s' if lanes - n_elements != 1 else ''} of the last program "
        "masked off."
    )
    if lanes > MAX_LANES:
        return summary + f"<br><i>(too many lanes to draw: choose at most {MAX_LANES})</i>"
    cells = []
    for pid in range(programs):
        colour = _COLOURS[pid % len(_COLOURS)]
        squares = []
        for lane in range(block_size):
            offset = pid * block_size + lane
            masked = offset >= n_elements
            style = (
                "background:repeating-linear-gradient(45deg,#ddd,#ddd 2px,#fff 2px,#fff 4px);"
                if masked
                else f"background:{colour};"
            )
            title = f"program {pid}, lane {lane}, offset {offset}" + (
                " (masked off)" if masked else ""
            )
            squares.append(
                f'<span title="{html.escape(title)}" style="display:inline-block;width:10px;'
                f'height:14px;margin:0 1px 1px 0;{style}"></span>'
            )
        cells.append(
            f'<div style="display:inline-block;margin:0 6px 6px 0;vertical-align:top">'
            f'<div style="font:11px monospace">pid {pid}: offsets {pid * block_size}…'
            f"{pid * block_size + block_size - 1}</div>{''.join(squares)}</div>"
        )
    return summary + "<div style='margin-top:6px'>" + "".join(cells) + "</div>"


def program_map_static(n_elements: int = 50, block_size: int = 16) -> str:
    """The view at these values as HTML, then the same vector cut into other block sizes."""
    others = [b for b in (8, 32) if b != block_size]
    panels = [f"<p><b>n_elements = {n_elements}, BLOCK_SIZE = {block_size}</b></p>"]
    panels.append(program_map_html(n_elements, block_size))
    for other in others:
        panels.append(f"<p><b>The same vector with BLOCK_SIZE = {other}</b></p>")
        panels.append(program_map_html(n_elements, other))
    return "".join(panels)


def program_map(n_elements: int = 50, block_size: int = 16) -> widgets.VBox:
    """Sliders for the vector length and the block size, and the picture they give."""
    n = widgets.IntSlider(value=n_elements, min=1, max=300, description="n_elements")
    block = widgets.Dropdown(options=[4, 8, 16, 32, 64], value=block_size, description="BLOCK_SIZE")
    picture = widgets.HTML(program_map_html(n.value, block.value))

    def redraw(_change=None) -> None:
        picture.value = program_map_html(n.value, block.value)

    n.observe(redraw, names="value")
    block.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox([n, block]), picture])
