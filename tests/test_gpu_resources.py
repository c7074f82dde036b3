"""Occupancy from a compiled kernel's resources, and the compilation for sm_90 without a GPU."""

import pytest

from course.gpu_resources import CompiledResources, compile_for_sm90


def _resources(registers, num_warps, shared=0):
    return CompiledResources("k", num_warps, registers, 0, shared)


@pytest.mark.parametrize(
    ("registers", "warps", "shared", "programs", "occupancy"),
    [
        (32, 4, 16, 16, 1.0),  # limited by the 64 warp slots
        (254, 4, 16, 2, 0.125),  # 256 registers x 128 threads = 32768: two programs
        (128, 16, 64, 1, 0.25),  # 128 x 512 = 65536: the whole register file
        (40, 16, 64, 3, 0.75),  # 40 x 32 = 1280 per warp: 51 warps, so 3 programs of 16
        (32, 4, 100 * 1024, 2, 0.125),  # limited by shared memory: 228 KB / (100 + 1) KB
        (32, 4, 113 * 1024, 2, 0.125),  # 2 x (113 + 1) KB = 228 KB: exactly fits
        (32, 4, 114 * 1024, 1, 0.0625),  # 2 x (114 + 1) KB > 228 KB
        (16, 1, 0, 32, 0.5),  # limited by 32 programs per SM
    ],
)
def test_occupancy_follows_the_hopper_limits(registers, warps, shared, programs, occupancy):
    r = _resources(registers, warps, shared)
    assert r.programs_per_sm == programs
    assert r.occupancy == occupancy


def test_a_lesson_kernel_compiles_for_sm90_without_a_gpu():
    from course.kernels import softmax

    signature = {
        "x_ptr": "*fp32",
        "out_ptr": "*fp32",
        "n_rows": "i32",
        "n_cols": "i32",
        "x_row_stride": "i32",
        "out_row_stride": "i32",
        "BLOCK_SIZE": "constexpr",
    }
    r = compile_for_sm90(softmax.softmax_kernel, signature, {"BLOCK_SIZE": 1024}, num_warps=4)
    assert 8 <= r.registers <= 255
    assert r.spill_bytes == 0
    assert r.shared_bytes > 0  # the cross-warp reductions go through shared memory
    assert "warps:" in str(r) and "occupancy" in str(r)


def test_lesson_4s_claim_the_4_warp_dkdv_kernel_spills_and_the_8_warp_one_does_not():
    """A kernel that calls jit helpers of its module compiles too (the module is imported)."""
    from course.kernels import attention

    signature = {name: "*fp16" for name in ("Q", "K", "V", "DO", "DK", "DV")}
    signature |= {"LSE": "*fp32", "DELTA": "*fp32", "N": "i32", "sm_scale": "fp32"}
    signature |= {"qk_scale": "fp32"}
    signature |= dict.fromkeys(("HEAD_DIM", "BLOCK_M", "BLOCK_N", "CAUSAL", "EVEN_N"), "constexpr")
    constexprs = {"HEAD_DIM": 128, "BLOCK_M": 32, "BLOCK_N": 128, "CAUSAL": False, "EVEN_N": True}
    four, eight = (
        compile_for_sm90(attention.attention_bwd_dkdv_kernel, signature, constexprs, num_warps=w)
        for w in (4, 8)
    )
    assert four.spill_bytes > 0 and eight.spill_bytes == 0
