"""The CPU back end's fast paths: load fusion, mask versioning, and the launch fast path.

Each fast path must give exactly the results of the slow one; these tests pin the cases where a
careless version would not (a store between a load and its use, a partial last block, arguments
that change kind between launches, the compile cache being cleared).
"""

import compiler_helpers as H
import pytest
import torch
import triton

import mini_compiler
import mini_compiler.language as tl
from mini_compiler import OutOfBoundsError


@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000, 4096])
def test_vector_add_full_and_partial_blocks(n):
    x, y = torch.randn(n), torch.randn(n)
    torch.testing.assert_close(H.run_add(x, y, 256), x + y)


def test_vector_add_has_an_unmasked_fast_version():
    x = torch.randn(1000)
    stages = H.add.stages(x, x, torch.empty(1000), 1000, BLOCK_SIZE=256, bounds_check=False)
    assert "all_lanes_valid" in stages["llvm"] and "partial_block" in stages["llvm"]
    # The fast version: plain vector loads and stores, no masks, no stack arrays.
    assert "load <" in stages["llvm.opt"] and "store <" in stages["llvm.opt"]
    assert "alloca [256 x float]" not in stages["llvm.opt"]


@mini_compiler.jit
def swap(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    a = tl.load(x_ptr + offsets, mask=mask)
    b = tl.load(y_ptr + offsets, mask=mask)
    tl.store(x_ptr + offsets, b, mask=mask)  # `a` must have been read before this store
    tl.store(y_ptr + offsets, a, mask=mask)


def test_a_load_is_not_moved_past_a_store():
    x, y = torch.randn(1000), torch.randn(1000)
    x0, y0 = x.clone(), y.clone()
    swap[(triton.cdiv(1000, 128),)](x, y, 1000, BLOCK=128)
    torch.testing.assert_close(x, y0)
    torch.testing.assert_close(y, x0)


@mini_compiler.jit
def add_in_place(x_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    tl.store(x_ptr + offsets, x * 2 + 1, mask=mask)


def test_fused_load_and_store_to_the_same_tensor():
    x = torch.randn(1000)
    expected = x * 2 + 1
    add_in_place[(triton.cdiv(1000, 128),)](x, 1000, BLOCK=128)
    torch.testing.assert_close(x, expected)


@mini_compiler.jit
def unmasked(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets))


def test_bounds_check_still_reports_the_missing_mask_with_fast_paths_on():
    x, out = torch.randn(100), torch.empty(100)
    with pytest.raises(OutOfBoundsError, match="kernel `unmasked`, program id \\(1,\\): load"):
        unmasked[(2,)](x, out, 100, BLOCK=64, bounds_check=True)



def test_launch_fast_path_follows_argument_kinds():
    kernel = mini_compiler.jit(H.K.add_kernel)
    for dtype in (torch.float32, torch.float64, torch.float32):
        x = torch.randn(1000, dtype=dtype)
        out = torch.empty_like(x)
        kernel[(4,)](x, x, out, 1000, BLOCK_SIZE=256)
        torch.testing.assert_close(out, 2 * x)
    assert len(kernel.cache) == 2 and len(kernel.cache.fast) == 2
    x = torch.randn(1000)
    out = torch.empty(1000)
    kernel[(4,)](x, x, out, 1000, BLOCK_SIZE=256)  # keyword and positional forms
    kernel[(4,)](x, x, out, n_elements=1000, BLOCK_SIZE=256)
    kernel[lambda meta: (triton.cdiv(meta["n_elements"], 256),)](x, x, out, 1000,
                                                                 BLOCK_SIZE=256)
    torch.testing.assert_close(out, 2 * x)
    kernel.cache.clear()  # what hooks.override does: the fast table is forgotten too
    assert not kernel.cache.fast
    kernel[(4,)](x, x, out, 1000, BLOCK_SIZE=256)
    torch.testing.assert_close(out, 2 * x)


def test_launch_fast_path_keeps_launch_errors():
    x = torch.randn(100)
    kernel = mini_compiler.jit(H.K.add_kernel)
    kernel[(1,)](x, x, x.clone(), 100, BLOCK_SIZE=128)
    with pytest.raises(mini_compiler.LaunchError):
        kernel[(1,)](x, x, x.clone(), 100, BLOCK_SIZE=128, not_a_parameter=3)
    with pytest.raises(mini_compiler.LaunchError):
        kernel[(1,)](x, x, x.clone(), BLOCK_SIZE=128)


def test_bounds_check_from_environment_after_a_fast_launch(monkeypatch):
    x = torch.randn(100)
    out = torch.empty(100)
    unmasked[(1,)](x, out, 100, BLOCK=64)  # in bounds, remembered by the fast path
    unmasked[(2,)](torch.randn(128), torch.empty(128), 128, BLOCK=64)
    monkeypatch.setenv("MINI_COMPILER_BOUNDS_CHECK", "1")
    with pytest.raises(OutOfBoundsError):
        unmasked[(2,)](x, out, 100, BLOCK=64)


def test_out_of_bounds_in_a_parallel_launch_is_reported():
    n = 1 << 20
    x, out = torch.randn(n), torch.empty(n)
    with pytest.raises(OutOfBoundsError):
        unmasked[(n // 1024 + 1,)](x, out, n, BLOCK=1024, bounds_check=True)


@mini_compiler.jit
def fill(out_ptr, VALUE: tl.constexpr):
    tl.store(out_ptr + tl.arange(0, 16), tl.full((16,), VALUE, tl.float32))


def test_launch_fast_path_tells_apart_constexprs_that_compare_equal():
    out = torch.empty(16)
    fill[(1,)](out, VALUE=0.0)
    fill[(1,)](out, VALUE=-0.0)
    assert torch.signbit(out).all()
    fill[(1,)](out, VALUE=1)
    fill[(1,)](out, VALUE=True)
    assert (out == 1).all()


def test_warm_gpu_path_passes_what_the_slow_path_passes():
    """The GPU's warm launch reads arguments in one pass (key_and_raw_args); it must give the
    same key as ``key`` and the same numbers as the slow path's runtime arguments."""
    import compiler_kernels as K

    from mini_compiler.frontend.source import kernel_source
    from mini_compiler.runtime.specialization import FastBinder, TensorArg, specialise

    fn = K.add_kernel.fn
    binder = FastBinder(kernel_source(fn))
    x, y, out = torch.randn(100), torch.randn(100), torch.empty(100)
    values = binder.bind((x, y, out, 100), {"BLOCK_SIZE": 64})
    key, raw = binder.key_and_raw_args(values)
    assert key == binder.key(values)
    slow = specialise(kernel_source(fn), (x, y, out, 100), {"BLOCK_SIZE": 64}).runtime_args
    assert raw == [a.address if isinstance(a, TensorArg) else a for a in slow]
    assert raw[:3] == [x.data_ptr(), y.data_ptr(), out.data_ptr()]


def test_numpy_arrays_take_the_warm_path_too():
    import compiler_kernels as K
    import numpy as np

    kernel = mini_compiler.jit(K.add_kernel)
    x, y = np.random.rand(100).astype(np.float32), np.random.rand(100).astype(np.float32)
    out = np.full(100, np.nan, dtype=np.float32)
    kernel[(1,)](x, y, out, 100, BLOCK_SIZE=128)
    assert len(kernel.cache.fast) == 1
    out[:] = np.nan
    kernel[(1,)](x, y, out, 100, BLOCK_SIZE=128)
    np.testing.assert_allclose(out, x + y)
    key = next(iter(kernel.cache.fast))[0]
    binder = kernel._binder
    assert binder.key_and_raw_args(binder.bind((x, y, out, 100), {"BLOCK_SIZE": 128}))[0] == key


def test_num_stages_is_part_of_both_cache_keys():
    """num_stages changes the GPU code (the depth of the K loop's software pipeline), so a
    launch with another value must not reuse a kernel compiled for the first, on the slow path
    or the fast one."""
    kernel = mini_compiler.jit(H.K.add_kernel)
    x = torch.randn(1000)
    out = torch.empty_like(x)
    for stages in (2, 3, 2, 3):
        kernel[(4,)](x, x, out, 1000, BLOCK_SIZE=256, num_stages=stages)
    assert len(kernel.cache) == 2 and len(kernel.cache.fast) == 2
    assert sorted(key[-1] for key in kernel.cache.fast) == [2, 3]
    torch.testing.assert_close(out, 2 * x)
