"""Each interactive view has a static twin that draws what the view shows, for the book.

The test builds every view as the lessons call it, collects the HTML its widgets display, and
requires the static rendering to contain all of it (plus the line that says it is interactive).
"""

import sys
from pathlib import Path

import ipywidgets as widgets
import nbformat
import pytest

import course.widgets.attention_tiles
import course.widgets.fragment_view
import course.widgets.grouped_order
import course.widgets.layout_view
import course.widgets.online_softmax
import course.widgets.program_map
from course.widgets.static import INTERACTIVE_NOTE, STATIC_VIEWS, static_view

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
from prepare.lessons import WIDGET_VIEW, view_call  # noqa: E402

VIEWS = {
    "program_map": course.widgets.program_map.program_map,
    "online_softmax_view": course.widgets.online_softmax.online_softmax_view,
    "layout_view": course.widgets.layout_view.layout_view,
    "grouped_order_view": course.widgets.grouped_order.grouped_order_view,
    "attention_tiles": course.widgets.attention_tiles.attention_tiles,
    "fragment_view": course.widgets.fragment_view.fragment_view,
}


def lesson_calls() -> list[tuple[str, list, dict]]:
    """Every view call in the lessons whose output is a widget, with its arguments."""
    calls = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            outputs = cell.get("outputs", [])
            if any(WIDGET_VIEW in output.get("data", {}) for output in outputs):
                calls.append(view_call(cell.source))
    return calls


def shown_html(widget) -> list[str]:
    """The values of every HTML widget inside ``widget``: what the reader sees drawn."""
    if isinstance(widget, widgets.HTML):
        return [widget.value]
    return [html for child in getattr(widget, "children", ()) for html in shown_html(child)]


def test_every_view_has_a_static_twin():
    assert set(STATIC_VIEWS) == set(VIEWS)


def test_the_lessons_use_only_views_the_book_can_draw():
    calls = lesson_calls()
    assert len(calls) >= 5
    assert {name for name, _, _ in calls} <= set(STATIC_VIEWS)


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [(name, [], {}) for name in sorted(VIEWS)] + lesson_calls(),
)
def test_the_static_view_draws_what_the_widget_shows(name, args, kwargs):
    pictures = shown_html(VIEWS[name](*args, **kwargs))
    assert pictures and all(pictures)
    html = static_view(name, *args, **kwargs)
    for picture in pictures:
        assert picture in html
    assert INTERACTIVE_NOTE in html and 'class="course-widget-static"' in html


def test_static_views_show_other_values_beside_the_default():
    assert "The same vector with BLOCK_SIZE = 32" in static_view("program_map")
    assert static_view("online_softmax_view").count("step = ") == 3
    assert "The three masks side by side" in static_view("attention_tiles")
    assert "The same dot with num_warps = 1" in static_view("fragment_view")
    assert "cannot be split" not in static_view("fragment_view")


def test_an_unknown_view_is_named_in_the_error():
    with pytest.raises(KeyError, match="no static rendering for the view 'mystery'"):
        static_view("mystery")
