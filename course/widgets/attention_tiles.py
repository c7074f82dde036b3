"""Lesson 4's views: the key/value tiles each query tile visits, and the running softmax statistics.

FlashAttention gives each program one tile of ``BLOCK_M`` queries and streams the key/value tiles
of ``BLOCK_N`` keys past it. Without a mask every program visits every key tile. With a causal mask
a query tile skips the key tiles entirely above the diagonal, visits the ones entirely below it
without any mask, and applies the mask only on the tiles the diagonal crosses. A sequence length
that is not a multiple of the tile adds masked tiles at the edges, too.

:func:`tile_kinds` classifies every (query tile, key tile) pair by brute force from the element
mask, so the picture is an independent check of the kernel's loop bounds. :func:`running_stats`
replays the online softmax for one row, tile by tile: the running maximum, the factor by which the
old sum and accumulator shrink when the maximum grows, and the running sum.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

SKIPPED, FULL, MASKED = 0, 1, 2
_STYLE = {
    SKIPPED: ("#f2f2f2", "skipped: no key in the tile is visible to any query in it"),
    FULL: ("#4e79a7", "visited without a mask"),
    MASKED: ("#f28e2b", "visited with a mask (diagonal, window edge or sequence end)"),
}
MAX_TILES = 40  # per side; beyond this the grid stops being readable


def visible(n: int, causal: bool, window: int | None = None) -> np.ndarray:
    """The (n, n) boolean matrix of which key each query may attend to."""
    rows = np.arange(n)[:, None]
    cols = np.arange(n)[None, :]
    keep = np.ones((n, n), dtype=bool)
    if causal or window is not None:
        keep &= cols <= rows
    if window is not None:
        keep &= cols > rows - window
    return keep


def tile_kinds(
    n: int, block_m: int, block_n: int, causal: bool, window: int | None = None
) -> np.ndarray:
    """(query tiles, key tiles) array of SKIPPED / FULL / MASKED, from the element mask.

    Only real queries count (rows past the end are padding: the kernel loads them as zeros and
    never stores them). A pair is FULL when every key of the tile is inside the sequence and
    visible to every real query of the tile: the score tile needs no mask. It is MASKED when some
    score must be hidden (the key is invisible, or past the end), and SKIPPED when no real query
    sees any key of the tile: the kernel's loop never visits it.
    """
    if n < 1 or block_m < 1 or block_n < 1:
        raise ValueError("n, block_m and block_n must be positive")
    keep = visible(n, causal, window)
    tiles_m, tiles_n = -(-n // block_m), -(-n // block_n)
    kinds = np.empty((tiles_m, tiles_n), dtype=np.int8)
    for i in range(tiles_m):
        for j in range(tiles_n):
            rows = slice(i * block_m, min((i + 1) * block_m, n))
            cols = slice(j * block_n, min((j + 1) * block_n, n))
            block = keep[rows, cols]
            whole = (j + 1) * block_n <= n  # no key past the end
            if not block.any():
                kinds[i, j] = SKIPPED
            elif block.all() and whole:
                kinds[i, j] = FULL
            else:
                kinds[i, j] = MASKED
    return kinds


def tile_grid_html(
    n: int, block_m: int, block_n: int, causal: bool, window: int | None = None
) -> str:
    """An HTML picture of :func:`tile_kinds`: one cell per (query tile, key tile) pair."""
    kinds = tile_kinds(n, block_m, block_n, causal, window)
    tiles_m, tiles_n = kinds.shape
    counts = {k: int((kinds == k).sum()) for k in _STYLE}
    total = kinds.size
    mode = "causal" if causal else "no mask"
    if window is not None:
        mode = f"sliding window of {window}"
    summary = (
        f"N=<b>{n}</b>, BLOCK_M=<b>{block_m}</b>, BLOCK_N=<b>{block_n}</b>, {mode}: "
        f"<b>{tiles_m}</b> query tiles x <b>{tiles_n}</b> key tiles = {total} pairs; "
        f"{counts[FULL]} unmasked, {counts[MASKED]} masked, {counts[SKIPPED]} skipped "
        f"({100 * counts[SKIPPED] / total:.0f}% of the work never done)."
    )
    legend = " ".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
        f'border:1px solid #999;vertical-align:middle"></span> {html.escape(t)}&nbsp;&nbsp;'
        for c, t in _STYLE.values()
    )
    if max(tiles_m, tiles_n) > MAX_TILES:
        return f"{summary}<br><i>(too many tiles to draw: at most {MAX_TILES} per side)</i>"
    size = max(8, min(22, 440 // max(tiles_m, tiles_n)))
    rows = []
    for i in range(tiles_m):
        cells = []
        for j in range(tiles_n):
            colour, meaning = _STYLE[int(kinds[i, j])]
            title = (
                f"query tile {i} (rows {i * block_m}…{min((i + 1) * block_m, n) - 1}), "
                f"key tile {j} (keys {j * block_n}…{min((j + 1) * block_n, n) - 1}): {meaning}"
            )
            cells.append(
                f'<td title="{html.escape(title)}" style="width:{size}px;height:{size}px;'
                f'padding:0;background:{colour};border:1px solid #fff"></td>'
            )
        rows.append(
            f'<tr><td style="font:10px monospace;padding-right:4px;border:none">q{i}</td>'
            + "".join(cells)
            + "</tr>"
        )
    table = '<table style="border-collapse:collapse;margin-top:6px">' + "".join(rows) + "</table>"
    caption = (
        "<div style='font:11px sans-serif'>rows: query tiles (one program each); "
        "columns: key/value tiles, streamed left to right</div>"
    )
    return f"{summary}<br>{legend}{table}{caption}"


@dataclass(frozen=True)
class Step:
    """The online-softmax state after one key tile (base-e, as in the lesson's prose)."""

    tile: int
    tile_max: float
    running_max: float
    rescale: float  # exp(old max - new max): how much the old sum and accumulator shrink
    running_sum: float


def running_stats(scores: np.ndarray, block_n: int) -> list[Step]:
    """Replay the online softmax of one row of scores, ``block_n`` keys at a time."""
    m, total = -math.inf, 0.0
    steps = []
    for t, start in enumerate(range(0, len(scores), block_n)):
        tile = np.asarray(scores[start : start + block_n], dtype=np.float64)
        tile_max = float(tile.max())
        new_m = max(m, tile_max)
        rescale = math.exp(m - new_m) if m != -math.inf else 0.0
        total = total * rescale + float(np.exp(tile - new_m).sum())
        m = new_m
        steps.append(Step(t, tile_max, m, rescale, total))
    return steps


def running_stats_html(scores: np.ndarray, block_n: int, first_key: int = 0) -> str:
    """A table of :func:`running_stats`, with the final check against the direct computation.

    ``scores`` are one row's visible scores, which start at key ``first_key``.
    """
    steps = running_stats(scores, block_n)
    direct = float(np.exp(scores - scores.max()).sum())
    rows = []
    for s in steps:
        grew = s.rescale < 1.0 and s.tile > 0
        note = f"max grew: old sum x {s.rescale:.3g}" if grew else ""
        if s.tile == 0:
            note = "first tile: nothing to rescale"
        bar = int(200 * s.running_sum / max(st.running_sum for st in steps))
        rows.append(
            f"<tr><td>{s.tile}</td><td>{first_key + s.tile * block_n}…"
            f"{first_key + min(len(scores), (s.tile + 1) * block_n) - 1}</td>"
            f"<td>{s.tile_max:.3f}</td><td><b>{s.running_max:.3f}</b></td>"
            f"<td>{s.rescale:.3g}</td><td><b>{s.running_sum:.4g}</b></td>"
            f'<td><span style="display:inline-block;height:10px;width:{bar}px;'
            f'background:#59a14f"></span> {note}</td></tr>'
        )
    head = (
        "<tr><th>key tile</th><th>keys</th><th>tile max</th><th>running max m</th>"
        "<th>rescale exp(m_old - m)</th><th>running sum l</th><th></th></tr>"
    )
    final = steps[-1]
    return (
        '<table style="font:12px monospace;border-collapse:collapse" cellpadding="3">'
        + head
        + "".join(rows)
        + "</table>"
        + f"<div>After the last tile: m = {final.running_max:.4f} (direct max "
        f"{float(scores.max()):.4f}), l = {final.running_sum:.6g} (direct sum of "
        f"exp(s - max) {direct:.6g}).</div>"
    )


_MASKS = {"none": "no mask", "causal": "causal", "window": "sliding window 100"}
_WINDOW = 100


def example_scores(seed: int = 0, length: int = 1024) -> np.ndarray:
    """Scores that drift upwards, so the running maximum grows several times along a row."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=length) * 1.5 + np.linspace(0, 4, length)


def attention_tiles_html(
    n: int, block_m: int, block_n: int, mask: str, row: int, scores: np.ndarray
) -> tuple[str, str]:
    """The view's two pictures: the tile grid, and one row's running statistics.

    ``mask`` is ``"none"``, ``"causal"`` or ``"window"`` (a sliding window of 100 keys);
    ``scores`` holds at least ``n`` scores, of which the row sees the visible ones.
    """
    if mask not in _MASKS:
        raise ValueError(f"mask must be one of {sorted(_MASKS)}, not {mask!r}")
    if not 0 <= row < n:
        raise ValueError(f"row must be between 0 and n - 1 = {n - 1}, not {row}")
    window = _WINDOW if mask == "window" else None
    block_m_value = max(block_m, block_n)  # the kernel needs BLOCK_M to be a multiple
    grid = tile_grid_html(n, block_m_value, block_n, mask == "causal", window)
    if block_m_value != block_m:
        note = f"<i>(BLOCK_M raised to {block_m_value}: it must be a multiple of BLOCK_N)</i>"
        grid = note + "<br>" + grid
    keep = visible(n, mask != "none", window)[row]
    first = int(np.argmax(keep))  # the visible keys of a row are contiguous
    stats = (
        f"<b>Row {row}</b> sees {int(keep.sum())} keys; its running statistics as "
        f"BLOCK_N={block_n} keys arrive at a time:<br>"
        + running_stats_html(scores[:n][keep], block_n, first)
    )
    return grid, stats


def attention_tiles_static(
    n: int = 300, block_m: int = 64, block_n: int = 32, causal: bool = True, seed: int = 0
) -> str:
    """The view at these values as HTML, then the tile grids of the three masks side by side."""
    mask = "causal" if causal else "none"
    grid, stats = attention_tiles_html(
        n, block_m, block_n, mask, min(n - 1, 200), example_scores(seed)
    )
    settings = f"N = {n}, BLOCK_M = {block_m}, BLOCK_N = {block_n}, mask: {_MASKS[mask]}"
    panels = []
    for kind, label in _MASKS.items():
        window = _WINDOW if kind == "window" else None
        picture = tile_grid_html(n, max(block_m, block_n), block_n, kind == "causal", window)
        panels.append(
            '<div style="display:inline-block;vertical-align:top;width:31%;margin-right:2%;'
            f'font-size:11px"><b>{label}</b><br>{picture}</div>'
        )
    return (
        f"<p><b>{settings}</b></p>{grid}<br>{stats}"
        "<p><b>The three masks side by side</b> (same N and tiles):</p>"
        f"<div>{''.join(panels)}</div>"
    )


def attention_tiles(
    n: int = 300, block_m: int = 64, block_n: int = 32, causal: bool = True, seed: int = 0
) -> widgets.VBox:
    """Sliders for N, the tiles and the mask, the tile grid they give, and one row's statistics."""
    n_slider = widgets.IntSlider(value=n, min=16, max=1024, step=1, description="N")
    bm = widgets.Dropdown(options=[16, 32, 64, 128], value=block_m, description="BLOCK_M")
    bn = widgets.Dropdown(options=[16, 32, 64, 128], value=block_n, description="BLOCK_N")
    mask = widgets.Dropdown(
        options=[(label, key) for key, label in _MASKS.items()],
        value="causal" if causal else "none",
        description="mask",
    )
    row = widgets.IntSlider(value=min(n - 1, 200), min=0, max=n - 1, description="row")
    grid = widgets.HTML()
    stats = widgets.HTML()
    scores = example_scores(seed)

    def redraw(_change=None) -> None:
        row.max = n_slider.value - 1
        grid.value, stats.value = attention_tiles_html(
            n_slider.value, bm.value, bn.value, mask.value, row.value, scores
        )

    for control in (n_slider, bm, bn, mask, row):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([n_slider, bm, bn, mask]), grid, row, stats])
