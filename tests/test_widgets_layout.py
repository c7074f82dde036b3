"""The layout view draws what the compiler's layout rule assigns."""

from course.widgets.layout_view import MAX_ELEMENTS, layout_html, layout_view
from mini_compiler.backends import gpu


def test_every_element_is_drawn_with_its_lane():
    html = layout_html(4, 16, 2, 4)
    assert html.count("<td") == 4 * 16
    layout = gpu.choose_blocked_layout((4, 16), num_warps=2, vector=4)
    assert str(layout) in html
    owners = gpu.thread_map(layout, (4, 16))
    lane, warp = owners["lane"][3][15], owners["warp"][3][15]
    assert f'title="element [3, 15]: warp {warp}, lane {lane},' in html


def test_copies_are_marked_when_the_tile_is_smaller_than_the_layout():
    html = layout_html(1, 16, 4, 1)  # 128 threads, 16 elements
    assert "held by" in html and "×" in html


def test_big_tiles_are_summarised():
    assert "too many elements" in layout_html(32, 256, 4, 4)
    assert 32 * 256 > MAX_ELEMENTS


def test_widget_redraws():
    view = layout_view(8, 64, 4, 4)
    rows = view.children[0].children[0]
    picture = view.children[2]
    rows.value = 2
    assert picture.value.count("<tr>") == 2
