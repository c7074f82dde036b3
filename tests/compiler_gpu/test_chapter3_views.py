"""Lesson 3's compiler chapter: the fragment view draws the maps the GPU code uses, and
Triton's own GPU IR of the lesson's kernel shows the same ideas under Triton's names."""

from __future__ import annotations

import re

from mini_compiler.passes.gpu.layouts import element_coordinates
from mini_compiler.passes.gpu.mma_layouts import DotOperandLayout, choose_mma_layout


def test_the_fragment_view_outlines_the_chosen_lane_wherever_it_holds_an_element():
    from course.widgets.fragment_view import fragment_view, fragments_html

    html = fragments_html(32, 16, 16, num_warps=2, lane=5)
    mma = choose_mma_layout(32, 16, 2)
    held = set()  # elements lane 5 holds (of some warp), per tile: B is held by both warps
    for name, layout, shape in [("A", DotOperandLayout(0, mma), (32, 16)),
                                ("B", DotOperandLayout(1, mma), (16, 16)), ("C", mma, (32, 16))]:
        for warp in range(2):
            held |= {(name, c) for c in element_coordinates(layout, shape, 5, warp)}
    assert len(re.findall(r'class="w\d+ sel"', html)) == len(held)
    assert html.count("<td") == 32 * 16 + 16 * 16 + 32 * 16
    assert "cannot be split" in fragments_html(16, 16, 16, num_warps=4)
    fragment_view()  # builds


def test_triton_ir_of_the_lesson_kernel_names_the_same_ideas():
    from course.kernels.matmul import matmul_kernel
    from mini_compiler.tools.triton_ir import ideas_in_ttgir, triton_stages

    constexprs = {"stride_ak": 1, "stride_bn": 1, "stride_cn": 1, "BLOCK_M": 64, "BLOCK_N": 64,
                  "BLOCK_K": 32, "GROUP_SIZE": 8, "ACTIVATION": None, "EVEN_K": True}
    signature = {name: "constexpr" if name in constexprs else
                 "*fp16" if name.endswith("_ptr") else "i32"
                 for name in matmul_kernel.arg_names}
    ttgir = triton_stages(matmul_kernel, signature, constexprs, num_warps=4, arch=80,
                          divisible=("a_ptr", "b_ptr", "c_ptr", "M", "N", "K", "stride_am",
                                     "stride_bk", "stride_cm"))["ttgir"]
    names = {name for name, _, _ in ideas_in_ttgir(ttgir)}
    assert {"#ttg.nvidia_mma", "#ttg.swizzled_shared", "ttg.local_alloc", "ttg.local_load",
            "tt.dot"} <= names
    # Triton's accumulator layout and A's swizzle are ours for the same tile and warps
    assert "warpsPerCTA = [2, 2], instrShape = [16, 8]" in ttgir
    assert choose_mma_layout(64, 64, 4).warps_per_block == (2, 2)
    assert "vec = 8, perPhase = 2, maxPhase = 4" in ttgir  # 64-byte rows: 2 per line, 4 phases
