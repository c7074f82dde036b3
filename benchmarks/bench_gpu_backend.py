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
2,000 times after a warm-up; a sample is the wall time of the calls divided by their number,
measured before the final synchronisation, i.e. what the host spends per launch. Host time
drifts between processes by more than the differences being measured, so each measuring
process times Triton and mini_compiler *interleaved* (batch by batch, 9 batches each), and
``WARM_LAUNCH_PROCESSES`` fresh processes are run; a figure is the median over processes of
each process's median, and the ratio to Triton is taken within each process. ``--baseline DIR``
also measures a copy of an earlier ``mini_compiler`` package found in ``DIR`` (e.g.
``git archive <commit> mini_compiler | tar -x -C DIR``) the same way, its processes alternating
with the current package's, so before and after are timed in one run.

Without a GPU the script prints the ptxas resource report of the compiled kernels instead
(registers, spills) and records nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
WARM_LAUNCH_PROCESSES = 3  # fresh processes per package for the warm-launch host time


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
                        help="only time warm launches (mini_compiler and Triton, interleaved) "
                             "in this process; print JSON")
    args = parser.parse_args()
    env = course.configure()
    if args.warm_launch_json:
        print(json.dumps(warm_launch_host_times()))
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


def host_time_per_call(calls: dict, batch: int = 2000, batches: int = 9) -> dict[str, float]:
    """Host µs per call of each function in ``calls``: the median over ``batches`` of (wall time
    of ``batch`` back-to-back calls) / ``batch``. The functions take turns batch by batch, so a
    drift of the machine during the measurement touches them all alike."""
    import torch

    for fn in calls.values():
        for _ in range(50):
            fn()
    torch.cuda.synchronize()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(batches):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - start) / batch * 1e6)
            torch.cuda.synchronize()
    return {name: statistics.median(times) for name, times in samples.items()}


def warm_launch_host_times() -> dict[str, float]:
    """Host µs per ``kernel[grid](...)`` for the lesson's vector add and softmax kernels, through
    mini_compiler (whichever package is first on the path) and through Triton."""
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
        "triton vector_add": lambda: add_kernel[grid](x, y, out, n, BLOCK_SIZE=1024),
        "mini_compiler softmax": lambda: mini_softmax[(rows,)](
            a, b, rows, cols, a.stride(0), b.stride(0), BLOCK_SIZE=cols, num_warps=warps),
        "triton softmax": lambda: softmax_kernel[(rows,)](
            a, b, rows, cols, a.stride(0), b.stride(0), BLOCK_SIZE=cols, num_warps=warps),
    }
    times = host_time_per_call(calls)
    torch.testing.assert_close(out, x + y)
    torch.testing.assert_close(b, torch.softmax(a, dim=-1))
    return times


def _measure_in_fresh_process(package_dir: str | None) -> dict[str, float] | None:
    env = dict(os.environ)
    if package_dir:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(package_dir).resolve()),
                                             env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, __file__, "--warm-launch-json"], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"warm-launch process failed ({package_dir or 'current'}): "
              f"{done.stderr[-2000:]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_warm_launch(rows: list[dict], baseline: str | None) -> None:
    """Rows of host µs per warm launch: Triton, mini_compiler now, and the baseline copy, each
    from ``WARM_LAUNCH_PROCESSES`` fresh processes (the current package's and the baseline's
    alternating)."""
    runs: dict[str, list[dict]] = {"current": [], "baseline": []}
    for _ in range(WARM_LAUNCH_PROCESSES):
        for which, folder in (("current", None), ("baseline", baseline)):
            if which == "baseline" and not baseline:
                continue
            measured = _measure_in_fresh_process(folder)
            if measured is not None:
                runs[which].append(measured)
    for kernel in ("vector_add", "softmax"):
        size = "4096" if kernel == "vector_add" else [64, 1024]
        triton_all = [r[f"triton {kernel}"] for rs in runs.values() for r in rs]
        if not triton_all:
            continue
        named = [(f"triton {kernel}", runs["current"] + runs["baseline"], f"triton {kernel}"),
                 (f"mini_compiler {kernel}", runs["current"], f"mini_compiler {kernel}"),
                 (f"mini_compiler {kernel} (baseline)", runs["baseline"],
                  f"mini_compiler {kernel}")]
        for impl, processes, field in named:
            if not processes:
                continue
            us = statistics.median(r[field] for r in processes)
            ratio = statistics.median(r[field] / r[f"triton {kernel}"] for r in processes)
            rows.append({"kernel": f"{kernel} warm launch", "size": size, "dtype": "fp32",
                         "impl": impl, "host_us_per_call": us, "ratio_to_triton": ratio,
                         "processes": len(processes),
                         "per_process_us": [round(r[field], 2) for r in processes]})
            print(f"warm launch {impl:40s} {us:7.1f} us per call ({ratio:.2f}x Triton in the "
                  f"same processes; per process {[round(r[field], 1) for r in processes]})",
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
        warm = {r["impl"]: r for r in rows if r["kernel"] == f"{kernel} warm launch"}
        mine, theirs = warm.get(f"mini_compiler {kernel}"), warm.get(f"triton {kernel}")
        if mine and theirs:
            before = warm.get(f"mini_compiler {kernel} (baseline)")
            verdicts.append(
                f"{kernel} warm launch: {mine['host_us_per_call']:.1f} us per call "
                f"({mine['ratio_to_triton']:.2f}x Triton), Triton "
                f"{theirs['host_us_per_call']:.1f}"
                + (f", before {before['host_us_per_call']:.1f} "
                   f"({before['ratio_to_triton']:.2f}x)" if before else "")
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
