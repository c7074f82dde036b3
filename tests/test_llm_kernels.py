"""The capstone's kernels against float64 references, on ragged shapes, outputs NaN-poisoned."""

import math

import pytest
import torch

import course
from course.check import check_close
from course.kernels import decode_attention as dec
from course.kernels import gqa_attention as gqa
from course.kernels import linear as lin
from course.kernels import rmsnorm as rms
from course.kernels import rope
from course.kernels.matmul import tolerance as lin_tolerance
from course.llm.config import TINY, rope_tables
from course.llm.reference import apply_rope, rms_norm

DEVICE = course.configure().device
DTYPE = torch.float32  # the interpreter has no bf16 tl.dot


def tol(k: int, factor: float = 1.0) -> dict[str, float]:
    """Exact fp32 on the CPU; on a GPU, tl.dot rounds fp32 inputs to TF32 (lesson 3's bound)."""
    if not course.configure().on_gpu:
        return {"rtol": 1e-4, "atol": 1e-4}
    rtol, atol = lin_tolerance(torch.float32, k)
    return {"rtol": factor * rtol, "atol": factor * atol}


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(DEVICE, DTYPE)


def nan_like(t):
    return torch.full_like(t, float("nan"))


@pytest.mark.parametrize("rows, cols", [(5, 64), (3, 100), (1, 37)])
def test_rmsnorm(rows, cols):
    x, w = rand(rows, cols), rand(cols, seed=1)
    out = rms.rmsnorm(x, w, 1e-5, out=nan_like(x))
    check_close(out, rms_norm(x.double(), w.double(), 1e-5), quiet=True)


def test_embedding():
    table = rand(50, 24)
    tokens = torch.tensor([[3, 49, 0], [7, 7, 12]], device=DEVICE)
    assert torch.equal(rms.embedding(tokens, table), table[tokens])
    with pytest.raises(ValueError, match="tokens are on meta"):
        rms.embedding(tokens.to("meta"), table)


@pytest.mark.parametrize("m, n, k", [(1, 40, 48), (37, 33, 70), (64, 96, 64)])
@pytest.mark.parametrize("epilogue", ["none", "residual", "swiglu"])
def test_linear_epilogues(m, n, k, epilogue):
    x = rand(m, k)
    w = rand(2 * n if epilogue == "swiglu" else n, k, seed=1) / math.sqrt(k)
    res = rand(m, n, seed=2) if epilogue == "residual" else None
    expected = lin.linear_reference(x.double(), w.double(), epilogue,
                                    None if res is None else res.double())  # fmt: skip
    out = torch.full((m, n), float("nan"), device=DEVICE)
    out = lin.linear(x, w, epilogue, residual=res, out=out)
    check_close(out, expected, quiet=True, **tol(k, 3.0 if epilogue == "swiglu" else 1.0))


def test_linear_residual_in_place():
    x, w, res = rand(9, 40), rand(24, 40, seed=1), rand(9, 24, seed=2)
    expected = res.double() + x.double() @ w.double().T
    lin.linear(x, w, "residual", residual=res, out=res)
    check_close(res, expected, quiet=True, **tol(40))


def test_linear_rejects_bad_input():
    with pytest.raises(ValueError, match="out is on meta"):
        lin.linear(rand(2, 8), rand(4, 8), out=torch.empty(2, 4, device="meta"))
    with pytest.raises(ValueError, match="out has shape"):
        lin.linear(rand(2, 8), rand(4, 8), out=torch.empty(3, 4, device=DEVICE))
    with pytest.raises(ValueError, match="epilogue"):
        lin.linear(rand(2, 8), rand(4, 8), "gelu")
    with pytest.raises(ValueError, match="do not fit"):
        lin.linear(rand(2, 8), rand(4, 9))
    with pytest.raises(ValueError, match="residual="):
        lin.linear(rand(2, 8), rand(4, 8), "residual")


def _qkv_case(batch, seq, start, config=TINY, seed=0):
    c = config
    qkv = rand(batch, seq, c.qkv_width, seed=seed)
    cos, sin = rope_tables(c, DEVICE)
    k_cache = torch.full((batch, c.n_kv_heads, c.max_seq, c.head_dim), float("nan"),
                         device=DEVICE)  # fmt: skip
    v_cache = torch.full_like(k_cache, float("nan"))
    return qkv, cos, sin, k_cache, v_cache, torch.tensor([start], dtype=torch.int32, device=DEVICE)


