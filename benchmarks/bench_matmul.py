"""Benchmark lesson 3's matmul against cuBLAS (torch.matmul) in fp16 and bf16.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_matmul.py [--out DIR] [--tune]

On a GPU: square products over the sweep of sizes, the autotuned Triton kernel and torch.matmul
timed side by side (do_bench medians), in TFLOP/s (2*M*N*K flops), with the compute ceiling
measured as cuBLAS's rate at 8192^3. First it checks results on shapes that are not multiples of
the tiles, on transposed inputs and with the leaky-ReLU epilogue, in fp16, bf16 and fp32 (TF32).
``--tune`` also times each hand-picked configuration at 4096^3 and 8192^3 in fp16 and records them
as matmul_tuning.

Without a GPU it runs the same steps at tiny sizes through the interpreter, labelled as CPU
wall-clock (useful to check the script, not as speed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402
from course.kernels.matmul import flops, matmul, tolerance  # noqa: E402

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
        f"{'ratio':>6} {'of ceiling':>10}"
    )
    for dtype in (torch.float16, torch.bfloat16):
        for size in course.sizes("matmul")["sweep"]:
            a = torch.randn(size, size, device=env.device, dtype=dtype)
            b = torch.randn(size, size, device=env.device, dtype=dtype)
            matmul(
                a, b
            )  # the first call runs the autotuner for this shape; keep it out of the timing
            t_triton = course.bench(lambda: matmul(a, b))
            t_torch = course.bench(lambda: torch.matmul(a, b))
            name = str(dtype).replace("torch.", "")
            row = {
                "size": size,
                "dtype": name,
                "triton_tflops": course.tflops(flops(size, size, size), t_triton),
                "cublas_tflops": course.tflops(flops(size, size, size), t_torch),
                "triton_ms": t_triton.ms,
                "cublas_ms": t_torch.ms,
                "method": t_triton.method,
            }
            row["ratio_vs_cublas"] = row["triton_tflops"] / row["cublas_tflops"]
            row["fraction_of_ceiling"] = row["triton_tflops"] / ceilings[name]
            if env.on_gpu:
                from course.kernels.matmul import matmul_autotuned

                best = matmul_autotuned.best_config
                row["config"] = {
                    **best.kwargs,
                    "num_warps": best.num_warps,
                    "num_stages": best.num_stages,
                }
            rows.append(row)
            print(
                f"{size:>6} {name:>9} | {row['triton_tflops']:>7.4g} "
                f"{row['cublas_tflops']:>7.4g}         | "
                f"{row['ratio_vs_cublas']:>5.2f}x {100 * row['fraction_of_ceiling']:>9.1f}%"
            )
    return rows


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results)"
    )
    parser.add_argument(
        "--tune", action="store_true", help="also time each hand-picked configuration"
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
        f"configurations, peer torch.matmul (cuBLAS); ceiling = cuBLAS at 8192^3. {summary}",
    )
    print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
