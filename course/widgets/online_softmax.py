"""Lesson 2's view: the online softmax, one element at a time.

The online softmax (Milakov & Gimelshein 2018) reads a row once to find both the maximum ``m`` and
the normaliser ``d = sum exp(x_j - m)``. After each element it holds the maximum *so far* and the
sum against that maximum; when a new element raises the maximum, the old sum is rescaled by
``exp(m_old - m_new)``. The view steps through a short row and shows, per step, the running
maximum, the rescale factor, the running sum, and at the end the probabilities ``exp(x - m) / d``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import ipywidgets as widgets

EXAMPLE_ROW = (1.0, 3.0, 0.5, 2.0, 6.0, 4.0, -1.0, 5.5)


@dataclass(frozen=True)
class Step:
    """The state after folding in element ``index``."""

    index: int
    value: float
    m: float  # running maximum
    rescale: float  # factor applied to the previous sum: exp(m_old - m_new)
    d: float  # running sum of exp(x_j - m) over the elements so far


def online_steps(row) -> list[Step]:
    """The running state of the online softmax after each element of ``row``."""
    steps, m, d = [], -math.inf, 0.0
    for i, x in enumerate(row):
        m_new = max(m, x)
        rescale = math.exp(m - m_new) if m != -math.inf else 0.0
        d = d * rescale + math.exp(x - m_new)
        m = m_new
        steps.append(Step(i, float(x), m, rescale, d))
    return steps


def _bar(width: float, colour: str) -> str:
    style = f"display:inline-block;height:10px;width:{max(width, 0.0):.0f}px;background:{colour}"
    return f'<span style="{style}"></span>'


def online_softmax_html(row, step: int, interactive: bool = True) -> str:
    """An HTML table of the state after element ``step`` (0-based); probabilities at the end.

    ``interactive=False`` leaves out the invitation to move the slider (for a static page).
    """
    steps = online_steps(row)
    step = max(0, min(step, len(steps) - 1))
    done = step == len(steps) - 1
    final = steps[-1]
    cells = []
    for s in steps:
        seen = s.index <= step
        style = "background:#fff3cd;" if s.index == step else ("" if seen else "color:#bbb;")
        raised = seen and s.index > 0 and s.rescale < 1.0
        if seen:
            rescale = "—" if s.index == 0 else f"{s.rescale:.4f}"  # nothing to rescale yet
            state = f"<td>{s.m:g}{' ⬆' if raised else ''}</td><td>{rescale}</td><td>{s.d:.4f}</td>"
        else:
            state = "<td>·</td><td>·</td><td>·</td>"
        prob = math.exp(s.value - final.m) / final.d
        result = f"<td>{prob:.4f} {_bar(200 * prob, '#4e79a7')}</td>" if done else "<td>·</td>"
        cells.append(
            f'<tr style="{style}"><td>{s.index}</td><td>{s.value:g}</td>{state}{result}</tr>'
        )
    current = steps[step]
    note = (
        f"After element {step}: m = {current.m:g}, d = {current.d:.4f}. "
        + (
            "The maximum rose, so the sum so far was multiplied by "
            f"exp(m_old − m_new) = {current.rescale:.4f}. "
            if step > 0 and current.rescale < 1.0
            else ""
        )
        + (
            "Last element: the second pass writes exp(x − m) / d. The probabilities sum to "
            f"{sum(math.exp(s.value - final.m) / final.d for s in steps):.6f}."
            if done
            else ("Move the slider to fold in the next element." if interactive else "")
        )
    )
    head = (
        "<tr><th>j</th><th>x_j</th><th>running max m</th><th>rescale of old d</th>"
        "<th>running sum d</th><th>softmax (after the last step)</th></tr>"
    )
    return (
        f"<p>{html.escape(note)}</p>"
        '<table style="border-collapse:collapse;font:12px monospace" cellpadding="3">'
        f"{head}{''.join(cells)}</table>"
    )


def online_softmax_static(row=EXAMPLE_ROW, step: int | None = None) -> str:
    """The view at ``step`` (default: the last) as HTML, after the steps around the biggest jump.

    The steps just before and at the element that raises the maximum the most show the rescale
    at work; the last step shows the probabilities.
    """
    row = tuple(float(v) for v in row)
    if not row:
        raise ValueError("online_softmax_static needs a row with at least one element")
    last = len(row) - 1
    steps = online_steps(row)
    jump = max(range(1, len(row)), key=lambda i: steps[i].m - steps[i - 1].m, default=0)
    shown = sorted({max(jump - 1, 0), jump, last if step is None else step})
    return "".join(
        f"<p><b>step = {s}</b></p>{online_softmax_html(row, s, interactive=False)}" for s in shown
    )


def online_softmax_view(row=EXAMPLE_ROW, step: int | None = None) -> widgets.VBox:
    """A slider over the elements of ``row`` and the online softmax's state at that step."""
    row = tuple(float(v) for v in row)
    if not row:
        raise ValueError("online_softmax_view needs a row with at least one element")
    start = len(row) - 1 if step is None else step
    slider = widgets.IntSlider(value=start, min=0, max=len(row) - 1, description="step")
    table = widgets.HTML(online_softmax_html(row, slider.value))
    slider.observe(
        lambda change: setattr(table, "value", online_softmax_html(row, change["new"])),
        names="value",
    )
    return widgets.VBox([slider, table])
