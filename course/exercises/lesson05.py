"""Checks for lesson 5's exercises: RoPE, the SwiGLU epilogue, grouped-query decode attention.

Each check runs the learner's kernel on fresh random inputs with sizes that are not multiples of
the block, compares with a float64 reference, and, when the result is wrong, also compares it
with the answers of the mistakes a learner is likely to make (pairing neighbouring coordinates in
RoPE, swapping gate and up, mapping query heads to key/value heads round-robin, ...). When one of
those matches, the message names the mistake instead of only listing wrong numbers.
"""

from __future__ import annotations

import math

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from ..kernels.matmul import tolerance
from . import learner_code, passed, reads_stay_inside

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _rand(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen) * scale).to(configure().device)


def _diagnose(name: str, got: torch.Tensor, expected: torch.Tensor, mistakes: dict, what: str,
              rtol: float, atol: float) -> None:  # fmt: skip
    """Raise WrongAnswer unless ``got`` matches ``expected``; name a known mistake it matches."""
    try:
        check_close(got, expected, name=f"{name} ({what})", rtol=rtol, atol=atol, quiet=True)
        return
    except WrongAnswer as wrong:
        got64 = got.detach().double().cpu()
        for hint, answer in mistakes.items():
            answer = answer.detach().double().cpu()
            if answer.shape == got64.shape and torch.allclose(got64, answer, rtol=rtol, atol=atol):
                raise WrongAnswer(f"{name} ({what}): {hint}") from None
        raise wrong from None


# ---------------------------------------------------------------------------------------------
# Exercise 1: RoPE
# ---------------------------------------------------------------------------------------------


def rope_answer(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, pairing="half",
                sign=1.0) -> torch.Tensor:  # fmt: skip
    """RoPE of ``x`` (T, H, D) with ``cos``, ``sin`` (T, D/2), in float64. ``pairing="half"`` is
    Llama's (i with i + D/2); ``"neighbours"`` pairs 2i with 2i+1. ``sign=-1`` rotates backwards."""
    x, c, s = x.double(), cos.double()[:, None, :], sign * sin.double()[:, None, :]
    if pairing == "half":
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2], out[..., 1::2] = x1 * c - x2 * s, x2 * c + x1 * s
    return out


