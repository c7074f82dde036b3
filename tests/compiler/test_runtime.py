"""Runtime: specialisation and cache, the debug switch, and language features end to end."""

import compiler_helpers as H
import torch
import triton

import mini_compiler
import mini_compiler.language as tl


def test_compile_cache_reuses_a_specialisation_and_splits_on_the_key():
    x = torch.randn(512)
    H.add.cache.clear()
    H.run_add(x, x, 128)
    H.run_add(x, x, 128)
    assert len(H.add.cache) == 1
    H.run_add(x, x, 256)  # another constexpr
    H.run_add(x.double(), x.double(), 128)  # another dtype
    assert len(H.add.cache) == 3


def test_unit_stride_is_specialised_to_a_constant():
    x = torch.randn(4, 8)
    compiled = H.softmax.compile(x, x, 8, 1, 8, BLOCK_SIZE=8)
    assert "%output_row_stride: i32 {equal_to_1}" in compiled.asm["tile"]
    assert "%input_ptr: !ptr<f32> {divisible_by_16}" in compiled.asm["tile"]


def test_debug_switch_prints_stages(monkeypatch, capsys):
    monkeypatch.setenv("MINI_COMPILER_DEBUG", "ir,asm")
    H.add.cache.clear()
    H.run_add(torch.randn(100), torch.randn(100), 32)
    printed = capsys.readouterr().out
    assert "// ----- tile -----" in printed and "// ----- tile.dce -----" in printed
    assert "// ----- x86 -----" in printed and "// ----- llvm -----" not in printed


def test_grid_callable_gets_the_meta_parameters():
    x = torch.randn(1000)
    out = torch.empty(1000)
    H.add[lambda meta: (triton.cdiv(meta["n_elements"], meta["BLOCK_SIZE"]),)](
        x, x, out, 1000, BLOCK_SIZE=128, num_warps=4, num_stages=3)
    torch.testing.assert_close(out, 2 * x)


@mini_compiler.jit
def features(x_ptr, out_ptr, n, scale, BLOCK: tl.constexpr, USE_EXP: tl.constexpr):
    """Runtime if, tl.range loop with carried values, reductions along both axes, casts."""
    rows = tl.arange(0, BLOCK)
    tile = tl.load(x_ptr + rows[:, None] * BLOCK + rows[None, :])
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    count = 0
    for _i in tl.range(0, n):
        total += tl.sum(tile, axis=0) * scale
        count += 1
    if count > 2:
        total = total - tl.min(tile, axis=1)
    else:
        total = total + tl.max(tile, axis=1)
    if USE_EXP:
        total = tl.exp(total * 0.01)
    half = total.to(tl.float16).to(tl.float32)
    tl.store(out_ptr + rows, tl.where(rows % 2 == 0, half, -half))


def features_reference(x, n, scale, use_exp):
    total = x.sum(0) * scale * n
    total = total - x.min(1).values if n > 2 else total + x.max(1).values
    if use_exp:
        total = torch.exp(total * 0.01)
    half = total.half().float()
    sign = torch.where(torch.arange(len(half)) % 2 == 0, 1.0, -1.0)
    return half * sign


def test_language_features_on_cpu_and_interpreter():
    x = torch.randn(16, 16)
    for n, use_exp in ((3, True), (1, False)):
        for backend in (None, "interpreter"):
            out = torch.empty(16)
            features[(1,)](x, out, n, 0.5, BLOCK=16, USE_EXP=use_exp, backend=backend)
            torch.testing.assert_close(out, features_reference(x, n, 0.5, use_exp),
                                       atol=1e-3, rtol=1e-3)


def test_num_warps_is_part_of_the_cache_key():
    """The GPU back end lays tiles out over num_warps * 32 threads: another num_warps, another
    kernel. The CPU ignores it, but the cache must not hand one variant's code to the other."""
    import mini_compiler
    import mini_compiler.language as mtl

    @mini_compiler.jit
    def copy(x_ptr, out_ptr, n, BLOCK: mtl.constexpr):
        offsets = mtl.program_id(0) * BLOCK + mtl.arange(0, BLOCK)
        mtl.store(out_ptr + offsets, mtl.load(x_ptr + offsets, mask=offsets < n), mask=offsets < n)

    x = torch.randn(100)
    out = torch.empty(100)
    four = copy.compile(x, out, 100, BLOCK=64, num_warps=4)
    eight = copy.compile(x, out, 100, BLOCK=64, num_warps=8)
    assert four is not eight
    assert copy.compile(x, out, 100, BLOCK=64, num_warps=4) is four
    copy[(2,)](x, out, 100, BLOCK=64, num_warps=8)
    copy[(2,)](x, out, 100, BLOCK=64, num_warps=4)  # the fast path keys on num_warps too
    assert torch.equal(out, x)
