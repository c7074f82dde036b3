"""Timing the capstone: prefill, decode steps, and where the time of a step goes.

On a GPU every time is CUDA events; on a CPU (Triton's interpreter, the tiny configuration) the
same functions run with wall-clock times and without CUDA graphs, so that the benchmark's logic can
be tried anywhere. CPU times say nothing about a GPU.

* :func:`time_prefill` - one forward pass over the prompt (logits for the last token only, as a
  generator needs), median of :func:`course.timing.bench` (``do_bench`` on a GPU).
* :func:`time_decode` - ``steps`` consecutive decode steps after a prompt, timed as a whole with
  CUDA events (host time included: that is what a user waits for), median of a few runs. Each step
  feeds fixed tokens; choosing the next token (an argmax) is left out for every contender alike.
* :func:`capture` - any step function recorded once in a CUDA graph and replayed.
* :func:`kernel_breakdown` - each kernel of one forward pass timed alone at the model's shapes,
  times its launches per pass, beside its ceiling: the bytes it must move at the measured copy
  bandwidth or the FLOPs it must do at the measured cuBLAS rate, whichever takes longer.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from ..env import configure
from ..kernels import decode_attention as dec
from ..kernels import gqa_attention as gqa
from ..kernels import linear as lin
from ..kernels import rmsnorm as rms
from ..kernels import rope
from ..timing import bench
from .config import LlamaConfig, rope_tables


def time_prefill(model, prompt: torch.Tensor, cache) -> float:
    """Milliseconds for one prefill of ``prompt`` (the cache is emptied before each)."""

    def run():
        cache.reset()
        model(prompt, cache, last_only=True)

    return bench(run, warmup_ms=50, rep_ms=300).ms


def _synchronize():
    if configure().on_gpu:
        torch.cuda.synchronize()


def time_decode(step, cache, start: int, steps: int, *, repeats: int = 3) -> float:
    """Milliseconds per decode step: ``steps`` calls of ``step()`` after ``start`` cached tokens
    (CUDA events around the loop on a GPU, wall clock on a CPU), median of ``repeats`` runs after
    one to warm up."""
    times = []
    for _ in range(repeats + 1):
        cache.length = start
        cache.position.fill_(start)
        _synchronize()
        if configure().on_gpu:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
        else:
            began = time.perf_counter()
        for _ in range(steps):
            step()
        if configure().on_gpu:
            end.record()
            torch.cuda.synchronize()
            times.append(begin.elapsed_time(end) / steps)
        else:
            times.append((time.perf_counter() - began) * 1e3 / steps)
    return statistics.median(times[1:])


def capture(fn):
    """``fn`` recorded in a CUDA graph after a warm-up on a side stream: returns a replayer and the
    outputs the graph writes to. On a CPU there are no graphs: the replayer calls ``fn``."""
    if not configure().on_gpu:
        return fn, None
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph.replay, out


def _bench(fn) -> float:
    return bench(fn).ms


def kernel_breakdown(config: LlamaConfig, *, batch: int, tokens: int, start: int, dtype,
                     bandwidth_gbs: float, matmul_tflops: float) -> list[dict]:  # fmt: skip
    """Per-kernel time of one forward pass of ``batch`` sequences of ``tokens`` new tokens after
    ``start`` cached ones (``tokens=1``: a decode step), with each kernel's ceiling."""
    c, e = config, torch.tensor([], dtype=dtype).element_size()
    dev = configure().device
    m = batch * tokens
    rows = []

    def add(name, fn, calls, nbytes, flops=0.0):
        ms = _bench(fn)
        memory_ms = nbytes / (bandwidth_gbs * 1e9) * 1e3
        compute_ms = flops / (matmul_tflops * 1e12) * 1e3
        rows.append({
            "kernel": name, "calls": calls, "ms_per_call": ms, "ms_total": ms * calls,
            "ceiling_ms_per_call": max(memory_ms, compute_ms),
            "bound": "compute" if compute_ms > memory_ms else "memory",
        })  # fmt: skip

    x = torch.randn(m, c.hidden, device=dev, dtype=dtype)
    w = torch.ones(c.hidden, device=dev, dtype=dtype)
    layers = c.n_layers
    add("rmsnorm", lambda: rms.rmsnorm(x, w, c.norm_eps), 2 * layers + 1, 2 * m * c.hidden * e)
    products = [("linear qkv", c.qkv_width, c.hidden, "none"),
                ("linear o + residual", c.hidden, c.n_heads * c.head_dim, "residual"),
                ("linear gate/up + swiglu", 2 * c.ffn, c.hidden, "swiglu"),
                ("linear down + residual", c.hidden, c.ffn, "residual")]  # fmt: skip
    for name, n, k, epilogue in products:
        a = torch.randn(m, k, device=dev, dtype=dtype)
        wt = torch.randn(n, k, device=dev, dtype=dtype) / math.sqrt(k)
        n_out = n // 2 if epilogue == "swiglu" else n
        res = torch.randn(m, n_out, device=dev, dtype=dtype) if epilogue == "residual" else None
        out = torch.empty(m, n_out, device=dev, dtype=dtype)
        nbytes = (m * k + n * k + m * n_out * (2 if res is not None else 1)) * e
        add(name, lambda: lin.linear(a, wt, epilogue, residual=res, out=out), layers, nbytes,
            2.0 * m * n * k)  # fmt: skip
    head_rows = batch  # logits of the last token of each sequence
    a = torch.randn(head_rows, c.hidden, device=dev, dtype=dtype)
    wt = torch.randn(c.vocab, c.hidden, device=dev, dtype=dtype) / math.sqrt(c.hidden)
    add("linear output head", lambda: lin.linear(a, wt), 1,
        (head_rows * c.hidden + c.vocab * c.hidden + head_rows * c.vocab) * e,
        2.0 * head_rows * c.vocab * c.hidden)  # fmt: skip
    tok = torch.randint(0, c.vocab, (batch, tokens), device=dev)
    table = torch.randn(c.vocab, c.hidden, device=dev, dtype=dtype)
    add("embedding", lambda: rms.embedding(tok, table), 1, 2 * m * c.hidden * e)

    cos, sin = rope_tables(c, dev)
    shape = (batch, c.n_kv_heads, c.max_seq, c.head_dim)
    k_cache, v_cache = (
        torch.randn(shape, device=dev, dtype=dtype),
        torch.randn(shape, device=dev, dtype=dtype),
    )
    qkv = torch.randn(batch, tokens, c.qkv_width, device=dev, dtype=dtype)
    pos = torch.tensor([start], device=dev, dtype=torch.int32)
    add("rope + cache write",
        lambda: rope.rope_qkv(qkv, cos, sin, pos, k_cache, v_cache, c.n_heads, start=start), layers,
        (m * c.qkv_width * 2) * e)  # fmt: skip
    q = torch.randn(batch, tokens, c.n_heads, c.head_dim, device=dev, dtype=dtype)
    keys = start + tokens
    kv_bytes = 2 * batch * c.n_kv_heads * keys * c.head_dim * e
    if tokens == 1:
        add("decode attention (split + combine)",
            lambda: dec.decode_attention(q, k_cache, v_cache, pos), layers,
            kv_bytes + 2 * q.numel() * e, 4.0 * batch * c.n_heads * keys * c.head_dim)  # fmt: skip
    else:
        causal_flops = 4.0 * batch * c.n_heads * c.head_dim * (tokens * start + tokens**2 / 2)
        add("gqa attention", lambda: gqa.gqa_attention(q, k_cache, v_cache, start), layers,
            kv_bytes + 2 * q.numel() * e, causal_flops)  # fmt: skip
    return rows
