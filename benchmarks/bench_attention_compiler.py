"""Lesson 4's attention forward kernel compiled by mini_compiler for the GPU: correctness, speed.

Run from the repository root:
    PYTHONPATH=. python3 benchmarks/bench_attention_compiler.py [--out DIR] [--quick]

The kernel is the lesson's, unchanged (``attention_fwd_kernel`` in ``course/kernels/
attention.py``), launched through the lesson's own wrapper with
``attention_forward(..., kernel=mini_compiler.jit(attention_fwd_kernel))``.

1. **Correctness** against float64 attention of the same inputs (fresh ``torch.randn``): ragged
   N (1000, 4097), causal and not, head_dim 64 and 128, fp16 and bf16, every configuration in
   ``CONFIGS``.
2. **Speed**, ``triton.testing.do_bench`` medians (``course.bench``) in one run, B=4 H=32
   N=4096, head_dim 64 and 128, causal and not. Forward: the same kernel compiled by Triton
   (the lesson's configuration for that case), mini_compiler at each configuration, SDPA's
   flash back end and cuDNN. FLOPs: 4 B H N^2 D (halved if causal).
3. **Backward**: the lesson's three backward kernels (``BACKWARD_KERNELS``) through
   ``attention_backward(..., kernels=...)``, checked against float64 autograd on ragged N, then
   timed beside Triton's build of the same kernels and SDPA's flash and cuDNN backward
   (``torch.autograd.grad`` on a recorded forward). FLOPs: 2.5x the forward.

Without a GPU the script prints what ptxas reports for each mini_compiler configuration
(registers, spills, shared memory) and records nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import course  # noqa: E402
import mini_compiler  # noqa: E402
from course.kernels.attention import (  # noqa: E402
    BACKWARD_KERNELS,
    LOG2E,
    BwdConfig,
    FwdConfig,
    attention_backward,
    attention_flops,
    attention_forward,
    attention_fwd_kernel,
    naive_attention,
)

# mini_compiler's configurations: (BLOCK_M, BLOCK_N, num_warps, num_stages). 128x64 on 8 warps
# is the tile whose PTX has no spills at both head sizes; stages 3 and 4 use cp.async rings.
CONFIGS = [FwdConfig(128, 64, 8, 2), FwdConfig(128, 64, 8, 3), FwdConfig(128, 64, 8, 4)]
CHECK_N = (1000, 4097)
KERNEL = mini_compiler.jit(attention_fwd_kernel)
# The backward: dK/dV streams 64-query tiles past 128 keys, dQ 64-key tiles past 128 queries.
BWD_CONFIGS = [BwdConfig(64, 128, 128, 64, 8, 3), BwdConfig(64, 64, 64, 64, 4, 3)]
BWD_KERNELS = tuple(mini_compiler.jit(k) for k in BACKWARD_KERNELS)


def check(device) -> list[dict]:
    rows = []
    for n in CHECK_N:
        for d in (64, 128):
            for dtype in (torch.float16, torch.bfloat16):
                q, k, v = (torch.randn(1, 4, n, d, device=device, dtype=dtype)
                           for _ in range(3))
                for causal in (False, True):
                    expected = naive_attention(q.double(), k.double(), v.double(), causal)
                    for cfg in CONFIGS:
                        out, lse = attention_forward(q, k, v, causal=causal, config=cfg,
                                                     kernel=KERNEL)
                        error = float((out.double() - expected).abs().nan_to_num(1e9).max())
                        bound = 1e-2 if dtype == torch.float16 else 3e-2
                        row = {"n": n, "head_dim": d, "dtype": str(dtype).split(".")[-1],
                               "causal": causal, "config": cfg.__dict__,
                               "max_abs_error": error, "ok": error < bound
                               and bool(torch.isfinite(lse).all())}
                        print(row, flush=True)
                        rows.append(row)
    return rows


def check_backward(device) -> list[dict]:
    """The compiled backward against float64 autograd, on ragged N."""
    rows = []
    for n in CHECK_N:
        for d in (64, 128):
            for dtype in (torch.float16, torch.bfloat16):
                for causal in (False, True):
                    q, k, v, do = (torch.randn(1, 2, n, d, device=device, dtype=dtype)
                                   for _ in range(4))
                    o, lse = attention_forward(q, k, v, causal=causal)
                    leaves = [t.double().requires_grad_() for t in (q, k, v)]
                    expected = torch.autograd.grad(
                        naive_attention(*leaves, causal), leaves, do.double())
                    for cfg in BWD_CONFIGS:
                        grads = attention_backward(do, q, k, v, o, lse, causal=causal,
                                                   config=cfg, kernels=BWD_KERNELS)
                        errors = [float((g.double() - e).abs().nan_to_num(1e9).max())
                                  for g, e in zip(grads, expected, strict=True)]
                        bound = 2e-2 if dtype == torch.float16 else 6e-2
                        row = {"pass": "backward", "n": n, "head_dim": d,
                               "dtype": str(dtype).split(".")[-1], "causal": causal,
                               "config": cfg.__dict__, "max_abs_error_dq_dk_dv": errors,
                               "ok": max(errors) < bound}
                        print(row, flush=True)
                        rows.append(row)
    return rows


def speed_backward(device, quick: bool, configs=BWD_CONFIGS) -> list[dict]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    batch, heads, n = 4, 32, 4096
    rows = []
    for d in ((128,) if quick else (64, 128)):
        q, k, v, do = (torch.randn(batch, heads, n, d, device=device, dtype=torch.float16)
                       for _ in range(4))
        for causal in (False, True):
            flops = attention_flops(batch, heads, n, d, causal, backward=True)
            o, lse = attention_forward(q, k, v, causal=causal)
            runs = {"triton": lambda c=causal, o=o, lse=lse: attention_backward(
                do, q, k, v, o, lse, causal=c)}
            for cfg in configs:
                runs[f"mini_compiler dkdv {cfg.block_m1}x{cfg.block_n1} dq {cfg.block_m2}x"
                     f"{cfg.block_n2} w{cfg.num_warps} s{cfg.num_stages}"] = (
                    lambda c=causal, g=cfg, o=o, lse=lse: attention_backward(
                        do, q, k, v, o, lse, causal=c, config=g, kernels=BWD_KERNELS))
            for name, backend in (("sdpa-flash", SDPBackend.FLASH_ATTENTION),
                                  ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION)):
                def run(c=causal, b=backend):
                    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
                    with sdpa_kernel(b):
                        out = scaled_dot_product_attention(*leaves, is_causal=c)
                    return lambda: torch.autograd.grad(out, leaves, do, retain_graph=True)
                runs[name] = run
            for name, fn in runs.items():
                row = {"pass": "backward", "head_dim": d, "causal": causal, "impl": name}
                # SDPA's entries record a forward first and return the backward to time
                make = fn if name.startswith("sdpa") else (lambda f=fn: f)
                rows.append(_measure(row, make, flops))
    _ratios(rows)
    return rows


def _measure(row: dict, make, flops: float) -> dict:
    """Time the callable ``make()`` returns (do_bench median) into ``row``; a back end that
    is missing here, or fails, is recorded with its error instead."""
    try:
        timing = course.bench(make())
        row.update(ms=timing.ms, tflops=course.tflops(flops, timing))
    except Exception as e:  # noqa: BLE001 - a back end missing here is recorded
        row["error"] = f"{type(e).__name__}: {e}"[:300]
    print(row, flush=True)
    return row


def _ratios(rows: list[dict]) -> None:
    triton = {(r["head_dim"], r["causal"]): r for r in rows if r["impl"] == "triton"}
    for r in rows:
        base = triton.get((r["head_dim"], r["causal"]))
        if "ms" in r and base and "ms" in base:
            r["x_triton"] = base["ms"] / r["ms"]


def speed(device, quick: bool) -> list[dict]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    def sdpa(backend):
        def run(q, k, v, causal):
            with sdpa_kernel(backend):
                return scaled_dot_product_attention(q, k, v, is_causal=causal)
        return run

    batch, heads, n = 4, 32, 4096
    rows = []
    for d in ((128,) if quick else (64, 128)):
        q, k, v = (torch.randn(batch, heads, n, d, device=device, dtype=torch.float16)
                   for _ in range(3))
        for causal in (False, True):
            flops = 4 * batch * heads * n * n * d // (2 if causal else 1)
            runs = {"triton": lambda c=causal: attention_forward(q, k, v, causal=c)}
            for cfg in CONFIGS:
                runs[f"mini_compiler {cfg.block_m}x{cfg.block_n} w{cfg.num_warps} "
                     f"s{cfg.num_stages}"] = (lambda c=causal, g=cfg: attention_forward(
                         q, k, v, causal=c, config=g, kernel=KERNEL))
            runs["sdpa-flash"] = lambda c=causal: sdpa(SDPBackend.FLASH_ATTENTION)(q, k, v, c)
            runs["sdpa-cudnn"] = lambda c=causal: sdpa(SDPBackend.CUDNN_ATTENTION)(q, k, v, c)
            for name, fn in runs.items():
                row = {"head_dim": d, "causal": causal, "impl": name}
                rows.append(_measure(row, lambda f=fn: f, flops))
    _ratios(rows)
    return rows


def ptxas_table() -> None:
    from mini_compiler.backends import gpu

    n = 4096
    for d in (64, 128):
        for causal in (False, True):
            for cfg in CONFIGS:
                q = torch.empty(2 * n, d, dtype=torch.float16)
                compiled = gpu.compile_for_gpu(
                    attention_fwd_kernel, q, q, q, q, torch.empty(2 * n), n, LOG2E / 8,
                    HEAD_DIM=d, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, CAUSAL=causal,
                    EVEN_N=True, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
                r = gpu.ptxas_report(compiled).kernel()
                print(f"D={d:<3} causal={causal!s:<5} {cfg.block_m}x{cfg.block_n} "
                      f"w{cfg.num_warps} s{cfg.num_stages}: {r.registers} registers, spills "
                      f"{r.spill_store_bytes}/{r.spill_load_bytes} B, static shared "
                      f"{r.shared_memory_bytes} B, dynamic {compiled.dynamic_shared_bytes} B")
    for d in (64, 128):
        x, rows = torch.empty(2 * n, d, dtype=torch.float16), torch.empty(2 * n)
        for cfg in BWD_CONFIGS:
            for kernel, args, (bm, bn) in (
                    (BACKWARD_KERNELS[1], (x,) * 4 + (rows, rows, x, x),
                     (cfg.block_m1, cfg.block_n1)),
                    (BACKWARD_KERNELS[2], (x,) * 4 + (rows, rows, x),
                     (cfg.block_m2, cfg.block_n2))):
                compiled = gpu.compile_for_gpu(
                    kernel, *args, n, 0.1, 0.1, HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn,
                    CAUSAL=True, EVEN_N=True, num_warps=cfg.num_warps,
                    num_stages=cfg.num_stages)
                r = gpu.ptxas_report(compiled).kernel()
                print(f"D={d:<3} causal {kernel.__name__} {bm}x{bn} w{cfg.num_warps} "
                      f"s{cfg.num_stages}: {r.registers} registers, spills "
                      f"{r.spill_store_bytes}/{r.spill_load_bytes} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/nvidia-h200")
    parser.add_argument("--quick", action="store_true", help="head_dim 128 only for speed")
    parser.add_argument("--backward-only", action="store_true",
                        help="time the backward only (attention_compiler_backward.json)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no GPU: ptxas resources of each configuration (nothing recorded)")
        ptxas_table()
        return
    device = "cuda"
    if args.backward_only:
        import triton
        record = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version(),
            "speed_backward": speed_backward(device, args.quick, BWD_CONFIGS[:1]),
        }
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "attention_compiler_backward.json").write_text(json.dumps(record, indent=1) + "\n")
        print("wrote", out / "attention_compiler_backward.json")
        return
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
        "python": platform.python_version(),
        "correctness": check(device), "speed": speed(device, args.quick),
        "correctness_backward": check_backward(device),
        "speed_backward": speed_backward(device, args.quick),
    }
    import triton
    record["triton"] = triton.__version__
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "attention_compiler.json").write_text(json.dumps(record, indent=1) + "\n")
    print("wrote", out / "attention_compiler.json")
    if not all(r["ok"] for r in record["correctness"] + record["correctness_backward"]):
        sys.exit("some mini_compiler results were wrong: see the correctness rows")


if __name__ == "__main__":
    main()
