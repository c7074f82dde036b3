"""Checks of the capstone at any size: each kernel alone, then the whole model.

:func:`check_kernels` runs every kernel of the model at the shapes of a given configuration (and
ragged ones around them) against float64 on the same inputs. :func:`check_model` compares the
course model's logits, for a prefill and then for each decode step, with an fp32 run of the torch
reference, and holds them to the standard of torch itself: in bf16, our error against fp32 may not
be much larger than eager torch's own bf16 error against fp32 (the rounding of bf16 activations
through 16 layers is the same for both; a bug is far larger). The lesson, the tests and
``benchmarks/bench_llm.py`` all call these, so the same checks run on a laptop and on the GPU.
"""

from __future__ import annotations

import math

import torch

from ..check import WrongAnswer, check_close
from ..kernels import decode_attention as dec
from ..kernels import gqa_attention as gqa
from ..kernels import linear as lin
from ..kernels import rmsnorm as rms
from ..kernels import rope
from .config import LlamaConfig, rope_tables
from .reference import apply_rope, rms_norm

# Allowed error against float64 for one kernel's output, by dtype: (rtol, atol). bf16 keeps 8 bits
# of mantissa (relative rounding 2^-9 each time a value is stored); the rest is accumulation.
KERNEL_TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 2e-2),
                    torch.float16: (4e-3, 4e-3)}  # fmt: skip


def _rand(shape, device, dtype, seed, scale=1.0):
    gen = torch.Generator(device=device).manual_seed(seed)
    return (torch.randn(shape, device=device, generator=gen) * scale).to(dtype)


def attention_reference(q, k, v, start):
    """float64 causal GQA attention: q (B, T, H, D) at positions ``start ..``, caches
    (B, Hkv, S, D) of which the first ``start + T`` positions are used."""
    b, t, h, d = q.shape
    group = h // k.shape[1]
    keys = k[:, :, : start + t].double().repeat_interleave(group, 1)
    values = v[:, :, : start + t].double().repeat_interleave(group, 1)
    scores = q.double().transpose(1, 2) @ keys.transpose(-1, -2) / math.sqrt(d)
    visible = torch.ones(t, start + t, dtype=torch.bool, device=q.device).tril(start)
    scores = scores.masked_fill(~visible, float("-inf"))
    return (scores.softmax(-1) @ values).transpose(1, 2)