@pytest.mark.parametrize("batch, seq, start", [(1, 1, 0), (2, 19, 5), (3, 1, 40)])
def test_rope_qkv_rotates_and_fills_the_cache(batch, seq, start):
    c = TINY
    qkv, cos, sin, k_cache, v_cache, pos = _qkv_case(batch, seq, start)
    q = rope.rope_qkv(qkv, cos, sin, pos, k_cache, v_cache, c.n_heads)
    qd = c.n_heads * c.head_dim
    kd = c.n_kv_heads * c.head_dim
    heads = qkv.double().view(batch, seq, -1, c.head_dim)
    cs, sn = cos[start : start + seq].double(), sin[start : start + seq].double()
    check_close(q, apply_rope(heads[:, :, : c.n_heads], cs, sn), quiet=True)
    k = apply_rope(heads[:, :, c.n_heads : c.n_heads + c.n_kv_heads], cs, sn)
    v = qkv.double()[..., qd + kd :].view(batch, seq, c.n_kv_heads, c.head_dim)
    check_close(k_cache[:, :, start : start + seq], k.transpose(1, 2), quiet=True)
    check_close(v_cache[:, :, start : start + seq], v.transpose(1, 2), quiet=True)
    untouched = torch.cat([k_cache[:, :, :start], k_cache[:, :, start + seq :]], dim=2)
    assert untouched.isnan().all(), "rope_qkv wrote cache positions it was not given"


def _attention_reference(q, k, v, start):
    """q (B, T, H, D) at positions start..; k, v (B, Hkv, S, D): the first start + T keys."""
    b, t, h, d = q.shape
    group = h // k.shape[1]
    keys = k[:, :, : start + t].repeat_interleave(group, 1).double()
    values = v[:, :, : start + t].repeat_interleave(group, 1).double()
    scores = q.double().transpose(1, 2) @ keys.transpose(-1, -2) / math.sqrt(d)
    visible = torch.ones(t, start + t, dtype=torch.bool, device=q.device).tril(start)
    scores = scores.masked_fill(~visible, float("-inf"))
    return (scores.softmax(-1) @ values).transpose(1, 2)


@pytest.mark.parametrize("batch, t, start, heads, kv_heads", [
    (1, 37, 0, 4, 2), (2, 20, 13, 4, 1), (1, 5, 70, 6, 3), (1, 64, 0, 2, 2),
])  # fmt: skip
def test_gqa_attention_with_offset(batch, t, start, heads, kv_heads):
    d, max_seq = 16, 128
    q = rand(batch, t, heads, d)
    k, v = rand(batch, kv_heads, max_seq, d, seed=1), rand(batch, kv_heads, max_seq, d, seed=2)
    out = gqa.gqa_attention(q, k, v, start, out=nan_like(q))
    check_close(out, _attention_reference(q, k, v, start), quiet=True, **tol(start + t, 2.0))


@pytest.mark.parametrize("batch, position, heads, kv_heads, splits", [
    (1, 0, 4, 2, None), (2, 99, 8, 2, 3), (3, 130, 4, 4, 8), (1, 200, 32, 8, None),
])  # fmt: skip
def test_decode_attention_split(batch, position, heads, kv_heads, splits):
    d, max_seq = 16, 211
    q = rand(batch, 1, heads, d)
    k, v = rand(batch, kv_heads, max_seq, d, seed=1), rand(batch, kv_heads, max_seq, d, seed=2)
    pos = torch.tensor([position], dtype=torch.int32, device=DEVICE)
    out = dec.decode_attention(q, k, v, pos, n_splits=splits, block_n=32, out=nan_like(q))
    expected = _attention_reference(q, k, v, position)
    check_close(out, expected, quiet=True, **tol(position + 1, 2.0))


def test_choose_splits_fills_the_gpu_without_tiny_slices():
    assert dec.choose_splits(1, 8, 2176, 64, 132) == 17  # 2176 // 128
    assert dec.choose_splits(16, 8, 8192, 64, 132) == 2
    assert dec.choose_splits(64, 8, 8192, 64, 132) == 1


def test_rope_qkv_refuses_positions_past_the_cache():
    qkv, cos, sin, k_cache, v_cache, pos = _qkv_case(1, 5, TINY.max_seq - 3)
    with pytest.raises(ValueError, match="do not fit a cache"):
        rope.rope_qkv(qkv, cos, sin, pos, k_cache, v_cache, TINY.n_heads, start=TINY.max_seq - 3)
