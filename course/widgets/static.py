"""Each interactive view drawn once, as plain HTML, for pages that cannot run Python.

A widget redraws through Python callbacks, so a static web page (the course's book) would show an
empty box. Every view therefore has a ``*_static`` twin that takes the same arguments and returns
the pictures the view shows at those values, and, where it teaches something, the same picture at
a few other values side by side. :func:`static_view` finds the twin by the view's name.
"""

from __future__ import annotations

from .attention_tiles import attention_tiles_static
from .fragment_view import fragment_static
from .grouped_order import grouped_order_static
from .layout_view import layout_static
from .online_softmax import online_softmax_static
from .program_map import program_map_static

STATIC_VIEWS = {
    "program_map": program_map_static,
    "online_softmax_view": online_softmax_static,
    "layout_view": layout_static,
    "grouped_order_view": grouped_order_static,
    "attention_tiles": attention_tiles_static,
    "fragment_view": fragment_static,
}

INTERACTIVE_NOTE = (
    "A static picture of an interactive view: open the notebook in JupyterLab to change the "
    "values yourself."
)


def static_view(name: str, *args, **kwargs) -> str:
    """HTML for the view ``name`` at these arguments, with a line saying it is interactive."""
    if name not in STATIC_VIEWS:
        raise KeyError(
            f"no static rendering for the view {name!r}: add a function to "
            f"course/widgets/static.py (known views: {', '.join(sorted(STATIC_VIEWS))})"
        )
    pictures = STATIC_VIEWS[name](*args, **kwargs)
    return (
        f'<div class="course-widget-static" data-view="{name}">'
        f'<p class="course-widget-note"><i>{INTERACTIVE_NOTE}</i></p>{pictures}</div>'
    )
