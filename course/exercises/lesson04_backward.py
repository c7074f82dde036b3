"""Check for lesson 4's backward-pass exercise: the dQ update of one query tile.

The learner completes a kernel that owns one tile of ``BLOCK_M`` queries and streams the key and
value tiles past it, as ``attention_bwd_dq_kernel`` does (non-causal, any ``N``). Given the saved
base-2 log-sum-exp and ``delta = rowsum(dO * O)``, each key tile adds

    P  = exp2(qk_scale * Q K^T - lse)          (given)
    dP = dO V^T                                (BLOCK_M x BLOCK_N)
    dS = P * (dP - delta[:, None])             (each query row minus its own delta)
    dQ += dS K                                 (in fp32)

and after the loop ``dQ *= sm_scale``. :func:`check_dq_update` launches the learner's kernel and
compares with float64 autograd-free formulas; where the result matches a known wrong formula
(no ``delta``, ``delta`` summed over one key tile, ``delta`` along the wrong axis, no scale,
the base-2 scale) it names that mistake,
and an fp16 accumulator is caught by inputs whose partial sums overflow fp16 (but not fp32).
"""

from __future__ import annotations

import math

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from . import learner_code, passed

LOG2E = 1.4426950408889634
SHAPES = ("Shapes in this kernel: q, do, dq: (BLOCK_M, HEAD_DIM); k, v: (BLOCK_N, HEAD_DIM); "
          "p, dp, ds: (BLOCK_M, BLOCK_N); lse, delta: (BLOCK_M,).")


def _launch(kernel, q, k, v, do, lse, delta, out_dtype, block_m, block_n):
    import triton

    from ..check import empty_poisoned

    b, h, n, d = q.shape
    dq = empty_poisoned(b, h, n, d, dtype=out_dtype, device=q.device)
    sm_scale = 1.0 / math.sqrt(d)
    kernel[(triton.cdiv(n, block_m), b * h)](
        q, k, v, do, lse, delta, dq, n, sm_scale, sm_scale * LOG2E,
        HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n,
    )  # fmt: skip
    return dq


