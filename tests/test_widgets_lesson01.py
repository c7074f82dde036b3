"""Lesson 1's program map draws the launch the kernel really makes."""

import pytest

from course.widgets.program_map import MAX_LANES, program_map, program_map_html


def test_partial_last_block_is_masked():
    html = program_map_html(50, 16)
    assert "grid of <b>4</b> programs" in html
    assert "14 lanes of the last program masked off" in html
    assert html.count("(masked off)") == 14
    assert "pid 3: offsets 48…63" in html


def test_exact_multiple_has_no_masked_lane():
    html = program_map_html(64, 16)
    assert "0 lanes of the last program masked off" in html and "(masked off)" not in html


def test_large_launch_is_summarised_not_drawn():
    assert "too many lanes to draw" in program_map_html(MAX_LANES + 1, 64)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="must be positive"):
        program_map_html(0, 16)


def test_widget_redraws_when_a_slider_moves():
    view = program_map(50, 16)
    (n_slider, block), picture = view.children[0].children, view.children[1]
    n_slider.value = 33
    assert "grid of <b>3</b> programs" in picture.value
    block.value = 64
    assert "grid of <b>1</b> program;" in picture.value
