"""The tensor-core data path, simulated in Python: the same functions the lowering emits as
LLVM IR (``mma_layouts``: where ``ldmatrix`` points each lane, the swizzled shared layout, the
accumulator map) composed with what ``ldmatrix`` and ``mma.sync.m16n8k16`` do (PTX ISA) must
compute ``A @ B``. A wrong lane, register or swizzle in any of them breaks the product."""

from __future__ import annotations

import numpy as np
import pytest

from mini_compiler.passes.gpu.layouts import element_coordinates, owners
from mini_compiler.passes.gpu.mma_layouts import (
    CHUNK_BYTES,
    LINE_BYTES,
    DotOperandLayout,
    MmaLayout,
    SharedLayout,
    choose_mma_layout,
    ldmatrix_rows,
    no_swizzle,
    swizzle,
)


def _ldmatrix(smem, row_address, count, trans):
    """PTX ``ldmatrix.m8n8.x{count}``: lane 8i+r gives the address of row r of matrix i; lane
    L receives, per matrix, elements (L>>2, 2(L&3)) and (L>>2, 2(L&3)+1), or with .trans
    (2(L&3), L>>2) and (2(L&3)+1, L>>2)."""
    out = np.zeros((32, count, 2))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for i in range(count):
            for h in range(2):
                if trans:
                    out[lane, i, h] = smem[row_address[8 * i + 2 * t + h] + g]
                else:
                    out[lane, i, h] = smem[row_address[8 * i + g] + 2 * t + h]
    return out


