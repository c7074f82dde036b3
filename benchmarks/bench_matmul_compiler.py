"""Lesson 3's ``matmul_kernel`` compiled by mini_compiler for the GPU: correctness, then speed.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_matmul_compiler.py [--out DIR]

The kernel source is the lesson's, unchanged (``course/kernels/matmul.py``); mini_compiler lowers
its ``tl.dot`` onto tensor cores (``mma.sync.m16n8k16``, operands through shared memory, read
with ``ldmatrix``).

1. **Correctness** against a float64 product of the same inputs (fresh ``torch.randn``, outputs
   poisoned with NaN first), with the lesson's own tolerance (``matmul.tolerance``): ragged
   shapes 1000^3, 4097x513x1031, 1x77x300; fp16 and bf16; with and without the leaky-ReLU
   epilogue; row-major and transposed inputs; for every configuration in ``CHECKED``.
2. **Speed**, ``triton.testing.do_bench`` medians in one run: cuBLAS (``torch.matmul``), the same
   kernel compiled by Triton (one fixed configuration, the lesson's fastest measured on an H100:
   128x256x64, 8 warps, 3 stages), and mini_compiler step by step: the shared layout without and
   with the swizzle, the K loop loading one iteration ahead, then bigger tiles and more warps
   (the biggest, 128x256x64, with shared memory beyond 48 KB: dynamic, sized at launch), then
   the operands copied by ``cp.async`` into a ring of 3 or 4 shared-memory slots
   (``num_stages``). fp16 4096^3 runs every step; the other sizes and dtypes the best register
   step and the ``cp.async`` steps.
   fp16 and bf16, 4096^3 and 8192^3 (the last step only, beyond fp16 4096^3).

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

import mini_compiler  # noqa: E402
import mini_compiler.hooks  # noqa: E402, F401 - hooks.override plugs a swizzle in
from course.kernels.matmul import matmul_kernel, tolerance  # noqa: E402
from mini_compiler.passes.gpu.mma_layouts import no_swizzle, swizzle  # noqa: E402

# (label, BLOCK_M, BLOCK_N, BLOCK_K, num_warps, swizzle rule, num_stages): the speed table's steps.
STEPS = [
    ("shared + ldmatrix, 64x64x64, 4 warps, no swizzle", 64, 64, 64, 4, no_swizzle, 1),
    ("+ swizzle", 64, 64, 64, 4, swizzle, 1),
    ("+ next tiles loaded during the dot (num_stages 2)", 64, 64, 64, 4, swizzle, 2),
    ("+ tile 128x128x32, 4 warps", 128, 128, 32, 4, swizzle, 2),
    ("+ tile 128x128x64, 8 warps", 128, 128, 64, 8, swizzle, 2),
    # 64 KB of shared memory: beyond the 48 KB of static shared memory, so dynamic (given at
    # launch); registers allow no second stage at this tile size
    ("tile 128x256x64, 8 warps, dynamic shared memory, num_stages 1", 128, 256, 64, 8, swizzle,
     1),
    # from here the operands go from global to shared memory by cp.async, through a ring of
    # num_stages slots (dynamic shared memory: 96 KB and more)
    ("+ cp.async, 3 stages (128x128x64, 8 warps)", 128, 128, 64, 8, swizzle, 3),
    ("+ cp.async, 4 stages (128x128x64, 8 warps)", 128, 128, 64, 8, swizzle, 4),
    ("+ cp.async, 3 stages, tile 128x256x64, 8 warps", 128, 256, 64, 8, swizzle, 3),
]
# Checked for correctness, and timed at every size and dtype: the best register-pipelined step
# and every cp.async step.
CHECKED = [STEPS[4]] + [step for step in STEPS if step[-1] >= 3]
CHECK_SHAPES = [(1000, 1000, 1000), (4097, 513, 1031), (1, 77, 300)]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def run_mini(a, b, c, activation, block, num_warps, num_stages=2):
    """One launch of the lesson's kernel through mini_compiler's ``kernel[grid](...)``."""
    (m, k), n = a.shape, b.shape[1]
    bm, bn, bk = block
    KERNEL[(cdiv(m, bm) * cdiv(n, bn),)](
        a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
        c.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_SIZE=8, ACTIVATION=activation,
        EVEN_K=k % bk == 0, num_warps=num_warps, num_stages=num_stages)
    return c


def mini_launcher(a, b, c, block, num_warps, rule, num_stages):
    """Compile once with the swizzle ``rule`` and return a launch with no Python work per call
    beyond the driver's (``gpu.launcher_for``)."""
    from mini_compiler.backends.gpu import launcher_for

    (m, k), n = a.shape, b.shape[1]
    bm, bn, bk = block
    with mini_compiler.hooks.override(gpu={"swizzle": rule}):
        _, launch = launcher_for(
            matmul_kernel, (cdiv(m, bm) * cdiv(n, bn),), a, b, c, m, n, k, a.stride(0),
            a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1), BLOCK_M=bm,
            BLOCK_N=bn, BLOCK_K=bk, GROUP_SIZE=8, ACTIVATION=None, EVEN_K=k % bk == 0,
            num_warps=num_warps, num_stages=num_stages)
    return launch


KERNEL = mini_compiler.jit(matmul_kernel)


def reference(a, b, activation):
    out = a.double() @ b.double()
    if activation == "leaky_relu":
        out = torch.where(out >= 0, out, 0.01 * out)
    return out


