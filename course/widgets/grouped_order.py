"""Lesson 3's view: the order in which programs cover C's tiles, row-major against grouped.

Program ``pid`` of the matmul computes one tile of ``C``; for that it reads a whole *row of tiles*
of ``A`` (its ``pid_m``) and a whole *column of tiles* of ``B`` (its ``pid_n``). The programs that
run at the same time (about one per SM) share whatever they read through the L2 cache. In row-major
order the first programs sweep along one row of C and together need one row of A but many columns
of B; in grouped order they cover a ``GROUP_SIZE``-tall block of C and need a few rows of A and
a few columns of B: fewer distinct tiles, so more L2 hits. The view draws C with each tile's launch
order, highlights the first programs, and marks the rows of A and columns of B they touch.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..kernels.matmul import grouped_order

_FIRST = "#f28e2b"  # tiles computed by the first programs, and the A/B tiles they read
_IDLE = "#e8e8e8"


def row_major_order(pid: int, num_pid_m: int, num_pid_n: int) -> tuple[int, int]:
    """The naive order: program ``pid`` takes tile ``(pid // num_pid_n, pid % num_pid_n)``."""
    return pid // num_pid_n, pid % num_pid_n


def launch_map(
    num_pid_m: int, num_pid_n: int, group_size: int | None
) -> dict[tuple[int, int], int]:
    """Tile ``(pid_m, pid_n)`` -> the program computing it (``group_size=None``: row-major)."""
    order = {}
    for pid in range(num_pid_m * num_pid_n):
        if group_size is None:
            tile = row_major_order(pid, num_pid_m, num_pid_n)
        else:
            tile = grouped_order(pid, num_pid_m, num_pid_n, group_size)
        order[tile] = pid
    return order


def touched(order: dict[tuple[int, int], int], first: int) -> tuple[set[int], set[int]]:
    """The rows of A (pid_m) and columns of B (pid_n) read by programs ``0 .. first-1``."""
    tiles = [tile for tile, pid in order.items() if pid < first]
    return {m for m, _ in tiles}, {n for _, n in tiles}


def _square(text: str, on: bool, size: int = 26) -> str:
    colour = _FIRST if on else _IDLE
    return (
        f'<span style="display:inline-block;width:{size}px;height:{size}px;margin:1px;'
        f"text-align:center;font:10px monospace;line-height:{size}px;"  # after font: it resets it
        f'background:{colour}">{text}</span>'
    )


def _panel(title: str, num_pid_m: int, num_pid_n: int, group_size: int | None, first: int) -> str:
    order = launch_map(num_pid_m, num_pid_n, group_size)
    rows_a, cols_b = touched(order, first)
    b_row = "".join(_square(f"B{n}", n in cols_b) for n in range(num_pid_n))
    lines = [f'<div style="margin-left:32px">{b_row}</div>']
    for m in range(num_pid_m):
        c_row = "".join(
            _square(str(order[(m, n)]), order[(m, n)] < first) for n in range(num_pid_n)
        )
        lines.append(
            f"<div>{_square(f'A{m}', m in rows_a)}"
            f"<span style='margin-left:4px'></span>{c_row}</div>"
        )
    summary = (
        f"programs 0–{first - 1} read <b>{len(rows_a)}</b> rows of A and "
        f"<b>{len(cols_b)}</b> columns "
        f"of B: {len(rows_a) + len(cols_b)} tile-rows/columns in all"
    )
    return (
        f'<div style="display:inline-block;vertical-align:top;margin-right:24px">'
        f"<div><b>{title}</b></div>{''.join(lines)}"
        f"<div style='font-size:12px;max-width:420px'>{summary}</div></div>"
    )


def grouped_order_html(num_pid_m: int, num_pid_n: int, group_size: int, first: int) -> str:
    """Row-major and grouped launch orders side by side; numbers are program ids."""
    if min(num_pid_m, num_pid_n, group_size, first) < 1:
        raise ValueError("tile counts, GROUP_SIZE and the number of programs must be positive")
    first = min(first, num_pid_m * num_pid_n)
    return _panel("row-major order", num_pid_m, num_pid_n, None, first) + _panel(
        f"grouped order, GROUP_SIZE = {group_size}", num_pid_m, num_pid_n, group_size, first
    )


def grouped_order_static(
    num_pid_m: int = 8, num_pid_n: int = 8, group_size: int = 4, first: int = 8
) -> str:
    """The view at these values as HTML, then the same grid with more programs running first."""
    views = [first, min(4 * first, num_pid_m * num_pid_n)]
    return "".join(
        f"<p><b>{num_pid_m} x {num_pid_n} tiles of C, GROUP_SIZE = {group_size}, "
        f"first {k} programs</b></p>{grouped_order_html(num_pid_m, num_pid_n, group_size, k)}"
        for k in dict.fromkeys(views)
    )


def grouped_order_view(
    num_pid_m: int = 8, num_pid_n: int = 8, group_size: int = 4, first: int = 8
) -> widgets.VBox:
    """Sliders for the grid of C's tiles, GROUP_SIZE and how many programs run first."""
    m = widgets.IntSlider(value=num_pid_m, min=1, max=16, description="tiles in M")
    n = widgets.IntSlider(value=num_pid_n, min=1, max=16, description="tiles in N")
    group = widgets.IntSlider(value=group_size, min=1, max=16, description="GROUP_SIZE")
    k = widgets.IntSlider(value=first, min=1, max=64, description="first programs")
    picture = widgets.HTML(grouped_order_html(m.value, n.value, group.value, k.value))

    def redraw(_change=None) -> None:
        picture.value = grouped_order_html(m.value, n.value, group.value, k.value)

    for slider in (m, n, group, k):
        slider.observe(redraw, names="value")
    return widgets.VBox([widgets.HBox([m, n]), widgets.HBox([group, k]), picture])