def _saved_state(q, k, v, do):
    """What the forward pass and the preprocess kernel hand over: lse (base 2) and delta."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = (q.double() @ k.double().transpose(-2, -1)) * scale
    p = torch.softmax(s, dim=-1)
    lse2 = torch.logsumexp(s, dim=-1) / math.log(2)
    delta = (do.double() * (p @ v.double())).sum(-1)
    return p, lse2.float(), delta.float()


def _formulas(q, k, v, do, p, delta, block_n):
    """The right dQ and the wrong ones a learner is likely to compute, all in float64."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    k64, dp = k.double(), do.double() @ v.double().transpose(-2, -1)
    delta = delta.double()
    n = q.shape[-2]
    ds = p * (dp - delta[..., :, None])
    # delta[None, :] inside a square tile subtracts, from column c of a key tile, the delta of
    # the tile's query (tile start + c): in the whole matrix, query tile start + (j mod BLOCK_N)
    rows = torch.arange(n)[:, None]
    cols = torch.arange(n)[None, :]
    index = (rows // block_n) * block_n + cols % block_n  # past N the load gives other=0
    padded = torch.cat([delta, torch.zeros_like(delta[..., :block_n])], dim=-1)
    wrong_axis = p * (dp - padded[..., index.to(delta.device)])
    # delta summed over this key tile only, the row reduction a program holding one tile can do
    pd = p * dp
    tiles = -(-n // block_n)
    padded_pd = torch.nn.functional.pad(pd, (0, tiles * block_n - n))
    tile_sums = padded_pd.reshape(*pd.shape[:-1], tiles, block_n).sum(-1)
    tile_delta = tile_sums.repeat_interleave(block_n, dim=-1)[..., :n]
    return {
        "right": scale * ds @ k64,
        "no delta": scale * pd @ k64,
        "delta from one tile": scale * (p * (dp - tile_delta)) @ k64,
        "delta along the wrong axis": scale * wrong_axis @ k64,
        "no scale": ds @ k64,
        "base-2 scale": scale * LOG2E * ds @ k64,
    }


HINTS = {
    "no delta": "dS = P * (dP - delta): you left out delta. The softmax's Jacobian subtracts, "
    "from every dP of a row, that row's sum of P * dP, which is delta (loaded for you).",
    "delta from one tile": "you summed P * dP over this key tile only. delta is that sum over "
    "the whole row, all N keys, which no program holding one tile of keys can compute: that is "
    "why it is computed beforehand, as rowsum(dO * O), and loaded. Subtract the loaded delta.",
    "delta along the wrong axis": "delta has one value per query row, and the rows of dp are "
    "the queries: subtract delta[:, None] (a column), not delta[None, :].",
    "no scale": "S = sm_scale * Q K^T, so dQ = sm_scale * dS K: multiply dq by sm_scale after "
    "the loop.",
    "base-2 scale": "you multiplied by qk_scale = sm_scale * log2(e), the factor that turns the "
    "scores into base-2 exponents. The gradient of S = sm_scale * Q K^T needs sm_scale itself.",
}


def _diagnose(name: str, dq: torch.Tensor, formulas: dict, where: str) -> None:
    right = formulas["right"]
    tol = 1e-2 * right.abs().max().item() + 1e-3
    near_right = (dq.double() - right).abs().max().item() <= tol
    for mistake, hint in HINTS.items():
        if near_right or not torch.isfinite(dq).all():
            break
        if (dq.double() - formulas[mistake]).abs().max() <= tol:
            raise WrongAnswer(f"{name}: dQ is wrong ({where}): {hint}")
    # fp16 inputs (a GPU): P and dS are rounded to fp16 for the products, as in the lesson's
    # kernel; 1% of the largest value is far below any of the mistakes above
    largest = right.abs().max().item()
    tol = {"rtol": 1e-2, "atol": 1e-2 * largest} if dq.dtype == torch.float16 else {}
    try:
        check_close(dq, right, name=f"{name}: dQ ({where})", quiet=True, **tol)
    except WrongAnswer as error:
        if near_right and torch.isfinite(dq).all():
            raise WrongAnswer(
                f"{error}\nYour dQ is within 1% of the reference but not within {dq.dtype}'s "
                "rounding: a partial result went through a lower precision. Accumulate in fp32 "
                "(dq = tl.zeros(..., dtype=tl.float32) passed to tl.dot as its accumulator) "
                "and cast only tl.dot's inputs, not its result, to fp16."
            ) from None
        raise WrongAnswer(f"{error}\nCheck each line against dP = dO V^T, dS = P * (dP - "
                          f"delta[:, None]), dQ += dS K, in that order of operands. {SHAPES}"
                          ) from None


def _overflow_inputs(device, n: int = 64, d: int = 16):
    """fp16 inputs whose dQ partial sums reach about 1.5e6 (fp16 stops at 65504, fp32 does not).

    Q = 0 makes every probability 1/n; V and K carry +-1 and +-30000 in their first column and
    dO is 200 there, so each key tile adds about 16 * 3.125 * 30000 = 1.5e6 to dQ's first column.
    """
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2)
    q = torch.zeros(1, 1, n, d)
    k, v, do = torch.zeros(1, 1, n, d), torch.zeros(1, 1, n, d), torch.zeros(1, 1, n, d)
    v[..., 0], k[..., 0], do[..., 0] = sign, 3e4 * sign, 200.0
    return (t.to(device=device, dtype=torch.float16) for t in (q, k, v, do))


def check_dq_update(kernel) -> None:
    """``kernel(Q, K, V, DO, LSE, DELTA, DQ, N, sm_scale, qk_scale, HEAD_DIM, BLOCK_M, BLOCK_N)``
    must write ``dQ`` of attention: float64 formulas on random inputs, lengths that are not
    multiples of the tiles, square and non-square tiles, and an fp32 accumulator."""
    name = "dq_kernel"
    env = configure()
    dtype = torch.float16 if env.on_gpu else torch.float32
    gen = torch.Generator(device=env.device).manual_seed(21)
    # square tiles first: there a transposed tile still fits, and the values show the mistake
    cases = [((1, 2, 50, 16), 16, 16), ((2, 1, 77, 32), 32, 16), ((1, 1, 40, 16), 16, 32)]
    for shape, block_m, block_n in cases:
        q, k, v, do = (torch.randn(*shape, device=env.device, dtype=dtype, generator=gen)
                       for _ in range(4))  # fmt: skip
        p, lse, delta = _saved_state(q, k, v, do)
        where = f"shape {shape}, BLOCK_M={block_m}, BLOCK_N={block_n}"
        try:
            with learner_code(name):
                dq = _launch(kernel, q, k, v, do, lse, delta, dtype, block_m, block_n)
        except WrongAnswer as error:
            if "raised an error" in str(error):
                raise WrongAnswer(
                    f"{error}\n({where}) {SHAPES} A shape mismatch usually means a missing or "
                    "extra transpose: dP = dO V^T, dQ += dS K."
                ) from None
            raise
        _diagnose(name, dq, _formulas(q, k, v, do, p, delta, block_n), where)
    q, k, v, do = _overflow_inputs(env.device)
    p, lse, delta = _saved_state(q, k, v, do)
    with learner_code(name):
        dq = _launch(kernel, q, k, v, do, lse, delta, torch.float32, 16, 16)
    right = _formulas(q, k, v, do, p, delta, 16)["right"]
    if not torch.isfinite(dq).all():
        raise WrongAnswer(
            f"{name}: with fp16 inputs whose dQ is up to {right.abs().max().item():.3g} (stored "
            "as fp32), your dQ holds inf or NaN: part of the sum went through fp16, whose largest "
            "value is 65504. Accumulate in fp32: dq = tl.zeros([BLOCK_M, HEAD_DIM], "
            "dtype=tl.float32), and pass it to tl.dot as the accumulator, tl.dot(a, b, dq), "
            "without casting the product to fp16."
        )
    check_close(dq, right, name=f"{name}: dQ (fp16 inputs, large partial sums)", quiet=True,
                rtol=1e-2, atol=1e-2 * right.abs().max().item())
    passed(name, f"dQ matches float64 formulas for {len(cases)} shapes (square and non-square "
                 "tiles, N not a multiple of them) and stays finite where fp16 partial sums "
                 "would overflow")
