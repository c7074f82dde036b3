"""Host time per call of the lesson wrappers against torch, on problems too small for a GPU.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_host_time.py [--out DIR]

A call to ``course.kernels.matmul`` first runs Python on the CPU (checks, finding the compiled
kernel, packing arguments) and only then queues the kernel. When the kernel itself takes a few
microseconds, that CPU time is the run time. Measured here: after a warm-up, the wall time of
``CALLS`` calls in a row *without* waiting for the GPU, divided by ``CALLS``, the median of
``REPEATS`` such runs, taken in rounds that time the wrapper, Triton's path and torch one after
another. The GPU finishes each tiny kernel sooner than the CPU issues the next, so the
queue never fills and the figure is the CPU's cost per call.

For each operation: the course's wrapper (which caches the chosen configuration and a launcher
bound to it per key, see ``course/kernels/_launch.py``), the same kernel launched through Triton's
own ``kernel[grid](...)`` path with the configuration given (what every call cost before the cache,
less the autotuner's lookup), and torch's own operation. On a CPU there is no GPU to hide behind and
the interpreter's cost is all there is: the script says so and stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402

CALLS = 2000
REPEATS = 7
TARGET = 1.5  # the wrapper may cost at most this many times torch's host time


def host_us(fn, calls: int = CALLS, repeats: int = REPEATS) -> float:
    """Median over ``repeats`` of the CPU microseconds per call of ``fn`` (no synchronisation)."""
    return host_rounds({"fn": fn}, calls, repeats)["fn"]


def host_rounds(fns: dict, calls: int = CALLS, repeats: int = REPEATS) -> dict[str, float]:
    """{label: median CPU microseconds per call}, timed in ``repeats`` rounds that each run every
    function ``calls`` times, one after another: if the CPU speeds up or slows down during the run
    (the same call measured 20 and 31 us in two runs on the H200's host), every function's figure
    moves alike."""
    import torch

    for fn in fns.values():
        for _ in range(50):
            fn()
    torch.cuda.synchronize()
    runs = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            runs[label].append((time.perf_counter() - start) / calls * 1e6)
            torch.cuda.synchronize()
    return {label: statistics.median(r) for label, r in runs.items()}


def cases():
    """(name, size, course wrapper, Triton's launch path, torch) for each operation."""
    import torch
    import torch.nn.functional as F
    import triton

    from course.kernels import attention as att
    from course.kernels import matmul as mm
    from course.kernels import softmax as sm

    dev = "cuda"
    a = torch.randn(128, 128, device=dev, dtype=torch.float16)
    b = torch.randn(128, 128, device=dev, dtype=torch.float16)
    c = torch.empty(128, 128, device=dev, dtype=torch.float16)
    mm.matmul(a, b)  # the autotuner chooses once
    best = mm.matmul_autotuned.best_config
    grid = (triton.cdiv(128, best.kwargs["BLOCK_M"]) * triton.cdiv(128, best.kwargs["BLOCK_N"]),)

    def matmul_triton_path():
        mm.matmul_kernel[grid](
            a, b, c, 128, 128, 128, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
            c.stride(0), c.stride(1), ACTIVATION=None, EVEN_K=True, **best.all_kwargs(),
        )  # fmt: skip

    def matmul_autotuner_path():
        mm.matmul_autotuned[lambda meta: grid](
            a, b, c, 128, 128, 128, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
            c.stride(0), c.stride(1), ACTIVATION=None,
        )  # fmt: skip

    x = torch.randn(64, 1024, device=dev)
    y = torch.empty_like(x)

    def softmax_triton_path():
        sm.softmax_kernel[(64,)](x, y, 64, 1024, 1024, 1024, BLOCK_SIZE=1024, num_warps=4)

    q, k, v = (torch.randn(1, 4, 128, 64, device=dev, dtype=torch.float16) for _ in range(3))
    o, lse = torch.empty_like(q), torch.empty(1, 4, 128, device=dev)
    cfg = att.default_fwd_config(64, False)

    def attention_triton_path():
        att.attention_fwd_kernel[(triton.cdiv(128, cfg.block_m), 4)](
            q, k, v, o, lse, 128, 0.125 * att.LOG2E, HEAD_DIM=64, BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n, CAUSAL=False, EVEN_N=True,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip

    return [
        ("matmul", "fp16 128^3", lambda: mm.matmul(a, b), matmul_triton_path,
         lambda: torch.matmul(a, b), matmul_autotuner_path),
        ("softmax", "fp32 64 x 1024", lambda: sm.softmax(x), softmax_triton_path,
         lambda: torch.softmax(x, dim=-1), None),
        ("attention", "fp16 B1 H4 N128 D64", lambda: att.attention(q, k, v), attention_triton_path,
         lambda: F.scaled_dot_product_attention(q, k, v), None),
    ]  # fmt: skip


def breakdown() -> list[dict]:
    """Where a cached call's time goes: the input checks, the output allocation, and the bound
    launcher alone (the launcher the wrappers keep after their first call of each key)."""
    import torch

    from course.kernels import attention as att
    from course.kernels import matmul as mm
    from course.kernels import softmax as sm

    a = torch.randn(128, 128, device="cuda", dtype=torch.float16)
    x = torch.randn(64, 1024, device="cuda")
    q = torch.randn(1, 4, 128, 64, device="cuda", dtype=torch.float16)
    rows = []
    for name, checks, allocate, cache in (
        ("matmul", lambda: mm._check_inputs(a, a, None), lambda: a.new_empty((128, 128)),
         mm._LAUNCHES),
        ("softmax", lambda: sm._check_input(x), lambda: torch.empty_like(x), sm._LAUNCHES),
        ("attention", lambda: att._validate(q, q, q), lambda: (torch.empty_like(q),
         q.new_empty((1, 4, 128), dtype=torch.float32)), att._LAUNCHES),
    ):  # fmt: skip
        launcher = next(iter(cache._launchers.values()), None) if len(cache) == 1 else None
        row = {"op": name, "part": "breakdown", "checks_us": host_us(checks),
               "allocation_us": host_us(allocate), "cached_entries": len(cache)}  # fmt: skip
        if launcher is not None:
            args = {"matmul": (a, a, torch.empty_like(a), 128, 128, 128, 128, 1, 128, 1, 128, 1),
                    "softmax": (x, torch.empty_like(x), 64, 1024, 1024, 1024),
                    "attention": (q, q, q, torch.empty_like(q), torch.empty((1, 4, 128),
                                  device="cuda"), 128, 0.18)}[name]  # fmt: skip
            row["bound_launcher_us"] = host_us(lambda: launcher(*args))
        print(f"  {name}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in row.items() if k not in ("op", "part")))
        rows.append(row)
    # Three ways to allocate the same output: the wrappers use the two that take the device
    # from a tensor rather than from a device= argument.
    ways = host_rounds({
        "torch_empty_device_us": lambda: torch.empty(x.shape, dtype=x.dtype, device=x.device),
        "empty_like_us": lambda: torch.empty_like(x),
        "new_empty_us": lambda: x.new_empty(x.shape),
    })  # fmt: skip
    print("  allocation of 64 x 1024 fp32: " + ", ".join(f"{k} {v:.1f}" for k, v in ways.items()))
    rows.append({"op": "allocation", "part": "ways", **ways})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: repo's)")
    args = parser.parse_args()
    env = course.configure()
    if not env.on_gpu:
        print("Host time per call needs a GPU: on the CPU the interpreter runs every kernel in "
              "Python, so there is no launch cost to measure. Nothing recorded.")  # fmt: skip
        return
    from course.results import record

    rows = []
    print("| op | size | course wrapper µs | Triton launch path µs | autotuner path µs | torch µs "
          "| wrapper / torch | target |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, size, ours, triton_path, torch_op, autotuner in cases():
        fns = {"wrapper_us": ours, "triton_launch_us": triton_path, "torch_us": torch_op}
        if autotuner:
            fns["autotuner_us"] = autotuner
        row = {"op": name, "size": size, "calls": CALLS, "repeats": REPEATS,
               "autotuner_us": None, **host_rounds(fns)}  # fmt: skip
        row["wrapper_over_torch"] = row["wrapper_us"] / row["torch_us"]
        rows.append(row)
        auto = f"{row['autotuner_us']:.1f}" if autotuner else "-"
        print(f"| {name} | {size} | {row['wrapper_us']:.1f} | {row['triton_launch_us']:.1f} | "
              f"{auto} | {row['torch_us']:.1f} | {row['wrapper_over_torch']:.2f}x | "
              f"<= {TARGET}x |")  # fmt: skip
    rows += breakdown()
    path = record(
        "host_time", rows, directory=args.out, target=TARGET,
        notes="CPU microseconds per call, no synchronisation between calls, median of "
        f"{REPEATS} runs of {CALLS} calls after 50 warm-up calls, the runs of one operation's "
        "wrapper, Triton path and torch taken in turn; tiny problems.",
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
