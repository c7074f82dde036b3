"""Benchmark lesson 4's flash attention against its peers, forward and backward.

Peers, all measured in the same run on the same random data:

* ``naive``: textbook torch attention that materialises the N x N matrices (only where it fits);
* ``sdpa-flash``: ``torch.nn.functional.scaled_dot_product_attention`` on its FlashAttention-2
  back end (``SDPBackend.FLASH_ATTENTION``);
* ``sdpa-cudnn``: the same call on NVIDIA's cuDNN back end (``SDPBackend.CUDNN_ATTENTION``).

Rates are TFLOP/s with the usual convention: forward = 4*B*H*N*N*D FLOPs, halved when causal;
backward = 2.5x the forward. Times are ``triton.testing.do_bench`` medians (``course.bench``).

usage::

    PYTHONPATH=. python3 benchmarks/bench_attention.py --out DIR [--quick] [--check]
        [--tune [ROUND ...]] [--no-bench] [--no-memory]

``--check`` first runs a correctness sweep (fp16/bf16, head_dim 64/128, N = 1000 and 4096,
causal or not, forward and backward) against a float32 torch reference, with SDPA-flash's error on
the same inputs beside ours, and for fp16 the forward with the other ``half_exp`` setting.
``--tune`` times the candidate tile configurations of the given tuning rounds (all if none given)
and, with round 2, the causal variants (the table shown in lesson 4); ``--no-bench`` stops after
that. ``--no-memory`` skips the peak-memory sweep. ``--quick`` benchmarks head_dim 128 only. On a
machine without a GPU the script runs the interpreter at the CPU sizes, which checks that it works,
not how fast anything is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from pathlib import Path

import torch

import course
from course.kernels.attention import (
    BwdConfig,
    FwdConfig,
    attention,
    attention_backward,
    attention_flops,
    attention_forward,
    default_bwd_config,
    default_fwd_config,
    naive_attention,
)

# Lesson targets on the H100: forward >= 1.3x SDPA's flash back end, backward >= 1x.
FWD_TARGET, BWD_TARGET = 1.3, 1.0

# Tuning rounds. Round 1: a first grid around the usual Hopper shapes. Round 2: neighbours of the
# round-1 winners (deeper pipelines, narrower key tiles). Each list is tried for causal and not.
TUNE_FWD: dict[int, dict[int, list[FwdConfig]]] = {
    1: {
        128: [
            FwdConfig(128, 64, 4, 3),
            FwdConfig(128, 64, 8, 3),
            FwdConfig(128, 64, 8, 4),
            FwdConfig(128, 128, 8, 2),
            FwdConfig(128, 128, 8, 3),
            FwdConfig(64, 64, 4, 3),
        ],
        64: [
            FwdConfig(128, 64, 4, 3),
            FwdConfig(128, 64, 4, 4),
            FwdConfig(128, 64, 8, 3),
            FwdConfig(128, 128, 4, 3),
            FwdConfig(128, 128, 8, 3),
            FwdConfig(64, 64, 4, 4),
        ],
    },
    2: {
        128: [FwdConfig(128, 128, 8, 4), FwdConfig(128, 64, 8, 2), FwdConfig(128, 32, 4, 3)],
        64: [
            FwdConfig(128, 64, 4, 2),
            FwdConfig(128, 64, 8, 4),
            FwdConfig(128, 32, 4, 3),
            FwdConfig(64, 32, 4, 3),
        ],
    },
    # Round 3: structural changes rather than tile sizes. half_exp computes the exponentials in
    # fp16, two per instruction (see _exp2_half); 256-row query tiles with 16 warps share each
    # key/value tile between four warp groups. The round-2 winners are timed again beside them.
    3: {
        128: [
            FwdConfig(128, 128, 8, 3),
            FwdConfig(128, 128, 8, 3, half_exp=True),
            FwdConfig(128, 64, 8, 3),
            FwdConfig(128, 64, 8, 3, half_exp=True),
        ],
        64: [
            FwdConfig(128, 64, 8, 4),
            FwdConfig(128, 64, 8, 4, half_exp=True),
            FwdConfig(128, 64, 8, 3, half_exp=True),
            FwdConfig(128, 64, 8, 2, half_exp=True),
            FwdConfig(128, 128, 8, 3, half_exp=True),
            FwdConfig(256, 64, 16, 3),
            FwdConfig(256, 64, 16, 3, half_exp=True),
            FwdConfig(256, 64, 16, 2, half_exp=True),
        ],
    },
}
TUNE_BWD: dict[int, dict[int, list[BwdConfig]]] = {
    1: {
        128: [BwdConfig(64, 128, 128, 64, 8, 2), BwdConfig(64, 128, 128, 64, 8, 3),
              BwdConfig(32, 128, 128, 32, 8, 3), BwdConfig(32, 128, 128, 32, 4, 3),
              BwdConfig(32, 64, 64, 32, 4, 3), BwdConfig(64, 64, 64, 64, 4, 2)],
        64: [BwdConfig(32, 128, 128, 32, 4, 3), BwdConfig(32, 128, 128, 32, 4, 5),
             BwdConfig(64, 128, 128, 64, 8, 3), BwdConfig(64, 128, 128, 64, 4, 3),
             BwdConfig(32, 64, 64, 32, 4, 3)],
    },
    2: {
        128: [BwdConfig(64, 128, 128, 64, 8, 4), BwdConfig(32, 128, 128, 32, 8, 4)],
        64: [BwdConfig(32, 128, 128, 32, 4, 4), BwdConfig(32, 64, 64, 32, 4, 4),
             BwdConfig(64, 64, 64, 64, 4, 3)],
    },
    3: {128: [], 64: []},  # round 3 is forward only
}  # fmt: skip
# The two causal-forward ideas measured one at a time (at each head dim's chosen config).
CAUSAL_VARIANTS = [
    {"split_diagonal": False, "heavy_first": False},
    {"split_diagonal": False, "heavy_first": True},
    {"split_diagonal": True, "heavy_first": False},
    {"split_diagonal": True, "heavy_first": True},
]


def log(msg: str) -> None:
    print(msg, flush=True)


def inputs(batch, heads, n, head_dim, dtype, device, grad=False):
    gen = torch.Generator(device=device).manual_seed(n * 131 + head_dim)
    return [
        torch.randn(
            batch, heads, n, head_dim, device=device, dtype=dtype, generator=gen
        ).requires_grad_(grad)
        for _ in range(3)
    ]


def sdpa(backend_name: str):
    """An attention function running SDPA on one named back end (None for torch's own choice)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[
        backend_name
    ]

    def run(q, k, v, causal):
        with sdpa_kernel(backend):
            return scaled_dot_product_attention(q, k, v, is_causal=causal)

    return run


