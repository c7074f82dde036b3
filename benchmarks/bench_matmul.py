"""Benchmark lesson 3's matmul against cuBLAS (torch.matmul) in fp16 and bf16.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_matmul.py [--out DIR] [--tune]

On a GPU: square products over the sweep of sizes, the autotuned Triton kernel and torch.matmul
timed side by side (do_bench medians), in TFLOP/s (2*M*N*K flops), with the compute ceiling
measured as cuBLAS's rate at 8192^3. First it checks results on shapes that are not multiples of
the tiles, on transposed inputs and with the leaky-ReLU epilogue, in fp16, bf16 and fp32 (TF32).

Small products run for only tens of microseconds, and each call of ``matmul`` also spends CPU time
in Python (checks, the autotuner's lookup, Triton's launcher) before the kernel is queued. So each
row also has:

* ``*_graph_ms``: medians of ``triton.testing.do_bench_cudagraph``: many calls captured in one CUDA
  graph and replayed, so no Python runs between kernels; this is the GPU time of the kernels
  alone (without do_bench's L2 flush, for both Triton and cuBLAS);
* ``host_us``: CPU microseconds per call to issue the work (no waiting for the GPU), for the
  autotuned wrapper, the wrapper with a fixed configuration (no autotuner), a bare
  ``matmul_kernel[grid](...)`` launch, and torch.matmul;
* ``fixed_ms``: do_bench of the wrapper with the autotuner's chosen configuration passed directly.

``--tune`` also times each hand-picked configuration at 4096^3 and 8192^3 in fp16 and records them
as matmul_tuning; ``--tune-small`` times small tile shapes at 512^3, 1024^3 and 2048^3 in fp16 and
bf16, under CUDA graphs and do_bench, and records them as matmul_tuning_small.

Without a GPU it runs the same steps at tiny sizes through the interpreter, labelled as CPU
wall-clock (useful to check the script, not as speed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402
from course.kernels.matmul import flops, matmul, matmul_kernel, tolerance  # noqa: E402

TARGET = 0.95  # fraction of cuBLAS at 4096^3 and 8192^3 in fp16

# Tried by --tune: (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages, GROUP_SIZE)
HAND_CONFIGS = [
    (128, 256, 64, 8, 3, 8),
    (128, 256, 64, 8, 4, 8),
    (256, 128, 64, 8, 3, 8),
    (256, 128, 64, 8, 4, 8),
    (128, 128, 64, 4, 4, 8),
    (128, 128, 64, 8, 4, 8),
    (128, 128, 64, 8, 5, 8),
    (128, 128, 128, 8, 3, 8),
    (128, 256, 64, 8, 3, 4),
    (128, 256, 64, 8, 3, 16),
    (64, 256, 64, 4, 4, 8),
]
UNMASKED_TOO = 3  # the first configurations are also timed with the K masks kept (EVEN_K=False)

# Tried by --tune-small at 512^3, 1024^3 and 2048^3: same tuple layout as HAND_CONFIGS
SMALL_CONFIGS = [
    (64, 64, 64, 4, 4, 8),
    (64, 64, 128, 4, 3, 8),
    (128, 64, 64, 4, 4, 8),
    (64, 128, 64, 4, 3, 8),
    (64, 128, 64, 4, 4, 8),
    (128, 128, 64, 4, 4, 8),
    (128, 128, 64, 8, 4, 8),
    (128, 256, 64, 8, 3, 8),
]


def graph_ms(fn) -> float | None:
    """Median GPU time of ``fn`` replayed from a CUDA graph (no Python between kernels)."""
    import triton.testing

    try:
        return float(triton.testing.do_bench_cudagraph(fn, rep=20, return_mode="median"))
    except Exception as exc:  # noqa: BLE001 - recorded as missing rather than ending the sweep
        print(f"  do_bench_cudagraph failed: {type(exc).__name__}: {str(exc)[:160]}")
        return None


def host_us(fn, calls: int = 100, repeats: int = 5) -> float:
    """CPU microseconds per call of ``fn`` to issue its GPU work, without waiting for the GPU.

    The GPU queue absorbs the kernels, so this is the Python and launch cost alone (as long as the
    queue does not fill, which 100 calls do not)."""
    import torch

    samples = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    torch.cuda.synchronize()
    return statistics.median(samples)


def bare_launch(a, b, config: dict):
    """A function that launches ``matmul_kernel`` with ``config`` and precomputed arguments: no
    wrapper checks, no autotuner, only Triton's own launcher."""
    import torch
    import triton

    (m, k), (_, n) = a.shape, b.shape
    c = torch.empty((m, n), device=a.device, dtype=a.dtype)
    args = (a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), 1)
    grid = (triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)
    kwargs = {"EVEN_K": k % config["BLOCK_K"] == 0, **config, "ACTIVATION": None}
    return lambda: matmul_kernel[grid](*args, **kwargs)