def first_look(device) -> dict:
    """One warp, one 16x16x16 tensor-core step: where a wrong fragment map shows plainest."""
    a = torch.randn(16, 16, device=device, dtype=torch.float16)
    b = torch.randn(16, 16, device=device, dtype=torch.float16)
    c = torch.full((16, 16), float("nan"), device=device, dtype=torch.float16)
    run_mini(a, b, c, None, (16, 16, 16), 1)
    error = (c.double() - reference(a, b, None)).abs()
    wrong = (error.nan_to_num(1e9) > 0.05).nonzero().tolist()
    row = {"max_abs_error": float(error.nan_to_num(1e9).max()), "wrong": wrong[:40]}
    print("16x16x16, one warp:", row, flush=True)
    return row


def check_correctness(device) -> list[dict]:
    results = []
    for label, bm, bn, bk, warps, _, stages in CHECKED:
        for row in check_configuration((bm, bn, bk), warps, stages, device):
            results.append({"configuration": label, **row})
    return results


def check_configuration(block, warps, stages, device) -> list[dict]:
    results = []
    for (m, n, k) in CHECK_SHAPES:
        for dtype in (torch.float16, torch.bfloat16):
            for activation in (None, "leaky_relu"):
                for transposed in (False, True):
                    a = (torch.randn(k, m, device=device, dtype=dtype).t() if transposed
                         else torch.randn(m, k, device=device, dtype=dtype))
                    b = (torch.randn(n, k, device=device, dtype=dtype).t() if transposed
                         else torch.randn(k, n, device=device, dtype=dtype))
                    c = torch.full((m, n), float("nan"), device=device, dtype=dtype)
                    run_mini(a, b, c, activation, block, warps, stages)
                    want = reference(a, b, activation)
                    rtol, atol = tolerance(dtype, k)
                    error = (c.double() - want).abs()
                    ok = bool(torch.isfinite(c).all()) and bool(
                        (error <= atol + rtol * want.abs()).all())
                    row = {"shape": [m, n, k], "dtype": str(dtype).split(".")[-1],
                           "activation": activation, "transposed": transposed, "ok": ok,
                           "max_abs_error": float(error.max()), "atol": atol, "rtol": rtol}
                    print(row, flush=True)
                    results.append(row)
    return results


def tflops(m, n, k, ms):
    return 2 * m * n * k / (ms * 1e-3) / 1e12


def measure_speed(device) -> list[dict]:
    from triton.testing import do_bench

    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        for size in (4096, 8192):
            a = torch.randn(size, size, device=device, dtype=dtype)
            b = torch.randn(size, size, device=device, dtype=dtype)
            c = torch.empty(size, size, device=device, dtype=dtype)
            entry = {"dtype": str(dtype).split(".")[-1], "size": size}
            entry["cublas"] = tflops(size, size, size, do_bench(lambda: torch.matmul(a, b, out=c),
                                                                 return_mode="median"))

            def triton_run():
                matmul_kernel[(cdiv(size, 128) * cdiv(size, 256),)](
                    a, b, c, size, size, size, a.stride(0), a.stride(1), b.stride(0),
                    b.stride(1), c.stride(0), c.stride(1), BLOCK_M=128, BLOCK_N=256, BLOCK_K=64,
                    GROUP_SIZE=8, ACTIVATION=None, EVEN_K=True, num_warps=8, num_stages=3)
            entry["triton"] = tflops(size, size, size, do_bench(triton_run, return_mode="median"))
            steps = STEPS if (dtype == torch.float16 and size == 4096) else CHECKED
            entry["mini_compiler"] = {}
            for label, bm, bn, bk, warps, rule, stages in steps:
                launch = mini_launcher(a, b, c, (bm, bn, bk), warps, rule, stages)
                c.fill_(float("nan"))
                launch()
                torch.testing.assert_close(c[:64, :64].float(), (a[:64] @ b[:, :64]).float(),
                                           rtol=2e-2, atol=0.5)
                ms = do_bench(launch, return_mode="median")
                entry["mini_compiler"][label] = tflops(size, size, size, ms)
            print(entry, flush=True)
            rows.append(entry)
    return rows


def ptxas_table() -> None:
    from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report

    a = torch.empty(4096, 4096, dtype=torch.float16)
    for label, bm, bn, bk, warps, rule, stages in STEPS:
        with mini_compiler.hooks.override(gpu={"swizzle": rule}):
            compiled = compile_for_gpu(matmul_kernel, a, a, a, 4096, 4096, 4096, 4096, 1, 4096, 1,
                                       4096, 1, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                                       GROUP_SIZE=8, ACTIVATION=None, EVEN_K=True,
                                       num_warps=warps, num_stages=stages)
        print(f"{label:<50} {ptxas_report(compiled).kernel()}, dynamic shared memory "
              f"{compiled.dynamic_shared_bytes} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        ptxas_table()
        return
    device = "cuda"
    import llvmlite
    import triton

    record = {
        "device": torch.cuda.get_device_name(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "triton": triton.__version__,
                     "llvmlite": llvmlite.__version__, "python": platform.python_version()},
        "method": "triton.testing.do_bench medians (ms -> TFLOP/s = 2*M*N*K/t), random "
                  "torch.randn inputs, all rows of one size and dtype timed in one run",
    }
    record["first_look"] = first_look(device)
    record["correctness"] = check_correctness(device)
    record["speed_tflops"] = measure_speed(device)
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "matmul_compiler.json").write_text(text + "\n")
    if not all(r["ok"] for r in record["correctness"]):
        sys.exit("some mini_compiler results were wrong (see 'ok': false above)")


if __name__ == "__main__":
    main()
