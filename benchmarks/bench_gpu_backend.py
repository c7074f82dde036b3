"""Benchmark mini_compiler's GPU back end against the course's Triton kernels and torch.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_gpu_backend.py [--out DIR]

The *same* kernel sources are compiled twice: by Triton, and by mini_compiler (Tile IR -> layouts
-> LLVM IR -> PTX -> CUDA driver). Timed side by side in one run with do_bench medians on random
data, after a correctness check of every mini_compiler kernel against torch:

* vector add, 2^28 fp32 (bytes: 2 reads + 1 write), against the measured copy ceiling;
* softmax, one row per program, fp32, N = 1024, 4096, 16384 and rows = 2^27 / N (bytes: one read
  and one write), against Triton compiling the same kernel.

mini_compiler kernels are timed through ``launcher_for`` (compiled once, launched with no
per-call specialisation); one row also times the ``kernel[grid](...)`` path, which adds the
runtime's Python work per launch.

**Warm launch, host time per call**: ``kernel[grid](...)`` of the same kernel through Triton and
through mini_compiler, on small inputs (the GPU work is a few microseconds), called back to back
2,000 times after a warm-up; the figure is the wall time of the calls divided by their number
(median of 7 repeats), measured before the final synchronisation, i.e. what the host spends per
launch. ``--baseline DIR`` also measures a copy of an earlier ``mini_compiler`` package found in
``DIR`` (e.g. ``git archive <commit> mini_compiler | tar -x -C DIR``), in a process of its own,
so before and after are timed in one run.

Without a GPU the script prints the ptxas resource report of the compiled kernels instead
(registers, spills) and records nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402

VECTOR_ADD_N = 1 << 28
SOFTMAX_ELEMENTS = 1 << 27
SOFTMAX_LENGTHS = (1024, 4096, 16384)
TARGET_COPY_FRACTION = 0.90  # vector add vs the copy ceiling
TARGET_TRITON_FRACTION = 0.80  # softmax vs Triton compiling the same kernel


def softmax_kernels():
    """The lesson's softmax kernel and its num_warps rule (a local equivalent if absent)."""
    try:
        from course.kernels.softmax import num_warps_for, softmax_kernel
        return softmax_kernel, num_warps_for, "course.kernels.softmax.softmax_kernel"
    except ImportError:
        import triton
        import triton.language as tl

        @triton.jit
        def softmax_kernel(x_ptr, out_ptr, n_rows, n_cols, x_row_stride, out_row_stride,
                           BLOCK_SIZE: tl.constexpr):
            row = tl.program_id(0)
            cols = tl.arange(0, BLOCK_SIZE)
            mask = cols < n_cols
            x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
            shifted = x - tl.max(x, axis=0)
            numerator = tl.exp(shifted)
            tl.store(out_ptr + row * out_row_stride + cols,
                     numerator / tl.sum(numerator, axis=0), mask=mask)

        return softmax_kernel, (lambda block: max(4, min(16, block // 256))), "local equivalent"


def without_gpu() -> None:
    import torch

    from course.kernels.vector_add import add_kernel
    from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report

    softmax_kernel, num_warps_for, _ = softmax_kernels()
    x = torch.empty(1 << 20)
    compiled = [("vector add", compile_for_gpu(add_kernel, x, x, x, 1 << 20, BLOCK_SIZE=1024))]
    for n in SOFTMAX_LENGTHS:
        m = torch.empty(4, n)
        compiled.append((f"softmax N={n}", compile_for_gpu(
            softmax_kernel, m, m, 4, n, n, n, BLOCK_SIZE=n, num_warps=num_warps_for(n))))
    print("no GPU here: ptxas reports of the compiled kernels (nothing is timed or recorded)")
    for name, kernel in compiled:
        print(f"  {name:16s} {ptxas_report(kernel).kernel(kernel.name)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory for the results JSON "
                                      "(default: benchmarks/results)")
    parser.add_argument("--baseline", help="a folder holding an earlier mini_compiler package "
                                           "to time warm launches of, in a separate process")
    parser.add_argument("--warm-launch-json", action="store_true",
                        help="only time warm launches of mini_compiler; print JSON")
    args = parser.parse_args()
    env = course.configure()
    if args.warm_launch_json:
        print(json.dumps(warm_launch_host_times(include_triton=False)))
        return
    if not env.on_gpu:
        without_gpu()
        return
    rows: list[dict] = []
    bench_warm_launch(rows, args.baseline)
    copy = course.timing.copy_bandwidth()
    print(f"copy ceiling: {copy:.0f} GB/s")
    bench_vector_add(rows, copy)
    softmax_kernel, num_warps_for, softmax_source = softmax_kernels()
    for n_cols in SOFTMAX_LENGTHS:
        bench_softmax(rows, n_cols, softmax_kernel, num_warps_for)
    print()
    verdicts = summarise(rows)
    notes = (f"copy ceiling {copy:.0f} GB/s; softmax kernel: {softmax_source}; "
             "mini_compiler rows time launcher_for unless marked kernel[grid]. " +
             "; ".join(verdicts))
    path = course.results.record("gpu_backend", rows, notes=notes,
                                 directory=Path(args.out) if args.out else None)
    print(f"recorded {path}")


def host_time_per_call(fn, calls: int = 2000, repeats: int = 7) -> float:
    """Median over ``repeats`` of (wall time of ``calls`` back-to-back calls) / calls, in µs."""
    import torch

    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
        torch.cuda.synchronize()
    samples.sort()
    return samples[len(samples) // 2]


def warm_launch_host_times(include_triton: bool = True) -> dict[str, float]:
    """Host µs per ``kernel[grid](...)`` for the lesson's vector add and softmax kernels."""
    import torch
    import triton

    import mini_compiler
    from course.kernels.vector_add import add_kernel

    softmax_kernel, num_warps_for, _ = softmax_kernels()
    n = 1 << 12
    x, y = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")
    out = torch.empty_like(x)
    grid = (triton.cdiv(n, 1024),)
    rows, cols = 64, 1024
    a = torch.randn(rows, cols, device="cuda")
    b = torch.empty_like(a)
    warps = num_warps_for(cols)
    mini_add, mini_softmax = mini_compiler.jit(add_kernel), mini_compiler.jit(softmax_kernel)
    calls = {
        "mini_compiler vector_add": lambda: mini_add[grid](x, y, out, n, BLOCK_SIZE=1024),
        "mini_compiler softmax": lambda: mini_softmax[(rows,)](
            a, b, rows, cols, a.stride(0), b.stride(0), BLOCK_SIZE=cols, num_warps=warps),
    }
    if include_triton:
        calls["triton vector_add"] = lambda: add_kernel[grid](x, y, out, n, BLOCK_SIZE=1024)
        calls["triton softmax"] = lambda: softmax_kernel[(rows,)](
            a, b, rows, cols, a.stride(0), b.stride(0), BLOCK_SIZE=cols, num_warps=warps)
    times = {name: host_time_per_call(fn) for name, fn in calls.items()}
    torch.testing.assert_close(out, x + y)
    torch.testing.assert_close(b, torch.softmax(a, dim=-1))
    return times


def bench_warm_launch(rows: list[dict], baseline: str | None) -> None:
    """Rows of host µs per warm launch: Triton, mini_compiler now, and the baseline copy."""
    times = warm_launch_host_times()
    if baseline:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(baseline).resolve()),
                                             env.get("PYTHONPATH", "")])
        done = subprocess.run([sys.executable, __file__, "--warm-launch-json"], env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            before = json.loads(done.stdout.strip().splitlines()[-1])
            times.update({f"{k} (baseline)": v for k, v in before.items()})
        else:
            print(f"baseline failed: {done.stderr[-2000:]}", flush=True)
    for name, us in times.items():
        kernel = "vector_add" if "vector_add" in name else "softmax"
        triton_us = times[f"triton {kernel}"]
        row = {"kernel": f"{kernel} warm launch", "size": "4096" if kernel == "vector_add"
               else [64, 1024], "dtype": "fp32", "impl": name, "host_us_per_call": us,
               "ratio_to_triton": us / triton_us}
        rows.append(row)
        print(f"warm launch {name:40s} {us:7.1f} us per call ({us / triton_us:.2f}x Triton)",
              flush=True)


def add_row(rows: list[dict], **row) -> None:
    rows.append(row)
    extra = f"  {row['fraction_of_triton']:.1%} of Triton" if "fraction_of_triton" in row else ""
    print(f"{row['kernel']:10s} {str(row['size']):>14s} {row['impl']:38s} "
          f"{row['ms']:8.4f} ms {row['gbps']:7.0f} GB/s{extra}", flush=True)


def is_close(actual, expected, what: str) -> bool:
    """Check a result against torch; report (and record) a mismatch instead of stopping."""
    import torch

    try:
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)
    except AssertionError as error:
        print(f"WRONG RESULT: {what}: {error}", flush=True)
        return False
    return True


def resources(compiled) -> dict:
    """Registers and spills from ptxas, when ptxas is there."""
    from mini_compiler.backends.gpu import ptxas_report

    try:
        report = ptxas_report(compiled).kernel(compiled.name)
    except (FileNotFoundError, RuntimeError):
        return {}
    return {"registers": report.registers, "spills": report.spills}


def bench_vector_add(rows: list[dict], copy: float) -> None:
    import torch
    import triton

    import mini_compiler
    from course.kernels.vector_add import add_kernel
    from mini_compiler.backends.gpu import launcher_for

    n = VECTOR_ADD_N
    x, y = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")
    out = torch.full((n,), float("nan"), device="cuda")
    nbytes = 3 * n * 4
    grid = (triton.cdiv(n, 1024),)
    compiled, launch = launcher_for(add_kernel, grid, x, y, out, n, BLOCK_SIZE=1024, num_warps=4)
    launch()
    correct = is_close(out, x + y, "vector add")
    via_runtime = mini_compiler.jit(add_kernel)
    candidates = {
        "mini_compiler (launcher_for)": launch,
        "mini_compiler (kernel[grid])": lambda: via_runtime[grid](x, y, out, n, BLOCK_SIZE=1024,
                                                                   num_warps=4),
        "triton add_kernel": lambda: add_kernel[grid](x, y, out, n, BLOCK_SIZE=1024),
        "torch x + y": lambda: torch.add(x, y, out=out),
    }
    for impl, fn in candidates.items():
        t = course.bench(fn)
        gbps = course.gbps(nbytes, t)
        row = {"kernel": "vector_add", "size": n, "dtype": "fp32", "impl": impl, "ms": t.ms,
               "gbps": gbps, "fraction_of_copy": gbps / copy}
        if impl == "mini_compiler (launcher_for)":
            row.update(num_warps=4, correct=correct, **resources(compiled))
        add_row(rows, **row)


def bench_softmax(rows: list[dict], n_cols: int, softmax_kernel, num_warps_for) -> None:
    import torch

    from mini_compiler.backends.gpu import launcher_for

    n_rows = SOFTMAX_ELEMENTS // n_cols
    x = torch.randn(n_rows, n_cols, device="cuda")
    out = torch.full_like(x, float("nan"))
    nbytes = 2 * x.numel() * 4
    size = [n_rows, n_cols]
    lesson_warps = num_warps_for(n_cols)
    t = course.bench(lambda: softmax_kernel[(n_rows,)](
        x, out, n_rows, n_cols, x.stride(0), out.stride(0), BLOCK_SIZE=n_cols,
        num_warps=lesson_warps))
    triton_gbps = course.gbps(nbytes, t)
    add_row(rows, kernel="softmax", size=size, dtype="fp32",
            impl=f"triton softmax_kernel (w{lesson_warps})", ms=t.ms, gbps=triton_gbps,
            num_warps=lesson_warps)
    for warps in sorted({lesson_warps, 4, 8, 16}):
        compiled, launch = launcher_for(
            softmax_kernel, (n_rows,), x, out, n_rows, n_cols, x.stride(0), out.stride(0),
            BLOCK_SIZE=n_cols, num_warps=warps)
        out.fill_(float("nan"))
        launch()
        correct = is_close(out, torch.softmax(x, dim=-1), f"softmax N={n_cols} w{warps}")
        t = course.bench(launch)
        gbps = course.gbps(nbytes, t)
        add_row(rows, kernel="softmax", size=size, dtype="fp32",
                impl=f"mini_compiler softmax_kernel (w{warps})", ms=t.ms, gbps=gbps,
                num_warps=warps, fraction_of_triton=gbps / triton_gbps,
                lesson_num_warps=warps == lesson_warps, correct=correct, **resources(compiled))
    t = course.bench(lambda: torch.softmax(x, dim=-1))
    add_row(rows, kernel="softmax", size=size, dtype="fp32", impl="torch.softmax", ms=t.ms,
            gbps=course.gbps(nbytes, t))


def summarise(rows: list[dict]) -> list[str]:
    """One line per target: measured fraction against the target."""
    add = next(r for r in rows if r["impl"] == "mini_compiler (launcher_for)")
    verdicts = [f"vector add: {add['fraction_of_copy']:.1%} of copy "
                f"(target {TARGET_COPY_FRACTION:.0%})"]
    for kernel in ("vector_add", "softmax"):
        warm = {r["impl"]: r["host_us_per_call"] for r in rows
                if r["kernel"] == f"{kernel} warm launch"}
        mine, theirs = warm.get(f"mini_compiler {kernel}"), warm.get(f"triton {kernel}")
        if mine and theirs:
            before = warm.get(f"mini_compiler {kernel} (baseline)")
            verdicts.append(f"{kernel} warm launch: {mine:.1f} us per call, Triton {theirs:.1f}"
                            + (f", before {before:.1f}" if before else "")
                            + " (target: at most Triton's)")
    for n_cols in SOFTMAX_LENGTHS:
        mine = [r for r in rows if r["kernel"] == "softmax" and r["size"][1] == n_cols
                and "fraction_of_triton" in r]
        lesson = next(r for r in mine if r["lesson_num_warps"])
        best = max(mine, key=lambda r: r["gbps"])
        verdicts.append(f"softmax N={n_cols}: {lesson['fraction_of_triton']:.1%} of Triton with "
                        f"the lesson's num_warps, best {best['fraction_of_triton']:.1%} "
                        f"(w{best['num_warps']}) (target {TARGET_TRITON_FRACTION:.0%})")
    for line in verdicts:
        print(line)
    return verdicts


if __name__ == "__main__":
    main()