def candidates(env, n, head_dim, batch, heads):
    fns = {
        "triton": lambda q, k, v, c: attention(q, k, v, causal=c),
        "sdpa-flash": sdpa("flash"),
        "sdpa-cudnn": sdpa("cudnn") if env.on_gpu else None,
    }
    # naive keeps (B, H, N, N) scores and probabilities, and their gradients: skip it where that
    # would not fit comfortably.
    scores_bytes = batch * heads * n * n * 2
    if not env.on_gpu or scores_bytes * 6 < 0.6 * torch.cuda.get_device_properties(0).total_memory:
        fns["naive"] = naive_attention
    return {k: v for k, v in fns.items() if v is not None}


def time_case(fn, q, k, v, causal):
    """(forward ms, backward ms) of one attention function."""
    fwd = course.bench(lambda: fn(q, k, v, causal))
    o = fn(q, k, v, causal)
    do = torch.randn_like(o)
    bwd = course.bench(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True))
    return fwd, bwd


def benchmark(env, cases, batch, n, alternatives: list[dict]):
    """Forward and backward of every peer; ``alternatives`` collects our forward with the other
    exponential (see ``FwdConfig.half_exp``), timed in the same run."""
    rows = []
    for head_dim, heads in cases:
        for causal in (False, True):
            q, k, v = inputs(batch, heads, n, head_dim, torch.float16, env.device, grad=True)
            ffl = attention_flops(batch, heads, n, head_dim, causal)
            bfl = attention_flops(batch, heads, n, head_dim, causal, backward=True)
            for name, fn in candidates(env, n, head_dim, batch, heads).items():
                try:
                    fwd, bwd = time_case(fn, q, k, v, causal)
                except Exception as exc:  # noqa: BLE001 - a peer may be unavailable here
                    log(
                        f"  {name} D={head_dim} causal={causal}: unavailable "
                        f"({type(exc).__name__}: "
                        f"{str(exc)[:120]})"
                    )
                    continue
                row = {
                    "impl": name,
                    "batch": batch,
                    "heads": heads,
                    "seq": n,
                    "head_dim": head_dim,
                    "causal": causal,
                    "dtype": "float16",
                    "fwd_ms": fwd.ms,
                    "bwd_ms": bwd.ms,
                    "fwd_tflops": course.tflops(ffl, fwd),
                    "bwd_tflops": course.tflops(bfl, bwd),
                    "method": fwd.method,
                }
                rows.append(row)
                log(
                    f"  {name:10s} D={head_dim:3d} causal={causal!s:5s} "
                    f"fwd {row['fwd_tflops']:7.1f}"
                    f"  bwd {row['bwd_tflops']:7.1f} TFLOP/s"
                )
            if env.on_gpu:  # the same forward with the other exponential, in the same run
                cfg = default_fwd_config(head_dim, causal)
                alt = dataclasses.replace(cfg, half_exp=not cfg.half_exp)
                qd, kd, vd = q.detach(), k.detach(), v.detach()
                t = course.bench(lambda: attention_forward(qd, kd, vd, causal=causal, config=alt))
                alternatives.append({"head_dim": head_dim, "heads": heads, "causal": causal,
                                     "config": alt.__dict__, "fwd_ms": t.ms,
                                     "fwd_tflops": course.tflops(ffl, t)})  # fmt: skip
                log(f"  {'(alt exp)':10s} D={head_dim:3d} causal={causal!s:5s} "
                    f"fwd {alternatives[-1]['fwd_tflops']:7.1f} TFLOP/s, {alt}")  # fmt: skip
            del q, k, v
            if env.on_gpu:
                torch.cuda.empty_cache()
    return rows


