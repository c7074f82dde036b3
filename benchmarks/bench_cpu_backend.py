"""Benchmark: mini_compiler's CPU back end against Triton's interpreter and torch on the CPU.

The same four ``@triton.jit`` kernels (tests/compiler/kernels.py) run three ways on the same
inputs: compiled by mini_compiler to x86 (warm: compile time excluded, median of repeats),
executed by Triton's interpreter (``TRITON_INTERPRET=1``, one run: it is slow), and the torch CPU
equivalent (median of repeats). Ratios are printed and written as JSON to
``benchmarks/results/cpu/`` with the date, CPU model and library versions.

    python benchmarks/bench_cpu_backend.py            # full course CPU sizes
    python benchmarks/bench_cpu_backend.py --quick    # smaller sizes, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: @triton.jit -> interpreter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "compiler"))

import kernels  # noqa: E402
import llvmlite  # noqa: E402
import torch  # noqa: E402
import triton  # noqa: E402

import mini_compiler  # noqa: E402


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def case_vector_add(n: int):
    x, y = torch.rand(n), torch.rand(n)
    out = torch.empty(n)
    block = 1024
    grid = (triton.cdiv(n, block),)
    mc = mini_compiler.jit(kernels.add_kernel)
    return {
        "name": f"vector_add n={n}",
        "mini": lambda: mc[grid](x, y, out, n, BLOCK_SIZE=block),
        "interp": lambda: kernels.add_kernel[grid](x, y, out, n, BLOCK_SIZE=block),
        "torch": lambda: torch.add(x, y, out=out),
        "check": lambda: torch.testing.assert_close(out, x + y),
    }


def case_softmax(rows: int, cols: int):
    x = torch.randn(rows, cols)
    out = torch.empty_like(x)
    block = triton.next_power_of_2(cols)
    mc = mini_compiler.jit(kernels.softmax_kernel)
    args = (out, x, x.stride(0), out.stride(0), cols)
    return {
        "name": f"softmax {rows}x{cols}",
        "mini": lambda: mc[(rows,)](*args, BLOCK_SIZE=block),
        "interp": lambda: kernels.softmax_kernel[(rows,)](*args, BLOCK_SIZE=block),
        "torch": lambda: torch.softmax(x, dim=1),
        "check": lambda: torch.testing.assert_close(out, torch.softmax(x, dim=1)),
    }


def case_matmul(size: int):
    a, b = torch.randn(size, size), torch.randn(size, size)
    c = torch.empty(size, size)
    meta = dict(BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32, GROUP_SIZE_M=8)
    grid = (triton.cdiv(size, 64) * triton.cdiv(size, 64),)
    args = (a, b, c, size, size, size, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
            c.stride(0), c.stride(1))
    mc = mini_compiler.jit(kernels.matmul_kernel)
    return {
        "name": f"matmul {size}^3",
        "mini": lambda: mc[grid](*args, **meta),
        "interp": lambda: kernels.matmul_kernel[grid](*args, **meta),
        "torch": lambda: torch.matmul(a, b),
        "check": lambda: torch.testing.assert_close(c, a @ b, atol=1e-3, rtol=1e-3),
    }


def case_attention(batch: int, heads: int, n_ctx: int, head_dim: int, causal: bool):
    q, k, v = (torch.randn(batch, heads, n_ctx, head_dim) for _ in range(3))
    o = torch.empty_like(q)
    grid = (triton.cdiv(n_ctx, 64), batch * heads)
    args = (q, k, v, o, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *o.stride()[:3],
            heads, n_ctx, head_dim ** -0.5)
    meta = dict(HEAD_DIM=head_dim, BLOCK_M=64, BLOCK_N=64, CAUSAL=causal)
    mc = mini_compiler.jit(kernels.attention_kernel)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return {
        "name": f"attention B{batch} H{heads} N{n_ctx} D{head_dim}"
                + (" causal" if causal else ""),
        "mini": lambda: mc[grid](*args, **meta),
        "interp": lambda: kernels.attention_kernel[grid](*args, **meta),
        "torch": lambda: sdpa(q, k, v, is_causal=causal),
        "check": lambda: torch.testing.assert_close(o, sdpa(q, k, v, is_causal=causal),
                                                    atol=1e-4, rtol=1e-4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    options = parser.parse_args()
    if options.quick:
        cases = [case_vector_add(98_432), case_softmax(256, 781), case_matmul(128),
                 case_attention(1, 2, 128, 64, False)]
    else:
        cases = [case_vector_add(98_432), case_vector_add(1 << 20), case_vector_add(1 << 22),
                 case_softmax(1823, 781),
                 case_matmul(512), case_attention(1, 4, 256, 64, False),
                 case_attention(1, 4, 256, 64, True)]
    results = []
    for case in cases:
        start = time.perf_counter()
        case["mini"]()  # compile + first run
        compile_s = time.perf_counter() - start
        case["check"]()
        mini_s = timed(case["mini"], 20)
        torch_s = timed(case["torch"], 20)
        interp_s = timed(case["interp"], 1)
        row = {
            "kernel": case["name"], "mini_compiler_s": mini_s, "first_call_s": compile_s,
            "triton_interpreter_s": interp_s, "torch_cpu_s": torch_s,
            "speedup_vs_interpreter": interp_s / mini_s, "time_vs_torch": mini_s / torch_s,
        }
        results.append(row)
        print(f"{row['kernel']:<36} mini_compiler {mini_s * 1e3:9.3f} ms | interpreter "
              f"{interp_s * 1e3:9.1f} ms ({row['speedup_vs_interpreter']:8.1f}x faster) | torch "
              f"{torch_s * 1e3:8.3f} ms (mini/torch {row['time_vs_torch']:.2f}) | first call "
              f"{compile_s:.2f} s", flush=True)
    record = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "triton": triton.__version__,
        "llvmlite": llvmlite.__version__, "torch_threads": torch.get_num_threads(),
        "method": "median of 20 warm runs (mini_compiler, torch); one run (Triton interpreter)",
        "results": results,
    }
    if not options.no_save and not options.quick:
        out_dir = ROOT / "benchmarks" / "results" / "cpu"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"bench_cpu_backend_{datetime.date.today().isoformat()}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