def check(env) -> None:
    import torch

    # One fixed configuration here (each autotuned shape would compile every configuration); the
    # sweep below runs the autotuner. 128x128x64 with 3 stages fits shared memory even in fp32.
    config = {
        "BLOCK_M": 128,
        "BLOCK_N": 128,
        "BLOCK_K": 64,
        "GROUP_SIZE": 8,
        "num_warps": 8,
        "num_stages": 3,
    }
    if not env.on_gpu:
        config = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_SIZE": 4}
    shapes = (
        [(1000, 1000, 1000), (4097, 513, 1031), (1, 77, 300)]
        if env.on_gpu
        else [(100, 67, 93), (1, 7, 5)]
    )
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    for m, n, k in shapes:
        for dtype in dtypes:
            a = torch.randn(m, k, device=env.device, dtype=dtype)
            b = torch.randn(k, n, device=env.device, dtype=dtype)
            rtol, atol = tolerance(dtype, k)
            expected = a.double() @ b.double()
            course.check_close(
                matmul(a, b, config=config),
                expected,
                name=f"{m}x{n}x{k} {dtype}",
                rtol=rtol,
                atol=atol,
                quiet=True,
            )
            if dtype != torch.float16:
                continue
            at, bt = a.t().contiguous().t(), b.t().contiguous().t()  # same values, column-major
            course.check_close(
                matmul(at, bt, config=config),
                expected,
                name=f"{m}x{n}x{k} transposed",
                rtol=rtol,
                atol=atol,
                quiet=True,
            )
            act = matmul(a, b, activation="leaky_relu")  # autotuned
            course.check_close(
                act,
                torch.nn.functional.leaky_relu(expected, 0.01),
                name=f"{m}x{n}x{k} leaky_relu",
                rtol=rtol,
                atol=atol,
                quiet=True,
            )
    print(
        f"correctness: {shapes} in {len(dtypes)} dtypes; "
        "fp16 also column-major and with leaky ReLU (autotuned)"
    )


def sweep(env, ceilings: dict) -> list[dict]:
    import torch

    rows = []
    print(
        f"{'size':>6} {'dtype':>9} | {'triton':>7} {'torch':>7} TFLOP/s | "
        f"{'ratio':>6} {'of ceiling':>10} | CUDA graphs: {'triton':>7} {'torch':>7} {'ratio':>6} | "
        "host us/call: autotuned fixed bare torch"
    )
    for dtype in (torch.float16, torch.bfloat16):
        for size in course.sizes("matmul")["sweep"]:
            a = torch.randn(size, size, device=env.device, dtype=dtype)
            b = torch.randn(size, size, device=env.device, dtype=dtype)
            # the first call runs the autotuner for this shape; keep it out of the timing
            matmul(a, b)
            t_triton = course.bench(lambda: matmul(a, b))
            t_torch = course.bench(lambda: torch.matmul(a, b))
            name = str(dtype).replace("torch.", "")
            work = flops(size, size, size)
            row = {
                "size": size,
                "dtype": name,
                "triton_tflops": course.tflops(work, t_triton),
                "cublas_tflops": course.tflops(work, t_torch),
                "triton_ms": t_triton.ms,
                "cublas_ms": t_torch.ms,
                "method": t_triton.method,
            }
            row["ratio_vs_cublas"] = row["triton_tflops"] / row["cublas_tflops"]
            row["fraction_of_ceiling"] = row["triton_tflops"] / ceilings[name]
            if env.on_gpu:
                row.update(launch_overhead(a, b))
            rows.append(row)
            line = (
                f"{size:>6} {name:>9} | {row['triton_tflops']:>7.4g} "
                f"{row['cublas_tflops']:>7.4g}         | "
                f"{row['ratio_vs_cublas']:>5.2f}x {100 * row['fraction_of_ceiling']:>9.1f}%"
            )
            if row.get("triton_graph_tflops") and row.get("cublas_graph_tflops"):
                host = row["host_us"]
                line += (
                    f" | {row['triton_graph_tflops']:>20.4g} {row['cublas_graph_tflops']:>7.4g} "
                    f"{row['graph_ratio_vs_cublas']:>5.2f}x | {host['autotuned']:>6.1f} "
                    f"{host['fixed']:>6.1f} {host['bare']:>5.1f} {host['torch']:>5.1f}"
                )
            print(line)
    return rows


