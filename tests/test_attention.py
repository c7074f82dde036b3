"""Lesson 4's flash attention: forward, backward, errors, the tile map and the exercise checks.

On the CPU the kernels run in Triton's interpreter at small sizes (fp32 and fp16); on a GPU the
same tests run at larger sizes in fp16 and bf16. References are float64 torch on fresh random
inputs, with sequence lengths that are and are not multiples of the tiles.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import course
from course.exercises import lesson04
from course.kernels.attention import (
    BwdConfig,
    FwdConfig,
    attention,
    attention_backward,
    attention_flops,
    attention_forward,
    naive_attention,
)
from course.widgets.attention_tiles import (
    FULL,
    MASKED,
    SKIPPED,
    attention_tiles,
    running_stats,
    tile_grid_html,
    tile_kinds,
)

ENV = course.configure()
DEVICE = ENV.device
DTYPES = [torch.float16, torch.bfloat16] if ENV.on_gpu else [torch.float32, torch.float16]
SEQS = [1000, 4096, 4097] if ENV.on_gpu else [64, 100]
TOL = {torch.float32: 2e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def rand(*shape, dtype=torch.float32, seed=0, grad=False):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(*shape, device=DEVICE, dtype=dtype, generator=gen).requires_grad_(grad)


def reference(q, k, v, do, causal, sm_scale=None):
    """float64 output and gradients of the textbook formula."""
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    out = naive_attention(q64, k64, v64, causal, sm_scale)
    grads = torch.autograd.grad(out, (q64, k64, v64), do.double())
    return out, grads


def assert_close(actual, expected, dtype, what):
    # Attention sums many rounded products: allow a few units of the dtype's rounding, scaled by
    # the size of the values.
    tol = TOL[dtype] * max(1.0, float(expected.detach().abs().max()))
    course.check_close(actual, expected, name=what, rtol=TOL[dtype], atol=tol, quiet=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SEQS)
@pytest.mark.parametrize("causal", [False, True])
def test_forward_and_backward_match_float64(dtype, n, causal):
    b, h, d = (1, 2, 64)
    q, k, v = (rand(b, h, n, d, dtype=dtype, seed=s, grad=True) for s in (1, 2, 3))
    do = rand(b, h, n, d, dtype=dtype, seed=4)
    out = attention(q, k, v, causal=causal)
    grads = torch.autograd.grad(out, (q, k, v), do)
    ref_out, ref_grads = reference(q, k, v, do, causal)
    assert_close(out, ref_out, dtype, f"output (N={n}, causal={causal})")
    for name, g, r in zip(("dq", "dk", "dv"), grads, ref_grads, strict=True):
        assert_close(g, r, dtype, f"{name} (N={n}, causal={causal})")


@pytest.mark.parametrize("head_dim", [16, 32, 128])
def test_other_head_dims(head_dim):
    dtype = DTYPES[0]
    n = 77 if not ENV.on_gpu else 777
    q, k, v = (rand(1, 1, n, head_dim, dtype=dtype, seed=s, grad=True) for s in (1, 2, 3))
    do = rand(1, 1, n, head_dim, dtype=dtype, seed=4)
    out = attention(q, k, v, causal=True)
    grads = torch.autograd.grad(out, (q, k, v), do)
    ref_out, ref_grads = reference(q, k, v, do, True)
    assert_close(out, ref_out, dtype, f"output (D={head_dim})")
    for g, r in zip(grads, ref_grads, strict=True):
        assert_close(g, r, dtype, f"gradient (D={head_dim})")


@pytest.mark.parametrize(
    "fwd,bwd",
    [
        (FwdConfig(32, 32), BwdConfig(32, 32, 32, 32)),
        (FwdConfig(64, 16), BwdConfig(16, 64, 64, 16)),
        (FwdConfig(16, 16), BwdConfig(16, 32, 32, 16)),
    ],
)
@pytest.mark.parametrize("causal", [False, True])
def test_other_tile_shapes(fwd, bwd, causal):
    """The loop splits (off-diagonal / diagonal / tail) must be right for any legal tiling."""
    n, d = 90, 32
    q, k, v = (rand(1, 2, n, d, dtype=torch.float32 if not ENV.on_gpu else torch.float16, seed=s)
               for s in (5, 6, 7))  # fmt: skip
    do = rand(1, 2, n, d, dtype=q.dtype, seed=8)
    o, lse = attention_forward(q, k, v, causal=causal, config=fwd)
    grads = attention_backward(do, q, k, v, o, lse, causal=causal, config=bwd)
    ref_out, ref_grads = reference(q, k, v, do, causal)
    assert_close(o, ref_out, q.dtype, f"output with {fwd}")
    for g, r in zip(grads, ref_grads, strict=True):
        assert_close(g, r, q.dtype, f"gradient with {bwd}")


@pytest.mark.parametrize("causal", [False, True])
def test_half_exp_option(causal):
    """fp16 exponentials: within fp16 rounding of the float64 result on a GPU (fp16 inputs), and
    ignored where they cannot run (bf16, the interpreter), so the result is the plain one."""
    n, d = 200, 64
    plain, half = FwdConfig(64, 32), FwdConfig(64, 32, half_exp=True)
    for dtype in DTYPES:
        q, k, v = (rand(1, 2, n, d, dtype=dtype, seed=s) for s in (9, 10, 11))
        o, lse = attention_forward(q, k, v, causal=causal, config=half)
        ref_out, _ = reference(q, k, v, torch.zeros_like(q), causal)
        assert_close(o, ref_out, dtype, f"output with half_exp ({dtype})")
        o_plain, lse_plain = attention_forward(q, k, v, causal=causal, config=plain)
        course.check_close(lse, lse_plain, name="lse", rtol=1e-3, atol=1e-3, quiet=True)
        if not (ENV.on_gpu and dtype == torch.float16):
            assert torch.equal(o, o_plain), "half_exp should fall back to the plain kernel here"


def test_causal_variants_agree():
    q, k, v = (rand(1, 2, 100, 32, dtype=DTYPES[0], seed=s) for s in (1, 2, 3))
    expected, _ = attention_forward(q, k, v, causal=True)
    for split in (False, True):
        for heavy in (False, True):
            o, _ = attention_forward(q, k, v, causal=True, split_diagonal=split, heavy_first=heavy)
            assert_close(o, expected.double(), q.dtype, f"split={split}, heavy_first={heavy}")


def test_log_sum_exp_is_saved_in_base_2():
    q, k, v = (rand(1, 2, 50, 32, seed=s, dtype=DTYPES[0]) for s in (1, 2, 3))
    sm_scale = 0.3
    _, lse = attention_forward(q, k, v, sm_scale=sm_scale)
    scores = (q.double() @ k.double().transpose(-2, -1)) * sm_scale
    expected = torch.logsumexp(scores, dim=-1) / math.log(2)
    course.check_close(lse, expected, name="lse", rtol=1e-3, atol=1e-3, quiet=True)


def test_custom_scale_and_non_contiguous_inputs():
    dtype = DTYPES[0]
    base = rand(1, 70, 2, 32, dtype=dtype, seed=9)  # (B, N, H, D): transposed views below
    q = base.transpose(1, 2)
    k = rand(1, 70, 2, 32, dtype=dtype, seed=10).transpose(1, 2)
    v = rand(1, 70, 2, 32, dtype=dtype, seed=11).transpose(1, 2)
    assert not q.is_contiguous()
    out = attention(q, k, v, causal=False, sm_scale=0.5)
    expected = naive_attention(q.double(), k.double(), v.double(), False, 0.5)
    assert_close(out, expected, dtype, "non-contiguous input, sm_scale=0.5")


def test_naive_matches_sdpa_math():
    q, k, v = (rand(2, 3, 40, 16, seed=s, dtype=torch.float64) for s in (1, 2, 3))
    for causal in (False, True):
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        course.check_close(naive_attention(q, k, v, causal), expected, quiet=True)


def test_flop_count():
    assert attention_flops(4, 32, 4096, 128, False) == 4 * 4 * 32 * 4096**2 * 128
    assert attention_flops(4, 32, 4096, 128, True) == 2 * 4 * 32 * 4096**2 * 128
    assert attention_flops(1, 1, 10, 8, False, backward=True) == 2.5 * 4 * 100 * 8


# ---- bad input ---------------------------------------------------------------------------------


def test_mismatched_shapes():
    q = rand(1, 2, 64, 32, dtype=DTYPES[0])
    with pytest.raises(ValueError, match="q has shape .* but k has shape"):
        attention(q, rand(1, 2, 60, 32, dtype=DTYPES[0]), rand(1, 2, 64, 32, dtype=DTYPES[0]))


def test_unsupported_head_dims():
    for d in (48, 256, 8):
        with pytest.raises(ValueError, match=f"head_dim {d} is not supported"):
            attention(*(rand(1, 1, 16, d, dtype=DTYPES[0]) for _ in range(3)))


def test_wrong_rank():
    with pytest.raises(ValueError, match="must have 4 dimensions"):
        attention(*(rand(2, 16, 32, dtype=DTYPES[0]) for _ in range(3)))


def test_unsupported_dtypes():
    bad = torch.float64 if ENV.on_gpu else torch.bfloat16
    with pytest.raises(TypeError, match="supported dtypes are"):
        attention(*(rand(1, 1, 16, 32).to(bad) for _ in range(3)))
    first, second = DTYPES
    with pytest.raises(TypeError, match=f"q is {first} but k is {second}"):
        attention(rand(1, 1, 16, 32, dtype=first), rand(1, 1, 16, 32, dtype=second),
                  rand(1, 1, 16, 32, dtype=first))  # fmt: skip


def test_wrong_device():
    q = torch.empty(1, 1, 16, 32, device="meta", dtype=DTYPES[0])
    with pytest.raises(ValueError, match="this course runs its kernels on"):
        attention(q, q, q)


def test_not_a_tensor_and_empty_sequence():
    with pytest.raises(TypeError, match="k must be a torch.Tensor"):
        attention(rand(1, 1, 4, 16), [1, 2], rand(1, 1, 4, 16))
    with pytest.raises(ValueError, match="seq_len is 0"):
        attention(*(torch.empty(1, 1, 0, 16, device=DEVICE, dtype=DTYPES[0]) for _ in range(3)))


def test_bad_configs():
    q = rand(1, 1, 32, 16, dtype=DTYPES[0])
    with pytest.raises(ValueError, match="block_m must be a multiple of block_n"):
        attention_forward(q, q, q, config=FwdConfig(32, 64))
    o, lse = attention_forward(q, q, q)
    with pytest.raises(ValueError, match="block_n1 must be a multiple of block_m1"):
        attention_backward(q, q, q, q, o, lse, config=BwdConfig(64, 32, 32, 32))


def test_backward_inputs_that_do_not_match_the_forward():
    q = rand(1, 2, 32, 16, dtype=DTYPES[0])
    o, lse = attention_forward(q, q, q)
    with pytest.raises(ValueError, match="pass the o and lse the forward pass returned"):
        attention_backward(q, q, q, q, o, lse[:, :1])
    with pytest.raises(ValueError, match="do and o must have q's shape"):
        attention_backward(q[:, :, :16], q, q, q, o, lse)
    with pytest.raises(TypeError, match="do must be a torch.Tensor"):
        attention_backward(None, q, q, q, o, lse)


# ---- the tile map ------------------------------------------------------------------------------


def test_tile_map_causal_and_plain():
    kinds = tile_kinds(256, 64, 32, causal=True)
    assert kinds.shape == (4, 8)
    assert (kinds[3, :6] == FULL).all() and (kinds[3, 6:] == MASKED).all()
    assert (kinds[0, 2:] == SKIPPED).all()
    assert (tile_kinds(256, 64, 64, causal=False) == FULL).all()
    ragged = tile_kinds(100, 32, 32, causal=False)
    assert (ragged[:, -1] == MASKED).all() and (ragged[:, :-1] == FULL).all()


def test_tile_map_matches_kernel_loop_bounds():
    """The kernel's causal loops: unmasked key tiles [0, start_m), masked [start_m, end)."""
    for n, bm, bn in ((300, 64, 32), (256, 128, 64), (77, 32, 16)):
        kinds = tile_kinds(n, bm, bn, causal=True)
        for i in range(kinds.shape[0]):
            start_m = i * bm
            full = list(range(start_m // bn))
            masked = list(range(start_m // bn, -(-min(start_m + bm, n) // bn)))
            assert list(np.flatnonzero(kinds[i] == FULL)) == full
            assert list(np.flatnonzero(kinds[i] == MASKED)) == masked


def test_running_stats_end_at_the_direct_values():
    scores = np.random.default_rng(0).normal(size=100) * 3
    steps = running_stats(scores, 32)
    assert len(steps) == 4
    assert steps[-1].running_max == pytest.approx(scores.max())
    assert steps[-1].running_sum == pytest.approx(np.exp(scores - scores.max()).sum())


def test_widget_builds_and_redraws():
    view = attention_tiles(n=200, block_m=64, block_n=32, causal=True)
    controls, grid, row, stats = view.children
    n_slider, bm, bn, mask = controls.children
    assert "skipped" in grid.value and "Row" in stats.value
    mask.value = "none"
    assert "0 skipped" in grid.value
    n_slider.value = 2000 if n_slider.max >= 2000 else n_slider.max
    bm.value = 16
    bn.value = 16
    assert "too many tiles" in grid.value or "<table" in grid.value
    assert "too many tiles" in tile_grid_html(4096, 16, 16, causal=True)


# ---- the exercise checks accept right answers and reject wrong ones -----------------------------


def causal_key_tiles_right(tile_m, block_m, block_n, n):
    start_m = tile_m * block_m
    return range(start_m // block_n), range(start_m // block_n,
                                             -(-min(start_m + block_m, n) // block_n))  # fmt: skip


def test_check_causal_key_tiles():
    lesson04.check_causal_key_tiles(causal_key_tiles_right)
    with pytest.raises(course.WrongAnswer, match="need the causal mask"):
        lesson04.check_causal_key_tiles(
            lambda t, bm, bn, n: (range(t * bm // bn), range(t * bm // bn, (t + 1) * bm // bn))
        )
    with pytest.raises(course.NotSolvedYet):
        lesson04.check_causal_key_tiles(lambda *a: (_ for _ in ()).throw(NotImplementedError()))


def online_update_right(m, l_run, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=1).values)
    m_safe = torch.where(m_new == -math.inf, torch.zeros_like(m_new), m_new)
    alpha = torch.exp(m - m_safe)
    p = torch.exp(s - m_safe[:, None])
    return m_new, l_run * alpha + p.sum(dim=1), acc * alpha[:, None] + p @ v


def online_update_no_rescale(m, l_run, acc, s, v):
    m_new = torch.maximum(m, s.max(dim=1).values)
    p = torch.exp(s - torch.where(m_new == -math.inf, torch.zeros_like(m_new), m_new)[:, None])
    return m_new, l_run + p.sum(dim=1), acc + p @ v


def test_check_online_update():
    lesson04.check_online_update(online_update_right)
    with pytest.raises(course.WrongAnswer, match="running sum l after key tile 1"):
        lesson04.check_online_update(online_update_no_rescale)


def test_check_window_attention_rejects_reading_every_tile():
    """A torch version reads all of K and V: right values, but no tile is skipped."""

    def reads_everything(q, k, v, window):
        n = q.shape[-2]
        rows, cols = torch.arange(n)[:, None], torch.arange(n)[None, :]
        hidden = ((cols > rows) | (cols <= rows - window)).to(q.device)
        s = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
        return (torch.softmax(s.masked_fill(hidden, -math.inf), -1) @ v.float()).to(q.dtype)

    with pytest.raises(course.WrongAnswer, match="read key/value tiles its window cannot see"):
        lesson04.check_window_attention(reads_everything)
    with pytest.raises(course.WrongAnswer, match="window_attention"):
        lesson04.check_window_attention(lambda q, k, v, w: naive_attention(q, k, v, causal=True))
