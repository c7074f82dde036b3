"""Layouts: every element has an owner, replication only where the tile is smaller than the
layout tile, slices replicate along the removed dimension, and the printed forms are stable."""

from __future__ import annotations

from math import prod

import pytest

from mini_compiler.passes.gpu.layouts import (
    BlockedLayout,
    SliceLayout,
    choose_blocked_layout,
    distinct_lanes,
    distinct_warps,
    elements_per_thread,
    owners,
    render_layout,
    thread_map,
)

SHAPES = [(1024,), (128,), (64,), (16384,), (8, 128), (32, 16), (16, 64), (64, 1), (1, 256)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("num_warps", [1, 4, 8])
@pytest.mark.parametrize("vector", [1, 4])
def test_every_element_is_held_and_copies_only_when_the_tile_is_small(shape, num_warps, vector):
    layout = choose_blocked_layout(shape, num_warps, vector)
    table = owners(layout, shape)
    assert set(table) == {tuple(i) for i in _all_indices(shape)}
    threads = num_warps * 32
    held = sum(len(v) for v in table.values())
    assert held == threads * prod(elements_per_thread(layout, shape))
    if prod(shape) >= threads * vector and all(
            s >= layout.layout_tile(d) for d, s in enumerate(shape)):
        assert all(len(v) == 1 for v in table.values()), "no copies in a big enough tile"


def _all_indices(shape):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _all_indices(shape[1:]):
            yield (i,) + rest


def test_vector_add_layout_is_four_consecutive_floats_per_thread():
    layout = choose_blocked_layout((1024,), num_warps=4, vector=4)
    assert layout == BlockedLayout((4,), (32,), (4,), (0,))
    assert str(layout) == "#blocked<spt=[4], tpw=[32], wpb=[4], order=[0]>"
    table = owners(layout, (1024,))
    assert [table[(i,)][0][:2] for i in (0, 3, 4, 127, 128, 512)] == [
        (0, 0), (0, 0), (0, 1), (0, 31), (1, 0), (0, 0)]  # 512: second repetition of thread 0


def test_2d_layout_puts_lanes_along_rows_first():
    layout = choose_blocked_layout((32, 16), num_warps=4, vector=4)
    assert layout == BlockedLayout((1, 4), (8, 4), (4, 1), (1, 0))
    assert distinct_lanes(layout, (32, 16), 1) == 4
    assert distinct_lanes(layout, (32, 16), 0) == 8
    assert distinct_warps(layout, (32, 16), 0) == 4
    assert distinct_warps(layout, (32, 16), 1) == 1


def test_slice_layout_replicates_along_the_removed_dimension():
    parent = choose_blocked_layout((8, 128), num_warps=4, vector=4)
    rows = SliceLayout(1, parent)
    assert str(rows).startswith("#slice<dim=1, parent=#blocked<")
    table = owners(rows, (8,))
    assert set(table) == {(i,) for i in range(8)}
    assert all(len(v) > 1 for v in table.values())  # every lane of a row holds the row's value


def test_render_and_thread_map():
    layout = BlockedLayout((1, 2), (4, 8), (1, 1), (1, 0))
    text = render_layout(layout, (4, 16))
    first_row = text.splitlines()[0].split()
    assert first_row[:4] == ["w0:t0", "w0:t0", "w0:t1", "w0:t1"]
    view = thread_map(layout, (4, 16))
    assert view["lane"][1][0] == 8 and view["register"][0][1] == 1
    assert all(c == 1 for row in view["copies"] for c in row)


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="multiply to 32"):
        BlockedLayout((1,), (16,), (4,), (0,))
    with pytest.raises(ValueError, match="permutation"):
        BlockedLayout((1, 1), (4, 8), (1, 1), (0, 0))