def check_kernels(config: LlamaConfig, *, device, dtype, prompt: int, batches=(1,)) -> list[str]:
    """Every kernel of the model at ``config``'s widths, against float64; return what was checked.

    Token counts: the prompt length, a ragged count, and one (decode). Attention: a prefill of the
    prompt, a ragged chunk after a ragged offset, and decode steps at ragged cache lengths for
    each batch size.
    """
    c = config
    rtol, atol = KERNEL_TOLERANCE[dtype]
    done = []

    def close(got, want, what):
        check_close(got, want, name=what, rtol=rtol, atol=atol, quiet=True)
        done.append(what)

    ragged = max(1, prompt // 3 + 5)
    for tokens in (prompt, ragged, 1):
        x = _rand((tokens, c.hidden), device, dtype, 0)
        w = _rand((c.hidden,), device, dtype, 1, 0.1) + 1
        close(rms.rmsnorm(x, w, c.norm_eps), rms_norm(x.double(), w.double(), c.norm_eps),
              f"rmsnorm {tokens}x{c.hidden}")  # fmt: skip
        products = {"qkv": (c.qkv_width, c.hidden, "none"),
                    "o + residual": (c.hidden, c.n_heads * c.head_dim, "residual"),
                    "gate/up + swiglu": (2 * c.ffn, c.hidden, "swiglu"),
                    "down + residual": (c.hidden, c.ffn, "residual")}  # fmt: skip
        if tokens == 1:
            products["output head"] = (c.vocab, c.hidden, "none")
        for name, (n, k, epilogue) in products.items():
            a = _rand((tokens, k), device, dtype, 2)
            wt = _rand((n, k), device, dtype, 3, 1 / math.sqrt(k))
            res = _rand((tokens, n), device, dtype, 4) if epilogue == "residual" else None
            want = lin.linear_reference(a.double(), wt.double(), epilogue,
                                        None if res is None else res.double())  # fmt: skip
            close(lin.linear(a, wt, epilogue, residual=res), want, f"linear {name} {tokens}x{n}")

    cos, sin = rope_tables(c, device)
    for batch, t, start in ((1, prompt, 0), (2, ragged, min(prompt // 2 + 3, c.max_seq - ragged))):
        qkv = _rand((batch, t, c.qkv_width), device, dtype, 5)
        shape = (batch, c.n_kv_heads, c.max_seq, c.head_dim)
        k_cache = _rand(shape, device, dtype, 6)  # earlier positions: random "cached" keys
        v_cache = _rand(shape, device, dtype, 7)
        pos = torch.tensor([start], device=device, dtype=torch.int32)
        q = rope.rope_qkv(qkv, cos, sin, pos, k_cache, v_cache, c.n_heads, start=start)
        heads = qkv.double().view(batch, t, -1, c.head_dim)
        cs, sn = cos[start : start + t].double(), sin[start : start + t].double()
        close(q, apply_rope(heads[:, :, : c.n_heads], cs, sn), f"rope q {batch}x{t}@{start}")
        k_new = apply_rope(heads[:, :, c.n_heads : c.n_heads + c.n_kv_heads], cs, sn)
        close(k_cache[:, :, start : start + t], k_new.transpose(1, 2), "rope k into the cache")
        out = gqa.gqa_attention(q, k_cache, v_cache, start)
        close(out, attention_reference(q, k_cache, v_cache, start),
              f"gqa attention {batch}x{t} after {start}")  # fmt: skip

    for batch in batches:
        shape = (batch, c.n_kv_heads, c.max_seq, c.head_dim)
        k_cache, v_cache = _rand(shape, device, dtype, 8), _rand(shape, device, dtype, 9)
        for position in (prompt - 1, min(c.max_seq - 1, prompt + 37)):
            q = _rand((batch, 1, c.n_heads, c.head_dim), device, dtype, 10)
            pos = torch.tensor([position], device=device, dtype=torch.int32)
            out = dec.decode_attention(q, k_cache, v_cache, pos)
            close(out, attention_reference(q, k_cache, v_cache, position),
                  f"decode attention batch {batch}, {position + 1} keys")  # fmt: skip
    return done


def relative_error(logits: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest absolute difference, in units of the reference logits' standard deviation."""
    ref = reference.float()
    return float((logits.float() - ref).abs().max() / ref.std())


def check_model(ours, reference32, *, peer=None, prompt: torch.Tensor, steps: int,
                floor: float = 1e-4, factor: float = 2.0) -> list[dict]:  # fmt: skip
    """Logits of ``ours`` against ``reference32`` (fp32 or fp64) for the prefill of ``prompt`` and
    ``steps`` decode steps (feeding the reference's greedy tokens to both).

    With a ``peer`` (eager torch in the same low precision as ``ours``), each error may be at most
    ``factor`` times the peer's (or ``floor``, whichever is larger); without one, at most
    ``floor``. Returns one row per step, ``{"step", "ours", "torch"}`` errors in units of the
    logits' standard deviation."""
    models = [ours, reference32] + ([peer] if peer is not None else [])
    caches = [m.new_cache(prompt.shape[0]) for m in models]
    feed, rows = prompt, []
    for step in range(steps + 1):
        logits = [m(feed, cache) for m, cache in zip(models, caches, strict=True)]
        ours_err = relative_error(logits[0], logits[1])
        peer_err = relative_error(logits[2], logits[1]) if peer is not None else None
        allowed = max(floor, factor * peer_err) if peer is not None else floor
        what = "prefill" if step == 0 else f"decode step {step}"
        rows.append({"step": what, "ours": ours_err, "torch": peer_err})
        if not ours_err <= allowed:
            raise WrongAnswer(
                f"{what}: the course model's logits differ from the fp32 reference by "
                f"{ours_err:.3g} standard deviations, more than the {allowed:.3g} allowed"
                + (f" (eager torch in the same dtype: {peer_err:.3g})" if peer is not None else "")
            )
        feed = logits[1][:, -1:].argmax(-1)
    return rows