def print_table(rows) -> str:
    lines = [
        "| head_dim | causal | pass | triton | sdpa-flash | sdpa-cudnn | naive | triton / flash "
        "| target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["head_dim"], r["causal"]) for r in rows}, key=lambda t: (-t[0], t[1]))
    for head_dim, causal in keys:
        by = {r["impl"]: r for r in rows if r["head_dim"] == head_dim and r["causal"] == causal}
        for pas, target in (("fwd", FWD_TARGET), ("bwd", BWD_TARGET)):

            def rate(name, pas=pas, by=by):
                r = by.get(name)
                return f"{r[f'{pas}_tflops']:.0f}" if r else "-"

            ratio = ""
            if "triton" in by and "sdpa-flash" in by:
                x = by["triton"][f"{pas}_tflops"] / by["sdpa-flash"][f"{pas}_tflops"]
                verdict = "ok" if x >= target else "MISSED"
                if by["triton"]["method"] != "gpu-events":
                    verdict = "(CPU wall-clock: no target)"
                ratio = f"{x:.2f}x {verdict}"
            lines.append(
                f"| {head_dim} | {causal} | {pas} | {rate('triton')} | {rate('sdpa-flash')} | "
                f"{rate('sdpa-cudnn')} | {rate('naive')} | {ratio} | >= {target}x |"
            )
    text = "\n".join(lines)
    log(text)
    return text


def _trial(pas, head_dim, heads, causal, cfg, flops, fn, **extra) -> dict:
    """Time one configuration; record its rate, or the error if it does not compile or fit."""
    row = {"pass": pas, "head_dim": head_dim, "heads": heads, "causal": causal,
           "config": cfg.__dict__, **extra}  # fmt: skip
    try:
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        row["first_call_s"] = time.perf_counter() - start
        t = course.bench(fn)
        row.update(ms=t.ms, tflops=course.tflops(flops, t))
    except Exception as exc:  # noqa: BLE001 - e.g. out of shared memory
        row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    log(f"  tune {pas} D={head_dim} causal={causal} {cfg} {extra or ''}: "
        f"{row.get('tflops', float('nan')):.1f} TFLOP/s {row.get('error', '')}")  # fmt: skip
    return row


def tune(env, cases, batch, n, rounds) -> list[dict]:
    """Time every candidate configuration of both passes; the lesson shows this table."""
    rows = []
    for head_dim, heads in cases:
        for causal in (False, True):
            q, k, v = inputs(batch, heads, n, head_dim, torch.float16, env.device)
            ffl = attention_flops(batch, heads, n, head_dim, causal)
            bfl = attention_flops(batch, heads, n, head_dim, causal, backward=True)
            o, lse = attention_forward(q, k, v, causal=causal)
            do = torch.randn_like(o)
            for r in rounds:
                for cfg in TUNE_FWD[r][head_dim]:
                    fn = lambda: attention_forward(q, k, v, causal=causal, config=cfg)
                    rows.append(_trial("fwd", head_dim, heads, causal, cfg, ffl, fn, round=r))
                for cfg in TUNE_BWD[r][head_dim]:
                    args = (do, q, k, v, o, lse)
                    fn = lambda: attention_backward(*args, causal=causal, config=cfg)
                    rows.append(_trial("bwd", head_dim, heads, causal, cfg, bfl, fn, round=r))
            if causal and 2 in rounds:  # measured with round 2; later rounds leave them be
                cfg = default_fwd_config(head_dim, causal)
                for variant in CAUSAL_VARIANTS:
                    fn = lambda: attention_forward(q, k, v, causal=True, config=cfg, **variant)
                    rows.append(_trial("fwd", head_dim, heads, causal, cfg, ffl, fn, **variant))
            torch.cuda.empty_cache()
    return rows


def correctness_sweep(env) -> list[dict]:
    """Forward and backward against a float32 torch reference, with SDPA-flash's error beside."""
    rows = []
    dtypes = (torch.float16, torch.bfloat16) if env.on_gpu else (torch.float32, torch.float16)
    seqs = (1000, 4096) if env.on_gpu else (100,)  # 1000: the masked path; 4096: EVEN_N
    dims = (64, 128) if env.on_gpu else (64,)
    for dtype in dtypes:
        for head_dim in dims:
            for n in seqs:
                for causal in (False, True):
                    q, k, v = inputs(1, 2, n, head_dim, dtype, env.device, grad=True)
                    do = torch.randn_like(q)
                    q32, k32, v32 = [t.detach().float().requires_grad_() for t in (q, k, v)]
                    ref = naive_attention(q32, k32, v32, causal)
                    ref_grads = torch.autograd.grad(ref, (q32, k32, v32), do.float())
                    row = {
                        "dtype": str(dtype).replace("torch.", ""),
                        "head_dim": head_dim,
                        "seq": n,
                        "causal": causal,
                    }
                    peers = {"triton": lambda q, k, v, c: attention(q, k, v, causal=c)}
                    if env.on_gpu:
                        peers["sdpa-flash"] = sdpa("flash")
                    for name, fn in peers.items():
                        o = fn(q, k, v, causal)
                        grads = torch.autograd.grad(o, (q, k, v), do)
                        errs = [
                            (a.float() - b).abs().max().item()
                            for a, b in zip((o, *grads), (ref, *ref_grads), strict=True)
                        ]
                        row[name] = dict(zip(("o", "dq", "dk", "dv"), errs, strict=True))
                    if env.on_gpu and dtype == torch.float16:
                        # the forward with the other exponential (fp16 <-> fp32) than the default
                        cfg = default_fwd_config(head_dim, causal)
                        alt = dataclasses.replace(cfg, half_exp=not cfg.half_exp)
                        o_alt, _ = attention_forward(
                            q.detach(), k.detach(), v.detach(), causal=causal, config=alt
                        )
                        row[f"o_half_exp={alt.half_exp}"] = (o_alt.float() - ref).abs().max().item()
                    worst_ours = max(
                        [*row["triton"].values()]
                        + [e for key, e in row.items() if key.startswith("o_half_exp")]
                    )
                    bound = {torch.float32: 1e-4, torch.float16: 0.02}.get(dtype, 0.1)
                    if "sdpa-flash" in row:
                        bound = max(bound, 2 * max(row["sdpa-flash"].values()))
                    row["ok"] = bool(worst_ours <= bound) and all(
                        torch.isfinite(torch.tensor(list(row["triton"].values())))
                    )
                    rows.append(row)
                    log(
                        f"  check {row['dtype']} D={head_dim} N={n} causal={causal}: "
                        f"{'ok' if row['ok'] else 'FAILED'} ours "
                        + " ".join(f"{k}={e:.2e}" for k, e in row["triton"].items())
                        + "".join(f" {k}={e:.2e}" for k, e in row.items() if k.startswith("o_half"))
                        + (
                            ""
                            if "sdpa-flash" not in row
                            else "  sdpa-flash "
                            + " ".join(f"{k}={e:.2e}" for k, e in row["sdpa-flash"].items())
                        )
                    )
    return rows


def peak_memory(env, seqs, batch, heads, head_dim) -> list[dict]:
    """Peak extra memory of one forward + backward, naive vs flash, against sequence length."""
    rows = []
    for n in seqs:
        for name, fn in (
            ("triton", lambda q, k, v: attention(q, k, v)),
            ("naive", naive_attention),
        ):
            scores_bytes = batch * heads * n * n * 2
            if (
                name == "naive"
                and scores_bytes * 6 > 0.6 * torch.cuda.get_device_properties(0).total_memory
            ):
                rows.append({"impl": name, "seq": n, "peak_bytes": None, "note": "would not fit"})
                continue
            q, k, v = inputs(batch, heads, n, head_dim, torch.float16, env.device, grad=True)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            o = fn(q, k, v)
            o.backward(torch.ones_like(o))
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
            rows.append(
                {
                    "impl": name,
                    "seq": n,
                    "batch": batch,
                    "heads": heads,
                    "head_dim": head_dim,
                    "peak_bytes": peak,
                }
            )
            log(f"  memory {name:7s} N={n:6d}: {peak / 2**20:9.1f} MiB above the inputs")
            del q, k, v, o
            torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="folder for the results JSON")
    parser.add_argument("--quick", action="store_true", help="fewer cases (D=128 only)")
    parser.add_argument(
        "--tune",
        type=int,
        nargs="*",
        default=None,
        metavar="ROUND",
        help="time candidate configurations of these tuning rounds (default: all)",
    )
    parser.add_argument("--no-bench", action="store_true", help="skip the peer benchmark")
    parser.add_argument("--check", action="store_true", help="correctness sweep first")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory sweep")
    args = parser.parse_args(argv)
    env = course.setup()
    out = Path(args.out) if args.out else None
    s = course.sizes("attention")
    batch, n = s["batch"], s["seq"]
    if env.on_gpu:
        cases = [(128, 32)] if args.quick else [(128, 32), (64, 64)]
    else:
        cases = [(s["head_dim"], s["heads"])]
    result: dict = {
        "configs": {
            "fwd": {
                f"D={d},causal={c}": default_fwd_config(d, c).__dict__
                for d, _ in cases
                for c in (False, True)
            },
            "bwd": {
                f"D={d},causal={c}": default_bwd_config(d, c).__dict__
                for d, _ in cases
                for c in (False, True)
            },
        }
    }

    def save():
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "attention_partial.json").write_text(json.dumps(result, indent=1, default=str))

    failed = False
    if args.check:
        log("== correctness sweep (vs float32 torch reference)")
        result["correctness"] = correctness_sweep(env)
        failed = not all(r["ok"] for r in result["correctness"])
        save()
    if args.tune is not None and env.on_gpu:
        log("== tuning")
        result["tuning"] = tune(env, cases, batch, n, args.tune or sorted(TUNE_FWD))
        save()
    if args.no_bench:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "attention_tuning.json").write_text(json.dumps(result, indent=1, default=str))
        return 1 if failed else 0
    log(f"== benchmark B={batch} N={n} fp16 ({env.device_name})")
    result["fwd_alternatives"] = []
    rows = benchmark(env, cases, batch, n, result["fwd_alternatives"])
    result["table"] = print_table(rows)
    save()
    if env.on_gpu and not args.quick and not args.no_memory:
        log("== peak memory, one forward + backward, B=1 H=32 D=128")
        result["memory"] = peak_memory(env, s["sweep_seq"], 1, 32, 128)
    notes = (
        f"B={batch}, N={n}, fp16; H=32 for D=128 and H=64 for D=64; TFLOP/s: fwd 4BHN^2D "
        "(halved if causal), bwd 2.5x fwd; do_bench medians. Targets: fwd >= 1.3x sdpa-flash, "
        "bwd >= 1x sdpa-flash."
    )
    if out is not None:
        extra = {k: v for k, v in result.items() if k != "table"}
        path = course.results.record("attention", rows, notes=notes, directory=out)
        payload = json.loads(path.read_text())
        payload.update(extra)
        payload["table"] = result["table"]
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        log(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
