"""Layout changes without data movement (``passes/gpu/register_maps.py``), checked against the
fragment maps of ``mma.sync.m16n8k16`` as the PTX ISA states them."""

from __future__ import annotations

import pytest

from mini_compiler.passes.gpu.layouts import SliceLayout, element_coordinates, elements_per_thread
from mini_compiler.passes.gpu.mma_layouts import DotOperandLayout, MmaLayout
from mini_compiler.passes.gpu.register_maps import mma_reduction, register_map


def _ptx_a_fragment(lane: int) -> list[tuple[int, int]]:
    """PTX ISA, A of m16n8k16 (.f16/.bf16): a_i for i = 0..7 (two halves per register):
    row = g for a0, a1, a4, a5 and g + 8 for the others; col = 2t + (i & 1) for i < 4, and
    2t + (i & 1) + 8 for i >= 4."""
    g, t = lane >> 2, lane & 3
    return [(g + 8 * ((i >> 1) & 1), 2 * t + (i & 1) + 8 * (i >= 4)) for i in range(8)]


def _ptx_c_fragment(lane: int) -> list[tuple[int, int]]:
    """PTX ISA, C/D of m16n8k16 (.f32): c_i at row g (+8 for i >= 2), col 2t + (i & 1)."""
    g, t = lane >> 2, lane & 3
    return [(g + 8 * (i >= 2), 2 * t + (i & 1)) for i in range(4)]


def test_fragment_orders_are_the_ptx_ones():
    one_warp = MmaLayout((1, 1))
    for lane in range(32):
        assert element_coordinates(one_warp, (16, 8), lane, 0) == _ptx_c_fragment(lane)
        assert (element_coordinates(DotOperandLayout(0, one_warp), (16, 16), lane, 0)
                == _ptx_a_fragment(lane))


@pytest.mark.parametrize("warps", [1, 4, 8])
@pytest.mark.parametrize("n", [16, 64, 128])
def test_two_accumulator_tiles_are_one_a_fragment(warps, n):
    """The accumulator of columns 16k..16k+15 (two n8 tiles) is, element for element and in
    the same thread, the A operand of k-step k: P needs no shared memory."""
    acc = MmaLayout((warps, 1))
    shape = (16 * warps * 2, n)
    order = register_map(acc, shape, DotOperandLayout(0, acc), shape)
    assert order is not None
    assert sorted(order) == list(range(len(order)))  # a permutation: nothing copied, nothing lost
    # ... and the map is right in every thread (not just the one it was derived from)
    for warp in range(warps):
        for lane in (0, 5, 31):
            held = element_coordinates(acc, shape, lane, warp)
            wanted = element_coordinates(DotOperandLayout(0, acc), shape, lane, warp)
            assert [held[i] for i in order] == wanted


def test_warps_across_columns_need_shared_memory():
    acc = MmaLayout((2, 2))
    assert register_map(acc, (64, 64), DotOperandLayout(0, acc), (64, 64)) is None
    assert mma_reduction(acc, (64, 64), 1) is None


def test_row_statistics_live_in_the_quad():
    acc = MmaLayout((4, 1))
    rows = SliceLayout(1, acc)
    assert elements_per_thread(rows, (128,)) == (4,)  # rows g, g+8 of two repetitions
    for lane in range(32):
        assert element_coordinates(rows, (128,), lane, 1) == [
            (16 + (lane >> 2),), (24 + (lane >> 2),), (80 + (lane >> 2),), (88 + (lane >> 2),)]
    groups, offsets = mma_reduction(acc, (128, 64), 1)
    assert offsets == (1, 2) and len(groups) == 4 and all(len(g) == 16 for g in groups)
    # m[:, None] broadcast back over the tile is a renumbering too
    assert register_map(rows, (128,), acc, (128, 1), expand_axis=1) is not None
    assert register_map(acc, (128, 1), acc, (128, 64)) is not None
