"""Benchmark the capstone: a Llama-3.2-1B-shaped decoder on the course's kernels, against torch.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_llm.py [--out DIR]
[--budget-s SECONDS] [--no-compile]

On a GPU, at Llama-3.2-1B's shapes in bf16 with deterministic random weights (nothing is
downloaded), in this order, writing ``llm.json`` after every stage so a run cut short keeps what
it measured:

1. correctness: every kernel at full size (and ragged sizes) against float64; the model's logits
   for a 2048-token prefill and 4 decode steps against an fp32 run of the torch reference, held
   to eager bf16 torch's own error; 16 greedy tokens against the fp32 reference;
2. prefill, batch 1, 2048 tokens: course kernels, torch eager, torch.compile;
3. decode, batch 1 and 16, 128 steps after a 2048-token prompt: course kernels per call and
   replayed from a CUDA graph; torch eager per call and from a CUDA graph (its static-cache
   form); torch.compile (default mode) from a CUDA graph;
4. the time of each kernel of one prefill and one decode step against its ceiling, and a bar chart.

``--budget-s`` skips the torch.compile rows when too little time is left for compiling. Without a
GPU it runs stages 1 to 4 at the tiny configuration through Triton's interpreter, without CUDA
graphs or torch.compile, and stops at the first error: a dry run of the script's logic, whose
times are CPU wall-clock and mean nothing for a GPU (pass ``--out`` to keep its file apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402

# On a GPU: Llama-3.2-1B's shapes. On a CPU (a dry run of the script's logic through Triton's
# interpreter, at the tiny configuration): a short prompt, a few steps, batches of 1 and 3.
GPU_SIZES = {"PROMPT": 2048, "NEW_TOKENS": 128, "BATCHES": (1, 16)}
CPU_SIZES = {"PROMPT": 12, "NEW_TOKENS": 4, "BATCHES": (1, 3)}
PROMPT, NEW_TOKENS, BATCHES = GPU_SIZES.values()


class Record:
    """Results so far, rewritten to disk after every stage."""

    def __init__(self, out: Path | None):
        self.out, self.fields, self.rows = out, {}, []

    def save(self):
        path = course.results.record(
            "llm", self.rows, directory=self.out, notes=NOTES, **self.fields
        )
        print(f"  (saved {path})", flush=True)
        return path


NOTES = (
    "Llama-3.2-1B shapes (hidden 2048, 16 layers, 32/8 heads of 64, ffn 8192, vocab 128256), bf16, "
    "random weights (seed 0). Prefill: batch 1, 2048 tokens, logits of the last token, do_bench "
    "median. Decode: 128 consecutive steps after a 2048-token prompt, CUDA events around the whole "
    "loop (host time included), median of 3 runs after a warm-up, fixed input tokens (no argmax). "
    "'graph' rows replay each step from a CUDA graph. torch rows: eager = cuBLAS + SDPA with GQA; "
    "the CUDA-graph and torch.compile decode rows use the static-cache form (attention over the "
    "whole cache, masked) so every step has the same shapes."
)


def correctness(env, rec, config, weights, dtype):
    import torch

    from course.llm import CourseLlama, TorchLlama, compare_generations, greedy_generate
    from course.llm.verify import check_kernels, check_model

    t0 = time.perf_counter()
    done = check_kernels(config, device=env.device, dtype=dtype, prompt=PROMPT, batches=BATCHES)
    print(f"kernels: {len(done)} checks against float64 passed ({time.perf_counter() - t0:.0f} s)")
    ours = CourseLlama(weights, config)
    ref32 = TorchLlama(weights, config, dtype=torch.float32)
    peer = TorchLlama(weights, config) if dtype != torch.float32 else None
    n = PROMPT
    prompt = torch.randint(0, config.vocab, (1, n), device=env.device,
                           generator=torch.Generator(env.device).manual_seed(1))  # fmt: skip
    rows = check_model(ours, ref32, peer=peer, prompt=prompt, steps=4, floor=1e-4)
    for r in rows:
        peer_text = f", eager torch {r['torch']:.4f}" if r["torch"] is not None else ""
        print(f"  {r['step']:>14}: course kernels {r['ours']:.4f}{peer_text} (max |error| / std)")
    n_new = min(16, NEW_TOKENS)
    tokens, _ = greedy_generate(ours, prompt, n_new)
    ref_tokens, ref_logits = greedy_generate(ref32, prompt, n_new)
    # a near tie: a gap within twice the largest logit error bf16 torch itself makes
    scale = float(ref_logits[0].std())
    worst = max((r["torch"] or r["ours"]) for r in rows)
    tie = 2 * worst * scale if dtype != torch.float32 else 1e-4
    agreement = compare_generations(tokens, ref_tokens, ref_logits, tie=tie)
    print(f"greedy, {n_new} tokens, course kernels vs fp32 reference: {agreement.message}")
    rec.fields["checks"] = {
        "kernels": done, "logits": rows, "greedy": agreement.message,
        "greedy_tokens": tokens.tolist(), "reference_tokens": ref_tokens.tolist(),
    }  # fmt: skip
    del ref32, peer
    torch.cuda.empty_cache() if env.on_gpu else None
    return ours


def prefill_rows(rec, config, ours, eager):
    import torch

    from course.llm.speed import time_prefill

    prompt = torch.randint(0, config.vocab, (1, PROMPT), device=course.configure().device)
    contenders = {"course kernels": ours, "torch eager": eager}
    for name, model in contenders.items():
        cache = model.new_cache(1)
        ms = time_prefill(model, prompt, cache)
        rec.rows.append({"phase": "prefill", "batch": 1, "tokens": PROMPT, "who": name,
                         "cuda_graph": False, "ms": ms,
                         "tokens_per_s": PROMPT / ms * 1e3})  # fmt: skip
        print(f"prefill {name:>22}: {ms:7.2f} ms, {PROMPT / ms * 1e3:9.0f} tokens/s")


def decode_rows(rec, config, ours, eager, batch):
    import torch

    from course.llm import GraphedDecodeStep
    from course.llm.speed import capture, time_decode

    prompt = torch.randint(0, config.vocab, (batch, PROMPT), device=course.configure().device)
    feed = prompt[:, -1:].contiguous()

    def add(who, graph, ms, **extra):
        rec.rows.append({"phase": "decode", "batch": batch, "prompt": PROMPT, "steps": NEW_TOKENS,
                         "who": who, "cuda_graph": graph, "ms_per_step": ms,
                         "tokens_per_s": batch / ms * 1e3, **extra})  # fmt: skip
        print(f"decode b={batch:<2} {who:>22}{' (graph)' if graph else '        '}: "
              f"{ms:7.3f} ms/step, {batch / ms * 1e3:8.0f} tokens/s", flush=True)  # fmt: skip

    cache = ours.new_cache(batch)
    ours(prompt, cache, last_only=True)
    ms = time_decode(lambda: ours(feed, cache, last_only=True), cache, PROMPT, NEW_TOKENS)
    add("course kernels", False, ms)
    cache.length = PROMPT  # back to the prompt: the timed steps above filled the cache
    cache.position.fill_(PROMPT)
    step = GraphedDecodeStep(ours, cache)
    graphs = course.configure().on_gpu  # a CPU dry run has no CUDA graphs: say so in the record
    add("course kernels", graphs, time_decode(lambda: step(feed), cache, PROMPT, NEW_TOKENS))
    step = cache = None  # free the memory before the next contender
    torch.cuda.empty_cache()

    cache = eager.new_cache(batch)
    eager(prompt, cache, last_only=True)
    ms = time_decode(lambda: eager(feed, cache, last_only=True), cache, PROMPT, NEW_TOKENS)
    add("torch eager", False, ms)
    cache.position.fill_(PROMPT)  # the warm-up before capturing runs one step at this position
    replay, _ = capture(
        lambda: eager.forward_launches(feed, cache, None, last_only=True, static=True)
    )
    add("torch eager", graphs, time_decode(replay, cache, PROMPT, NEW_TOKENS))
    cache = None
    torch.cuda.empty_cache()


def breakdown(rec, config, dtype, out_dir):
    from course.llm.speed import kernel_breakdown
    from course.timing import copy_bandwidth, matmul_ceiling

    bw, peak = copy_bandwidth(), matmul_ceiling(dtype)
    rec.fields["ceilings"] = {"copy_gbs": bw, "cublas_tflops": peak, "dtype": str(dtype)}
    print(f"ceilings: copy {bw:.0f} GB/s, cuBLAS {peak:.0f} TFLOP/s ({dtype})")
    parts = {}
    phases = [("prefill b=1", 1, PROMPT, 0)] + [(f"decode b={b}", b, 1, PROMPT) for b in BATCHES]
    for label, batch, tokens, start in phases:
        rows = kernel_breakdown(config, batch=batch, tokens=tokens, start=start, dtype=dtype,
                                bandwidth_gbs=bw, matmul_tflops=peak)  # fmt: skip
        parts[label] = rows
        total = sum(r["ms_total"] for r in rows)
        print(f"{label}: kernels alone add up to {total:.3f} ms")
        for r in rows:
            print(f"   {r['kernel']:>36}: {r['calls']:>3} x {r['ms_per_call'] * 1e3:8.1f} us "
                  f"(ceiling {r['ceiling_ms_per_call'] * 1e3:8.1f} us, {r['bound']})")  # fmt: skip
    rec.fields["breakdown"] = parts
    try:
        from course.llm.plots import breakdown_chart

        fig = breakdown_chart(parts, title=f"Where a step's time goes ({rec.fields.get('device')})")
        fig.savefig(out_dir / "llm_breakdown.png", dpi=120, bbox_inches="tight")
    except Exception as error:  # noqa: BLE001 - the numbers are saved either way
        print(f"(no chart: {error})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default: the repo's)"
    )
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    env = course.setup(verbose=False)
    import torch
    import triton

    from course.llm import LLAMA_3_2_1B, TINY, CourseLlama, TorchLlama, random_weights

    print(f"torch {torch.__version__}, triton {triton.__version__}, {env.device_name}", flush=True)
    global PROMPT, NEW_TOKENS, BATCHES
    PROMPT, NEW_TOKENS, BATCHES = (GPU_SIZES if env.on_gpu else CPU_SIZES).values()
    rec = Record(args.out)
    dtype = torch.bfloat16 if env.on_gpu else torch.float32  # the interpreter: no bf16 tl.dot
    config = (LLAMA_3_2_1B if env.on_gpu else TINY).with_(max_seq=PROMPT + NEW_TOKENS)
    weights = random_weights(config, device=env.device, dtype=dtype, seed=0)
    rec.fields.update(config=config.as_dict(), dtype=str(dtype))
    try:
        ours = correctness(env, rec, config, weights, dtype)
    except Exception as error:  # noqa: BLE001 - a failed check is recorded, and timing goes on
        if not env.on_gpu:  # a dry run on the CPU is for finding mistakes: stop at the first
            raise
        import traceback

        traceback.print_exc()
        rec.fields["checks_failed"] = f"{type(error).__name__}: {error}"[:2000]
        ours = CourseLlama(weights, config)
    path = rec.save()
    eager = TorchLlama(weights, config)

    def compile_ok():
        left = args.budget_s - (time.perf_counter() - started)
        if args.no_compile or not env.on_gpu or left < 120:
            print(f"(torch.compile skipped: {left:.0f} s of the budget left)")
            return False
        return True

    out_dir = path.parent
    stages = [lambda: prefill_rows(rec, config, ours, eager)]
    stages += [lambda b=b: decode_rows(rec, config, ours, eager, b) for b in BATCHES]
    stages += [lambda: breakdown(rec, config, dtype, out_dir)]
    stages += [lambda: prefill_compiled(rec, config, eager, compile_ok)]
    stages += [lambda b=b: decode_compiled(rec, config, eager, b, compile_ok) for b in BATCHES]
    for stage in stages:
        try:
            stage()
        except Exception as error:  # noqa: BLE001 - record it and go on to the next stage
            if not env.on_gpu:
                raise
            import traceback

            traceback.print_exc()
            rec.fields.setdefault("errors", []).append(f"{type(error).__name__}: {error}"[:500])
        rec.save()
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def prefill_compiled(rec, config, eager, compile_ok):
    """The torch.compile prefill row alone (run last: compiling takes the longest)."""
    if not compile_ok():
        return
    import torch
    import triton.testing

    prompt = torch.randint(0, config.vocab, (1, PROMPT), device=course.configure().device)
    cache = eager.new_cache(1)
    t0 = time.perf_counter()
    fn = torch.compile(lambda toks: eager.forward_launches(toks, cache, 0, last_only=True))
    fn(prompt)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    ms = float(
        triton.testing.do_bench(lambda: fn(prompt), warmup=50, rep=300, return_mode="median")
    )
    rec.rows.append({"phase": "prefill", "batch": 1, "tokens": PROMPT, "who": "torch.compile",
                     "cuda_graph": False, "ms": ms, "tokens_per_s": PROMPT / ms * 1e3,
                     "compile_s": compile_s})  # fmt: skip
    print(f"prefill {'torch.compile':>22}: {ms:7.2f} ms (compiled in {compile_s:.0f} s)")


def decode_compiled(rec, config, eager, batch, compile_ok):
    """The torch.compile decode row (default mode, replayed from a CUDA graph)."""
    if not compile_ok():
        return
    import torch

    from course.llm.speed import capture, time_decode

    cache = eager.new_cache(batch)
    feed = torch.randint(0, config.vocab, (batch, 1), device=course.configure().device)
    t0 = time.perf_counter()
    fn = torch.compile(lambda toks: eager.forward_launches(toks, cache, None, last_only=True,
                                                           static=True))  # fmt: skip
    cache.position.fill_(PROMPT)
    fn(feed)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    replay, _ = capture(lambda: fn(feed))
    ms = time_decode(replay, cache, PROMPT, NEW_TOKENS)
    rec.rows.append({"phase": "decode", "batch": batch, "prompt": PROMPT, "steps": NEW_TOKENS,
                     "who": "torch.compile", "cuda_graph": True, "ms_per_step": ms,
                     "tokens_per_s": batch / ms * 1e3, "compile_s": compile_s})  # fmt: skip
    print(f"decode b={batch:<2} {'torch.compile':>22} (graph): {ms:7.3f} ms/step "
          f"(compiled in {compile_s:.0f} s)")  # fmt: skip
    cache = None
    torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