def launch_overhead(a, b) -> dict:
    """The same products timed without Python between kernels, and the CPU cost of one call."""
    import torch

    from course.kernels.matmul import matmul_autotuned

    size = a.shape[0]
    work = flops(size, size, size)
    best = matmul_autotuned.best_config  # set by the call just made for this shape
    config = {**best.kwargs, "num_warps": best.num_warps, "num_stages": best.num_stages}
    fields: dict = {"config": config}
    fields["fixed_ms"] = course.bench(lambda: matmul(a, b, config=config)).ms
    fields["triton_graph_ms"] = graph_ms(lambda: matmul(a, b))
    fields["cublas_graph_ms"] = graph_ms(lambda: torch.matmul(a, b))
    for who in ("triton", "cublas"):
        ms = fields[f"{who}_graph_ms"]
        fields[f"{who}_graph_tflops"] = work / (ms * 1e-3) / 1e12 if ms else None
    if fields["triton_graph_tflops"] and fields["cublas_graph_tflops"]:
        fields["graph_ratio_vs_cublas"] = (
            fields["triton_graph_tflops"] / fields["cublas_graph_tflops"]
        )
    fields["graph_method"] = "do_bench_cudagraph median, no L2 flush"
    bare = bare_launch(a, b, config)
    fields["host_us"] = {
        "autotuned": host_us(lambda: matmul(a, b)),
        "fixed": host_us(lambda: matmul(a, b, config=config)),
        "bare": host_us(bare),
        "torch": host_us(lambda: torch.matmul(a, b)),
    }
    return fields


def verdict(rows: list[dict]) -> str:
    parts = []
    for size in (4096, 8192):
        row = next((r for r in rows if r["size"] == size and r["dtype"] == "float16"), None)
        if row:
            ok = row["ratio_vs_cublas"] >= TARGET
            parts.append(
                f"fp16 {size}^3: {row['ratio_vs_cublas']:.3f}x cuBLAS (target {TARGET}x): "
                f"{'met' if ok else 'MISSED'}"
            )
    return "; ".join(parts)


def tune(env) -> list[dict]:
    import torch

    sizes = [4096, 8192] if env.on_gpu else [128]
    configs = HAND_CONFIGS if env.on_gpu else [(64, 64, 64, 4, 1, 4), (32, 32, 32, 4, 1, 4)]
    results = []
    for size in sizes:
        a = torch.randn(size, size, device=env.device, dtype=torch.float16)
        b = torch.randn(size, size, device=env.device, dtype=torch.float16)
        cublas = course.tflops(flops(size, size, size), course.bench(lambda: torch.matmul(a, b)))
        plan = [(c, True) for c in configs] + [(c, False) for c in configs[:UNMASKED_TOO]]
        for (bm, bn, bk, warps, stages, group), even_k in plan:
            config = {
                "BLOCK_M": bm,
                "BLOCK_N": bn,
                "BLOCK_K": bk,
                "GROUP_SIZE": group,
                "num_warps": warps,
                "num_stages": stages,
                "EVEN_K": even_k,
            }
            try:
                rate = course.tflops(
                    flops(size, size, size), course.bench(lambda: matmul(a, b, config=config))
                )
            except Exception as exc:  # noqa: BLE001 - e.g. a configuration needing too much shared memory
                rate = float("nan")
                print(f"  {config}: {type(exc).__name__}: {str(exc)[:120]}")
            results.append(
                {
                    "size": size,
                    "dtype": "float16",
                    **config,
                    "tflops": rate,
                    "cublas_tflops": cublas,
                }
            )
            print(
                f"tune {size}^3 fp16 {bm}x{bn}x{bk} w{warps} s{stages} g{group} even_k={even_k}: "
                f"{rate:.4g} TFLOP/s (cuBLAS {cublas:.4g})"
            )
    return results