def _mma(a_regs, b_regs, c_regs):
    """PTX ``mma.m16n8k16`` with its fragment maps (see ``mma_layouts``)."""
    a, b, c = np.zeros((16, 16)), np.zeros((16, 8)), np.zeros((16, 8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for r in range(4):
            for h in range(2):
                a[g + 8 * (r & 1), 2 * t + h + 8 * (r >> 1)] = a_regs[lane][r][h]
        for r in range(2):
            for h in range(2):
                b[2 * t + h + 8 * r, g] = b_regs[lane][r][h]
        for j in range(4):
            c[g + 8 * (j >> 1), 2 * t + (j & 1)] = c_regs[lane][j]
    d = a @ b + c
    return [[d[(lane >> 2) + 8 * (j >> 1), 2 * (lane & 3) + (j & 1)] for j in range(4)]
            for lane in range(32)]


def _stage(tile, shared):
    smem = np.full(tile.size, np.nan)
    for coordinate in np.ndindex(*tile.shape):
        smem[shared.element_offset(tile.shape, coordinate)] = tile[coordinate]
    assert not np.isnan(smem).any(), "the shared layout left holes: not a permutation"
    return smem


def simulate_dot(a, b, layout: MmaLayout, a_order, b_order, rule=swizzle):
    """What the lowering's ``tile.dot`` computes, warp by warp, lane by lane."""
    (m, k), n = a.shape, b.shape[1]
    wm, wn = layout.warps_per_block
    reps_m, reps_n = layout.repetitions((m, n))
    a_shared, b_shared = SharedLayout(a_order, 8, rule), SharedLayout(b_order, 8, rule)
    smem_a, smem_b = _stage(a, a_shared), _stage(b, b_shared)
    c = np.full((m, n), np.nan)
    for warp in range(layout.num_warps):
        warp_m, warp_n = warp // wn, warp % wn
        acc = [[[0.0] * 4 for _ in range(32)] for _ in range(reps_m * reps_n)]
        for k_start in range(0, k, 16):
            def fragments(operand, shared, smem, shape, outer, step, count):
                trans = shared.order[0] != (1 if operand == 0 else 0)
                rows = [shared.element_offset(shape, ldmatrix_rows(operand, trans, outer, step,
                                                                   k_start, lane))
                        for lane in range(32)]
                return _ldmatrix(smem, rows, count, trans)
            a_frag = [fragments(0, a_shared, smem_a, a.shape, mr * 16 * wm + warp_m * 16, 0, 4)
                      for mr in range(reps_m)]
            b_frag = []
            for nr in range(0, reps_n, 2):
                outer = nr * 8 * wn + warp_n * 8
                if nr + 1 < reps_n:
                    regs = fragments(1, b_shared, smem_b, b.shape, outer, 8 * wn, 4)
                    b_frag += [regs[:, :2], regs[:, 2:]]
                else:
                    b_frag.append(fragments(1, b_shared, smem_b, b.shape, outer, 0, 2))
            for mr in range(reps_m):
                for nr in range(reps_n):
                    acc[mr * reps_n + nr] = _mma(a_frag[mr], b_frag[nr], acc[mr * reps_n + nr])
        for lane in range(32):
            flat = [acc[i][lane][j] for i in range(reps_m * reps_n) for j in range(4)]
            for value, (row, col) in zip(flat, element_coordinates(layout, (m, n), lane, warp),
                                         strict=True):
                c[row, col] = value
    return c


@pytest.mark.parametrize("m,n,k,num_warps", [(16, 16, 16, 1), (64, 64, 32, 4), (32, 64, 32, 2),
                                             (64, 16, 64, 4), (128, 64, 16, 8)])
@pytest.mark.parametrize("a_order,b_order", [((1, 0), (1, 0)), ((0, 1), (0, 1))])
@pytest.mark.parametrize("rule", [swizzle, no_swizzle])
def test_fragments_multiply(m, n, k, num_warps, a_order, b_order, rule):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    layout = choose_mma_layout(m, n, num_warps)
    assert layout is not None and layout.num_warps == num_warps
    np.testing.assert_allclose(simulate_dot(a, b, layout, a_order, b_order, rule), a @ b,
                               rtol=1e-12, atol=1e-12)


def test_a_wrong_fragment_map_is_caught():
    """The simulation is a real test: swap two lanes' rows and the product is wrong."""
    import mini_compiler.passes.gpu.mma_layouts as mma

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((16, 16)), rng.standard_normal((16, 16))

    saved = globals()["ldmatrix_rows"]

    def off_by_one_row(operand, trans, outer, step, k_start, lane):
        outer_k = saved(operand, trans, outer, step, k_start, lane)
        return (outer_k[0] ^ (1 if lane == 3 else 0), outer_k[1])

    globals()["ldmatrix_rows"] = off_by_one_row
    try:
        got = simulate_dot(a, b, mma.MmaLayout((1, 1)), (1, 0), (1, 0))
    finally:
        globals()["ldmatrix_rows"] = saved
    assert not np.allclose(got, a @ b)


@pytest.mark.parametrize("chunks_per_row", [1, 2, 4, 8, 16])
def test_swizzle_is_a_permutation_and_free_of_bank_conflicts(chunks_per_row):
    for row in range(32):
        placed = sorted(swizzle(row, c, chunks_per_row) for c in range(chunks_per_row))
        assert placed == list(range(chunks_per_row)), f"row {row} loses chunks"
    row_bytes = chunks_per_row * CHUNK_BYTES
    for first in range(0, 32, 8):  # ldmatrix: 8 consecutive rows, the same logical chunk
        for chunk in range(chunks_per_row):
            slots = {(row * row_bytes + swizzle(row, chunk, chunks_per_row) * CHUNK_BYTES)
                     % LINE_BYTES // CHUNK_BYTES for row in range(first, first + 8)}
            assert len(slots) == min(8, 8), (chunks_per_row, first, chunk, slots)


def test_without_the_swizzle_wide_rows_conflict():
    row_bytes = 8 * CHUNK_BYTES  # 64 fp16 per row
    slots = {(row * row_bytes) % LINE_BYTES // CHUNK_BYTES for row in range(8)}
    assert len(slots) == 1  # all eight rows in the same banks: an 8-way conflict


def test_every_accumulator_element_has_one_owner():
    layout = MmaLayout((2, 2))
    table = owners(layout, (64, 32))
    assert len(table) == 64 * 32 and all(len(v) == 1 for v in table.values())
    for index in (0, 1):
        shape = (64, 32) if index == 0 else (32, 32)
        table = owners(DotOperandLayout(index, layout), shape)
        assert len(table) == shape[0] * shape[1]  # every element reaches some lane


def test_choose_mma_layout_refuses_tiles_too_small_for_the_warps():
    assert choose_mma_layout(16, 16, 4) is None
    assert choose_mma_layout(128, 128, 8).warps_per_block in ((4, 2), (2, 4))
