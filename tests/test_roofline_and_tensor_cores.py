"""Lesson 3's roofline helper and its look at the instructions Triton emits for Hopper."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from course import roofline  # noqa: E402


def test_intensities_follow_from_the_counted_work():
    assert roofline.vector_add(1 << 20).intensity == pytest.approx(1 / 12)
    assert roofline.softmax(64, 1000).intensity == pytest.approx(5 / 8)
    assert roofline.matmul(4096, 4096, 4096, element=2).intensity == pytest.approx(4096 / 3)
    # attention: 4 N^2 d flops over 4 N d fp16 elements plus 4 bytes of lse per row
    work = roofline.attention(4, 32, 4096, 128, element=2)
    assert work.intensity == pytest.approx(4 * 4096 * 128 / (4 * 128 * 2 + 4))
    assert "lse" in work.how and "4 x B H N^2 d" in work.how


def test_attainable_is_the_lower_of_the_two_roofs():
    # 4000 GB/s and 600 TFLOP/s: ridge at 150 flop/byte
    assert roofline.attainable(1 / 12, 600, 4000) == pytest.approx(4000 / 12 / 1e3)
    assert roofline.attainable(150, 600, 4000) == pytest.approx(600)
    assert roofline.attainable(1000, 600, 4000) == 600


def test_a_point_reports_its_rates_and_the_table_its_bound():
    work = roofline.matmul(1024, 1024, 1024, element=2)
    point = roofline.Point(work, ms=0.01)
    assert point.tflops == pytest.approx(2 * 1024**3 / 1e-5 / 1e12)
    assert point.gbps == pytest.approx(3 * 1024**2 * 2 / 1e-5 / 1e9)
    slow_add = roofline.Point(roofline.vector_add(1 << 20), ms=1.0)
    text = roofline.table([point, slow_add], peak_tflops=600, bandwidth_gbps=4000)
    lines = text.splitlines()
    assert lines[1].startswith("matmul") and lines[1].endswith("compute")
    assert lines[2].startswith("vector add") and lines[2].endswith("memory")
    assert lines[-1] == "ridge point: 150 flop/byte"


def test_plot_draws_every_point_and_roof_and_refuses_nothing_to_draw():
    points = [roofline.Point(roofline.vector_add(1 << 20), 1.0),
              roofline.Point(roofline.matmul(512, 512, 512), 1.0)]  # fmt: skip
    fig = roofline.plot(points, {"fp16": 600, "fp32": 50}, 4000, on_gpu=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("copy: 4,000 GB/s") and len(labels) == 3
    assert sum("TFLOP/s" in t.get_text() for t in fig.axes[0].texts) == 2
    with pytest.raises(ValueError, match="at least one point"):
        roofline.plot([], {"fp16": 600}, 4000)


def test_the_lesson_matmul_on_sm90_uses_wgmma_and_async_copies():
    """What lesson 3 says the compiled kernel contains (compiled for sm_90 without a GPU)."""
    from course import tensor_cores
    from course.kernels import matmul

    signature = {"a_ptr": "*fp16", "b_ptr": "*fp16", "c_ptr": "*fp16", "M": "i32", "N": "i32",
                 "K": "i32", "stride_am": "i32", "stride_ak": "constexpr", "stride_bk": "i32",
                 "stride_bn": "constexpr", "stride_cm": "i32", "stride_cn": "constexpr",
                 "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
                 "GROUP_SIZE": "constexpr", "ACTIVATION": "constexpr", "EVEN_K": "constexpr"}
    tile = {"stride_ak": 1, "stride_bn": 1, "stride_cn": 1, "BLOCK_M": 128, "BLOCK_N": 256,
            "BLOCK_K": 64, "GROUP_SIZE": 8, "ACTIVATION": None, "EVEN_K": True}
    aligned = ("a_ptr", "b_ptr", "c_ptr", "M", "N", "K", "stride_am", "stride_bk", "stride_cm")
    counts, shared = tensor_cores.sm90_instructions(matmul.matmul_kernel, signature, tile,
                                                    num_warps=8, divisible=aligned)  # fmt: skip
    assert counts["wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16"] == 4  # 64 / 16 per step
    assert any(name.startswith("cp.async.cg") for name in counts)
    assert not any(name.startswith("cp.async.bulk.tensor") for name in counts)  # no TMA
    assert shared == 3 * (128 * 64 + 64 * 256) * 2  # three stages of an A and a B tile
    with pytest.raises(ValueError, match="not parameters"):
        tensor_cores.sm90_instructions(matmul.matmul_kernel, signature, tile, num_warps=8,
                                       divisible=("a",))  # fmt: skip


def test_the_hopper_drawing_has_three_panels():
    from course import tensor_cores

    fig = tensor_cores.draw_hopper_matmul()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3 and "m64n256k16" in titles[0] and "TMA" in titles[2]
