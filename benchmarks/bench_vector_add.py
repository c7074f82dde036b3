"""Benchmark lesson 1's vector add against torch and the device-copy ceiling.

Run from the repository root:  python benchmarks/bench_vector_add.py [--out DIR]
On a GPU it times the full sweep with CUDA events (do_bench medians) and records the result under
benchmarks/results/<device>/vector_add.json. Without a GPU it times the interpreter at CPU sizes
and records that too, labelled as CPU wall-clock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402
from course.kernels.vector_add import vector_add  # noqa: E402

TARGET = 0.95  # fraction of the copy ceiling at the largest size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default benchmarks/results)"
    )
    args = parser.parse_args()

    import torch

    env = course.setup()
    ceiling = course.timing.copy_bandwidth()
    rows = []
    print(f"{'n':>12} {'triton GB/s':>12} {'torch GB/s':>12} {'% of copy':>10}")
    for n in course.sizes("vector_add")["sweep"]:
        x = torch.randn(n, device=env.device)
        y = torch.randn(n, device=env.device)
        course.check_close(vector_add(x, y), x.double() + y.double(), quiet=True)
        moved = 3 * n * x.element_size()
        t_triton = course.bench(lambda: vector_add(x, y))
        t_torch = course.bench(lambda: x + y)
        row = {
            "n": n,
            "triton_ms": t_triton.ms,
            "torch_ms": t_torch.ms,
            "triton_gbps": course.gbps(moved, t_triton),
            "torch_gbps": course.gbps(moved, t_torch),
            "method": t_triton.method,
        }
        row["fraction_of_copy"] = row["triton_gbps"] / ceiling
        rows.append(row)
        print(
            f"{n:>12,} {row['triton_gbps']:>12.1f} {row['torch_gbps']:>12.1f} "
            f"{100 * row['fraction_of_copy']:>9.1f}%"
        )
    print(f"copy ceiling: {ceiling:.1f} GB/s ({'CUDA events' if env.on_gpu else 'CPU wall-clock'})")
    last = rows[-1]
    met = last["fraction_of_copy"] >= TARGET
    if env.on_gpu:
        print(f"target {TARGET:.0%} of copy at n={last['n']:,}: {'met' if met else 'MISSED'}")
    path = course.results.record(
        "vector_add",
        rows,
        notes=f"copy ceiling {ceiling:.1f} GB/s (device-to-device copy, bytes read + written); "
        f"target {TARGET:.0%} of it at the largest size: {'met' if met else 'missed'}",
        directory=args.out,
        copy_ceiling_gbps=ceiling,
    )
    print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
