"""The four course kernels, compiled to x86 by the CPU back end, against torch."""

import importlib

import compiler_helpers as H
import pytest
import torch
import triton
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_compiler

FEW = settings(max_examples=6, deadline=None)


@FEW
@given(n=st.integers(1, 5000), block=st.sampled_from([64, 256, 1024]))
def test_vector_add_matches_torch_for_any_length(n, block):
    x, y = torch.randn(n), torch.randn(n)
    torch.testing.assert_close(H.run_add(x, y, block), x + y)


@FEW
@given(rows=st.integers(1, 40), cols=st.integers(1, 300))
def test_softmax_matches_torch(rows, cols):
    x = torch.randn(rows, cols) * 3
    torch.testing.assert_close(H.run_softmax(x), torch.softmax(x, dim=1))


@FEW
@given(m=st.integers(1, 80), n=st.integers(1, 80), k=st.integers(1, 80))
def test_matmul_matches_torch_including_ragged_edges(m, n, k):
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.testing.assert_close(H.run_matmul(a, b), a @ b, atol=1e-4, rtol=1e-4)


def test_matmul_fp16_inputs_accumulate_in_fp32():
    a, b = torch.randn(70, 50).half(), torch.randn(50, 40).half()
    c = H.run_matmul(a, b)
    torch.testing.assert_close(c, a.float() @ b.float(), atol=1e-2, rtol=1e-2)


def test_matmul_with_fused_leaky_relu_epilogue():
    a, b = torch.randn(64, 48), torch.randn(48, 40)
    ref = torch.nn.functional.leaky_relu(a @ b, 0.01)
    torch.testing.assert_close(H.run_matmul(a, b, activation="leaky_relu"), ref,
                               atol=1e-4, rtol=1e-4)


def test_matmul_of_transposed_view_uses_strides():
    a = torch.randn(48, 40).t()  # non-contiguous: strides (1, 40)
    b = torch.randn(48, 32)
    torch.testing.assert_close(H.run_matmul(a, b), a @ b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
@settings(max_examples=3, deadline=None)
@given(n_ctx=st.integers(1, 100), heads=st.integers(1, 3))
def test_attention_matches_sdpa(causal, n_ctx, heads):
    q, k, v = (torch.randn(1, heads, n_ctx, 32) for _ in range(3))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(H.run_attention(q, k, v, causal), ref, atol=1e-4, rtol=1e-4)


def test_numpy_arrays_work_like_cpu_tensors():
    import numpy as np

    x = np.random.rand(1000).astype(np.float32)
    y = np.random.rand(1000).astype(np.float32)
    out = np.zeros_like(x)
    H.add[(triton.cdiv(1000, 256),)](x, y, out, 1000, BLOCK_SIZE=256)
    np.testing.assert_allclose(out, x + y)


def test_large_grid_runs_on_threads_and_matches():
    x, y = torch.randn(1 << 20), torch.randn(1 << 20)
    torch.testing.assert_close(H.run_add(x, y, 1024), x + y)


# The course's own lessons: the very kernel objects a notebook uses must compile too.
def _course_kernel(module_name, attr):
    try:
        module = importlib.import_module(f"course.kernels.{module_name}")
    except Exception as e:  # the lesson may not exist yet
        pytest.skip(f"course.kernels.{module_name} not importable: {e}")
    if not hasattr(module, attr):
        pytest.skip(f"course.kernels.{module_name} has no {attr}")
    return getattr(module, attr)


def _first_jit_kernel(module_name, *names):
    for name in names:
        try:
            return _course_kernel(module_name, name)
        except pytest.skip.Exception:
            continue
    pytest.skip(f"no kernel named {names} in course.kernels.{module_name}")


def test_course_vector_add_kernel_compiles_and_runs():
    kernel = mini_compiler.jit(_first_jit_kernel("vector_add", "add_kernel", "vector_add_kernel"))
    n = 3000
    x, y = torch.randn(n), torch.randn(n)
    out = torch.empty(n)
    import inspect

    params = list(inspect.signature(kernel.fn).parameters)
    block_name = params[-1]
    kernel[(triton.cdiv(n, 1024),)](x, y, out, n, **{block_name: 1024})
    torch.testing.assert_close(out, x + y)


def test_course_softmax_kernel_compiles_and_runs():
    fn = _first_jit_kernel("softmax", "softmax_kernel")
    kernel = mini_compiler.jit(fn)
    import inspect

    params = list(inspect.signature(kernel.fn).parameters)
    x = torch.randn(37, 300)
    out = torch.empty_like(x)
    values = {"output_ptr": out, "out_ptr": out, "input_ptr": x, "in_ptr": x, "x_ptr": x,
              "y_ptr": out, "x_row_stride": x.stride(0), "out_row_stride": out.stride(0),
              "input_row_stride": x.stride(0), "output_row_stride": out.stride(0),
              "n_rows": 37, "n_cols": 300, "BLOCK_SIZE": 512}
    if not all(p in values for p in params if p not in ("num_stages",)):
        pytest.skip(f"unexpected softmax signature {params}")
    kwargs = {p: values[p] for p in params if p in values}
    constexprs = {k: v for k, v in kwargs.items() if k.isupper()}
    runtime = [v for k, v in kwargs.items() if not k.isupper()]
    kernel[(37,)](*runtime, **constexprs)
    torch.testing.assert_close(out, torch.softmax(x, dim=1))


@pytest.mark.parametrize("even_k", [True, False])
def test_course_matmul_kernel_compiles_and_runs(even_k):
    kernel = mini_compiler.jit(_first_jit_kernel("matmul", "matmul_kernel"))
    m, n, k = 70, 50, (64 if even_k else 40)
    a, b = torch.randn(m, k), torch.randn(k, n)
    c = torch.full((m, n), float("nan"))
    grid = (triton.cdiv(m, 32) * triton.cdiv(n, 32),)
    kernel[grid](a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                 c.stride(0), c.stride(1), BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_SIZE=4,
                 ACTIVATION="leaky_relu", EVEN_K=even_k)
    ref = torch.nn.functional.leaky_relu(a @ b, 0.01)
    torch.testing.assert_close(c, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_course_attention_forward_kernel_compiles_and_runs(causal):
    kernel = mini_compiler.jit(_first_jit_kernel("attention", "attention_fwd_kernel"))
    bh, n, d = 2, 80, 32
    q, k, v = (torch.randn(bh, n, d) for _ in range(3))
    o = torch.full_like(q, float("nan"))
    lse = torch.empty(bh, n)
    scale = d ** -0.5
    kernel[(triton.cdiv(n, 32), bh)](q, k, v, o, lse, n, scale * 1.4426950408889634,
                                     HEAD_DIM=d, BLOCK_M=32, BLOCK_N=32, CAUSAL=causal,
                                     EVEN_N=False, num_warps=4, num_stages=2)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(o, ref, atol=1e-4, rtol=1e-4)
