"""Benchmark lesson 2's fused softmax against the naive torch version, torch.softmax and a copy.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_softmax.py [--out DIR] [--tune]

On a GPU: a fixed total of 2^27 elements (rows = 2^27 / N) for each row length N of the sweep, fp32
(and fp16 at three lengths), every kernel timed side by side with do_bench medians, bandwidth
counted as one read plus one write of the matrix (the minimum any softmax must move). First it
checks the results on awkward shapes. ``--tune`` also times the kernel's launch choices
(num_warps, persistent grid sizes, the looping kernel's tile) and records them as softmax_tuning.

Without a GPU it runs the same steps at tiny sizes through the interpreter, labelled as CPU
wall-clock (useful to check the script, not as speed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402
from course.kernels.softmax import block_size_for, naive_softmax, num_warps_for, softmax  # noqa: E402

TARGETS = {1024: 1.0, 4096: 1.15, 16384: 1.15}  # row length -> minimum speed-up over torch.softmax
COPY_FRACTION = 0.90  # at those lengths, at least this fraction of the copy ceiling


def check(env) -> None:
    """Results against a float64 reference on shapes that are not powers of two, before timing."""
    import torch

    shapes = [(37, 1), (129, 781), (5, 3, 1000), (7, 4097), (3, 20_000), (2, 70_001)]
    if not env.on_gpu:
        shapes = [(37, 1), (33, 781), (3, 1500)]
    for shape in shapes:
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            x = (3 * torch.randn(shape, device=env.device)).to(dtype)
            course.check_close(
                softmax(x),
                torch.softmax(x.double(), -1),
                name=f"softmax {shape} {dtype}",
                quiet=True,
            )
    x = torch.randn(300, 2 * 1000 + 5, device=env.device)[:, 5:1005]  # a strided view
    course.check_close(
        softmax(x), torch.softmax(x.double(), -1), name="softmax of a strided view", quiet=True
    )
    print(f"correctness: {len(shapes)} shapes x 3 dtypes and a strided view match float64")


def timed(fn, nbytes):
    t = course.bench(fn)
    return t, course.gbps(nbytes, t)


def sweep(env, ceiling: float) -> list[dict]:
    import torch

    s = course.sizes("softmax")
    plan = [(n, torch.float32) for n in s["sweep_cols"]]
    plan += [(n, torch.float16) for n in ([1024, 4096, 16384] if env.on_gpu else [781])]
    rows_out = []
    print(
        f"{'N':>7} {'dtype':>8} {'rows':>8} | {'fused':>7} {'naive':>7} {'torch':>7} GB/s | "
        f"{'vs torch':>8} {'of copy':>7}"
    )
    for n_cols, dtype in plan:
        n_rows = s["elements"] // n_cols if env.on_gpu else s["sweep_rows"]
        x = torch.randn(n_rows, n_cols, device=env.device, dtype=dtype)
        nbytes = 2 * x.numel() * x.element_size()
        t_fused, fused = timed(lambda: softmax(x), nbytes)
        _, naive = timed(lambda: naive_softmax(x), nbytes)
        t_torch, ref = timed(lambda: torch.softmax(x, dim=-1), nbytes)
        row = {
            "n_cols": n_cols,
            "n_rows": n_rows,
            "dtype": str(dtype).replace("torch.", ""),
            "fused_gbps": fused,
            "naive_gbps": naive,
            "torch_gbps": ref,
            "fused_ms": t_fused.ms,
            "torch_ms": t_torch.ms,
            "speedup_vs_torch": fused / ref,
            "fraction_of_copy": fused / ceiling,
            "method": t_fused.method,
            "kernel": "one block per row"
            if block_size_for(n_cols) <= 16384
            else "online (looping)",
        }
        rows_out.append(row)
        print(
            f"{n_cols:>7} {row['dtype']:>8} {n_rows:>8} | "
            f"{fused:>7.4g} {naive:>7.4g} {ref:>7.4g}      | "
            f"{row['speedup_vs_torch']:>7.2f}x {100 * row['fraction_of_copy']:>6.1f}%"
        )
    return rows_out


def verdict(rows: list[dict]) -> str:
    lines = []
    for n_cols, speedup in TARGETS.items():
        row = next((r for r in rows if r["n_cols"] == n_cols and r["dtype"] == "float32"), None)
        if row is None:
            continue
        ok = row["speedup_vs_torch"] >= speedup and row["fraction_of_copy"] >= COPY_FRACTION
        lines.append(
            f"N={n_cols}: {row['speedup_vs_torch']:.2f}x torch (target {speedup}x), "
            f"{100 * row['fraction_of_copy']:.1f}% of copy (target {100 * COPY_FRACTION:.0f}%): "
            f"{'met' if ok else 'MISSED'}"
        )
    return "; ".join(lines)


def tune(env) -> list[dict]:
    """Time the launch choices: warps per program, persistent grids, the looping kernel's tile."""
    import torch

    sms = torch.cuda.get_device_properties(0).multi_processor_count if env.on_gpu else 2
    lengths = [1024, 4096, 16384] if env.on_gpu else [781]
    total = course.sizes("softmax")["elements"] if env.on_gpu else 64 * 1024
    results = []
    for n_cols in lengths:
        x = torch.randn(total // n_cols, n_cols, device=env.device)
        nbytes = 2 * x.numel() * 4
        for warps in (4, 8, 16, 32):
            for programs in (None, 4 * sms, 8 * sms, 16 * sms):
                _, gb = timed(lambda: softmax(x, num_warps=warps, programs=programs), nbytes)
                results.append(
                    {
                        "n_cols": n_cols,
                        "num_warps": warps,
                        "programs": programs or "one per row",
                        "gbps": gb,
                    }
                )
        best = max((r for r in results if r["n_cols"] == n_cols), key=lambda r: r["gbps"])
        print(
            f"tune N={n_cols}: default warps {num_warps_for(block_size_for(n_cols))}; best {best}"
        )
    n_cols = 32768 if env.on_gpu else 1500
    x = torch.randn(total // n_cols, n_cols, device=env.device)
    for tile in (2048, 4096, 8192):
        for warps in (4, 8, 16, 32):
            _, gb = timed(lambda: softmax(x, max_block=tile, num_warps=warps), 2 * x.numel() * 4)
            results.append({"n_cols": n_cols, "online_tile": tile, "num_warps": warps, "gbps": gb})
            print(f"tune online N={n_cols} tile={tile} warps={warps}: {gb:.4g} GB/s")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results)"
    )
    parser.add_argument("--tune", action="store_true", help="also time the kernel's launch choices")
    args = parser.parse_args()

    env = course.setup()
    check(env)
    ceiling = course.timing.copy_bandwidth()
    print(
        f"copy ceiling: {ceiling:.0f} GB/s "
        f"({'CUDA events' if env.on_gpu else 'CPU wall-clock, not GPU speed'})"
    )
    rows = sweep(env, ceiling)
    summary = (
        verdict(rows) if env.on_gpu else "CPU run through the interpreter: no speed targets apply"
    )
    print(summary)
    path = course.results.record(
        "softmax",
        rows,
        directory=args.out,
        copy_ceiling_gbps=ceiling,
        notes="bandwidth counts one read and one write of the matrix; "
        "fp32 sweep at 2^27 elements in "
        f"total (rows = 2^27 / N) on a GPU; copy ceiling {ceiling:.0f} GB/s. {summary}",
    )
    print(f"recorded {path}")
    if args.tune:
        path = course.results.record(
            "softmax_tuning",
            tune(env),
            directory=args.out,
            notes="fused softmax launch choices: num_warps and grid size (persistent programs) "
            "per row "
            "length; the looping kernel's tile and warps for rows longer than one block",
        )
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