def tune_small(env) -> list[dict]:
    """Small tile shapes at small sizes, each launched with a fixed configuration."""
    import torch

    results = []
    for dtype in (torch.float16, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        for size in (512, 1024, 2048):
            a = torch.randn(size, size, device=env.device, dtype=dtype)
            b = torch.randn(size, size, device=env.device, dtype=dtype)
            work = flops(size, size, size)
            cublas_graph = graph_ms(lambda: torch.matmul(a, b))
            for bm, bn, bk, warps, stages, group in SMALL_CONFIGS:
                config = {
                    "BLOCK_M": bm,
                    "BLOCK_N": bn,
                    "BLOCK_K": bk,
                    "GROUP_SIZE": group,
                    "num_warps": warps,
                    "num_stages": stages,
                }
                try:
                    matmul(a, b, config=config)  # compile outside the timing
                    graph = graph_ms(lambda: matmul(a, b, config=config))
                    events = course.bench(lambda: matmul(a, b, config=config)).ms
                except Exception as exc:  # noqa: BLE001 - e.g. too much shared memory
                    graph = events = None
                    print(f"  {config}: {type(exc).__name__}: {str(exc)[:120]}")
                row = {
                    "size": size,
                    "dtype": name,
                    **config,
                    "tiles": -(-size // bm) * -(-size // bn),
                    "graph_ms": graph,
                    "graph_tflops": work / (graph * 1e-3) / 1e12 if graph else None,
                    "do_bench_ms": events,
                    "cublas_graph_tflops": work / (cublas_graph * 1e-3) / 1e12
                    if cublas_graph
                    else None,
                }
                results.append(row)
                rate = row["graph_tflops"] or float("nan")
                print(
                    f"small {size}^3 {name} {bm}x{bn}x{bk} w{warps} s{stages}: "
                    f"{row['tiles']} tiles, CUDA graph {rate:.4g} TFLOP/s "
                    f"(cuBLAS {row['cublas_graph_tflops'] or float('nan'):.4g}), "
                    f"do_bench {events if events is None else round(events * 1e3, 1)} us"
                )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results)"
    )
    parser.add_argument(
        "--tune", action="store_true", help="also time each hand-picked configuration"
    )
    parser.add_argument(
        "--tune-small",
        action="store_true",
        help="also time small tile shapes at small sizes (GPU only)",
    )
    args = parser.parse_args()

    import torch

    env = course.setup()
    check(env)
    ceilings = {
        str(d).replace("torch.", ""): course.timing.matmul_ceiling(d)
        for d in (torch.float16, torch.bfloat16)
    }
    label = (
        "cuBLAS at 8192^3, CUDA events" if env.on_gpu else "torch on the CPU at 512^3, wall-clock"
    )
    print(
        "compute ceiling ("
        + label
        + "): "
        + ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in ceilings.items())
    )
    if args.tune:
        path = course.results.record(
            "matmul_tuning",
            tune(env),
            directory=args.out,
            notes="hand-picked configurations of the lesson's kernel, fp16, square sizes, "
            "do_bench medians",
        )
        print(f"recorded {path}")
    rows = sweep(env, ceilings)
    summary = (
        verdict(rows) if env.on_gpu else "CPU run through the interpreter: no speed targets apply"
    )
    print(summary)
    path = course.results.record(
        "matmul",
        rows,
        directory=args.out,
        ceiling_tflops=ceilings,
        notes="square products, TFLOP/s = 2*M*N*K / time; Triton autotuned over the lesson's GPU "
        "configurations, peer torch.matmul (cuBLAS); ceiling = cuBLAS at 8192^3. *_ms/*_tflops: "
        "do_bench medians, events around each Python call, L2 flushed; *_graph_*: "
        "do_bench_cudagraph medians (calls replayed from a CUDA graph: no Python between "
        "kernels, no L2 flush); fixed_ms: do_bench of the wrapper given the chosen config "
        "(no autotuner); host_us: CPU microseconds to issue one call. "
        f"{summary}",
    )
    print(f"recorded {path}")
    if args.tune_small and env.on_gpu:
        path = course.results.record(
            "matmul_tuning_small",
            tune_small(env),
            directory=args.out,
            notes="small tile shapes of the lesson's kernel at small square sizes, each with a "
            "fixed configuration (no autotuner); graph_ms = do_bench_cudagraph median (kernel "
            "time, no L2 flush), do_bench_ms = do_bench median (per Python call, L2 flushed)",
        )
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