def check_rope(rope_kernel) -> None:
    """``rope_kernel(x_ptr, cos_ptr, sin_ptr, out_ptr, n_heads, HEAD_DIM)`` on a grid of
    ``(n_tokens, n_heads)``: x and out (n_tokens, n_heads, HEAD_DIM), cos and sin
    (n_tokens, HEAD_DIM // 2), all contiguous."""
    name = "rope_kernel"
    cases = [(5, 3, 16), (13, 4, 32), (1, 1, 64)]
    for t, h, d in cases:
        x = _rand(t, h, d, seed=t)
        angles = (torch.arange(7, 7 + t)[:, None] * 0.9 ** torch.arange(d // 2)[None, :]).double()
        cos, sin = angles.cos().float().to(x.device), angles.sin().float().to(x.device)
        out = torch.full_like(x, float("nan"))
        # First on the CPU with bounds checks: on a GPU a stray read can fault.
        reads_stay_inside(name, rope_kernel, (t, h), x, cos, sin, out, h, HEAD_DIM=d,
                          only_reads=True)
        with learner_code(name):
            rope_kernel[(t, h)](x, cos, sin, out, h, HEAD_DIM=d)
        mistakes = {
            "you paired neighbouring coordinates (2i, 2i+1), as the RoFormer paper does; Llama "
            "pairs coordinate i with i + HEAD_DIM/2 (the first half with the second half)":
                rope_answer(x, cos, sin, pairing="neighbours"),
            "you rotated by -angle: the first half is x1*cos - x2*sin and the second "
            "x2*cos + x1*sin": rope_answer(x, cos, sin, sign=-1.0),
            "every token used the angles of the first row of cos/sin: token t must read row t "
            "(its position)": rope_answer(x, cos[:1].expand_as(cos), sin[:1].expand_as(sin)),
            "every head got head 0's values: head h starts HEAD_DIM * h elements into the token's "
            "row": rope_answer(x[:, :1].expand_as(x), cos, sin),
        }  # fmt: skip
        _diagnose(name, out, rope_answer(x, cos, sin), mistakes, f"{t} tokens x {h} heads x {d}",
                  rtol=1e-5, atol=1e-5)  # fmt: skip
        reads_stay_inside(name, rope_kernel, (t, h), x, cos, sin, out, h, HEAD_DIM=d)
    passed(name, f"rotates every head of every token correctly for (tokens, heads, dim) in {cases}")


# ---------------------------------------------------------------------------------------------
# Exercise 2: the SwiGLU epilogue
# ---------------------------------------------------------------------------------------------

SWIGLU_BLOCKS = {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 32}


def swiglu_answer(x, w, n, *, order="gate_up", act="silu"):
    gate, up = x.double() @ w[:n].double().T, x.double() @ w[n:].double().T
    if order == "up_gate":
        gate, up = up, gate
    act_gate = {"silu": gate * torch.sigmoid(gate), "none": gate, "sigmoid": torch.sigmoid(gate),
                "relu": gate.clamp_min(0)}[act]  # fmt: skip
    return act_gate * up


def check_swiglu_matmul(matmul_swiglu_kernel) -> None:
    """``matmul_swiglu_kernel(x_ptr, w_ptr, out_ptr, M, N, K, stride_xm, stride_wn, stride_om,
    BLOCK_M, BLOCK_N, BLOCK_K)``: ``out = silu(x @ Wg^T) * (x @ Wu^T)`` where ``w`` holds ``Wg``
    (rows 0..N-1) then ``Wu`` (rows N..2N-1), on a grid of ``cdiv(M, BLOCK_M) * cdiv(N, BLOCK_N)``
    programs in row-major order. fp32 inputs."""
    import triton

    name = "matmul_swiglu"
    cases = [(1, 40, 48), (37, 45, 70), (16, 64, 64)]
    for m, n, k in cases:
        x = _rand(m, k, seed=m)
        w = _rand(2 * n, k, seed=n, scale=1 / math.sqrt(k))
        out = torch.full((m, n), float("nan"), device=x.device)
        bm, bn = SWIGLU_BLOCKS["BLOCK_M"], SWIGLU_BLOCKS["BLOCK_N"]
        grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
        args = (x, w, out, m, n, k, x.stride(0), w.stride(0), out.stride(0))
        # First on the CPU with bounds checks: on a GPU a stray read can fault.
        reads_stay_inside(name, matmul_swiglu_kernel, grid, *args, only_reads=True,
                          **SWIGLU_BLOCKS)
        with learner_code(name):
            matmul_swiglu_kernel[grid](*args, **SWIGLU_BLOCKS)
        mistakes = {
            "gate and up are swapped: SiLU goes on the gate (rows 0..N-1 of w), and the up "
            "projection (rows N..2N-1) multiplies it": swiglu_answer(x, w, n, order="up_gate"),
            "there is no SiLU: the epilogue is silu(gate) * up, with silu(z) = z * sigmoid(z)":
                swiglu_answer(x, w, n, act="none"),
            "you applied sigmoid(gate), not silu(gate) = gate * sigmoid(gate)":
                swiglu_answer(x, w, n, act="sigmoid"),
            "you applied ReLU; SwiGLU uses silu(z) = z * sigmoid(z)":
                swiglu_answer(x, w, n, act="relu"),
        }  # fmt: skip
        rtol, atol = tolerance(torch.float32, k) if configure().on_gpu else (1e-4, 1e-4)  # TF32
        _diagnose(name, out, swiglu_answer(x, w, n), mistakes, f"M={m}, N={n}, K={k}",
                  rtol=rtol, atol=atol)  # fmt: skip
        reads_stay_inside(name, matmul_swiglu_kernel, grid, *args, **SWIGLU_BLOCKS)
    passed(name, f"silu(x Wg^T) * (x Wu^T) matches float64 for (M, N, K) in {cases}")


# ---------------------------------------------------------------------------------------------
# Exercise 3: grouped-query decode attention
# ---------------------------------------------------------------------------------------------


def gqa_decode_answer(q, k, v, n_keys, *, mapping="group", scale=True, keys=None):
    """float64 attention of q (B, H, D) over keys 0..n_keys-1 of k, v (B, Hkv, S, D)."""
    b, h, d = q.shape
    hkv = k.shape[1]
    heads = torch.arange(h)
    kv_of = heads // (h // hkv) if mapping == "group" else heads % hkv
    n = n_keys if keys is None else keys
    kk, vv = k[:, kv_of, :n].double(), v[:, kv_of, :n].double()
    scores = (kk @ q.double()[..., None])[..., 0]  # (B, H, n)
    if scale:
        scores = scores / math.sqrt(d)
    return (scores.softmax(-1)[..., None, :] @ vv)[..., 0, :]


def check_gqa_decode(gqa_decode_kernel) -> None:
    """``gqa_decode_kernel(q_ptr, k_ptr, v_ptr, out_ptr, n_keys, max_seq, sm_scale, N_HEADS,
    N_KV_HEADS, HEAD_DIM, BLOCK_N)`` on a grid of ``(batch * N_HEADS,)``: one new query per
    (batch, head), q and out (batch, N_HEADS, HEAD_DIM), caches k and v (batch, N_KV_HEADS,
    max_seq, HEAD_DIM) of which the first ``n_keys`` positions are filled. fp32."""
    name = "gqa_decode"
    block_n = 16
    cases = [(1, 4, 2, 37, 64), (2, 6, 3, 16, 20), (2, 8, 2, 70, 100), (1, 4, 4, 1, 16)]
    for batch, h, hkv, n_keys, max_seq in cases:
        d = 16
        q = _rand(batch, h, d, seed=h)
        k = _rand(batch, hkv, max_seq, d, seed=1)
        v = _rand(batch, hkv, max_seq, d, seed=2)
        k[:, :, n_keys:] = 30.0  # positions not yet written: a kernel that reads them is caught
        v[:, :, n_keys:] = 1e4
        out = torch.full_like(q, float("nan"))
        args = (q, k, v, out, n_keys, max_seq, 1 / math.sqrt(d))
        consts = {"N_HEADS": h, "N_KV_HEADS": hkv, "HEAD_DIM": d, "BLOCK_N": block_n}
        # First on the CPU with bounds checks: on a GPU a stray read can fault.
        reads_stay_inside(name, gqa_decode_kernel, (batch * h,), *args, only_reads=True,
                          **consts)
        with learner_code(name):
            gqa_decode_kernel[(batch * h,)](*args, **consts)
        mistakes = {
            "query head h read key/value head h % N_KV_HEADS (round robin): the query heads that "
            "share a key/value head are consecutive, so it is h // (N_HEADS // N_KV_HEADS)":
                gqa_decode_answer(q, k, v, n_keys, mapping="round_robin"),
            "the scores are not scaled: multiply q . k by sm_scale (1/sqrt(HEAD_DIM))":
                gqa_decode_answer(q, k, v, n_keys, scale=False),
            "the newest key is missing: the cache holds n_keys keys, positions 0 .. n_keys - 1":
                gqa_decode_answer(q, k, v, n_keys, keys=max(n_keys - 1, 1)),
        }  # fmt: skip
        if h == hkv:
            mistakes.pop(next(iter(mistakes)))  # without groups both mappings agree
        what = f"batch {batch}, {h} query / {hkv} key-value heads, {n_keys} keys of {max_seq}"
        try:
            tol = 1e-3 if configure().on_gpu else 1e-4  # fast exponentials on a GPU
            _diagnose(name, out, gqa_decode_answer(q, k, v, n_keys), mistakes, what,
                      rtol=tol, atol=tol)  # fmt: skip
        except WrongAnswer as wrong:
            if out.isfinite().all() and (out.abs() > 100).any():
                raise WrongAnswer(
                    f"{name} ({what}): some outputs are near 1e4, the value stored in the cache "
                    "positions at n_keys and after: mask the keys at and past n_keys (their "
                    "scores must be -inf, so their weights are 0)"
                ) from None
            raise wrong
        reads_stay_inside(name, gqa_decode_kernel, (batch * h,), *args, **consts)
    passed(name, f"one query per head attends to its group's key/value head, {len(cases)} cases "
           "with ragged cache lengths")  # fmt: skip
