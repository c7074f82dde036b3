"""Tiles for the TMA backward pass of lesson 4: each of its two kernels timed on its own.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_hopper_backward_tiles.py

The backward pass launches the dK/dV kernel and then the dQ kernel, and the two take their tiles
independently (:class:`course.kernels.attention_hopper.HopperBwdConfig`), so the fastest pair is
the fastest dK/dV tiling with the fastest dQ tiling. Timing whole backward passes would need every
pair; here each kernel is timed alone over a list of tilings (block rows, block columns, warps,
pipeline stages), for fp16, B=4, N=4096, head_dim 128 (H=32) and 64 (H=64), causal and not.
``do_bench`` medians, in 3 rounds that time every tiling once each; a tiling that does not compile
(too much shared memory) is listed as such. The choice is ``GPU_BWD_CONFIGS`` in
``course/kernels/attention_hopper.py``; correctness is ``bench_hopper.py``'s and the tests' job.
Writes ``hopper_backward_tiles.json`` under ``benchmarks/results/<device>/``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402

CASES = [(4, 32, 4096, 128), (4, 64, 4096, 64)]  # (batch, heads, N, head_dim)
DKDV_TILES = [(64, 128, 8, 3), (64, 128, 8, 2), (64, 64, 4, 2), (64, 64, 4, 3), (32, 64, 4, 3),
              (32, 128, 8, 3), (64, 64, 8, 2), (64, 128, 4, 3), (32, 64, 4, 4), (64, 64, 4, 4),
              (32, 128, 4, 3)]  # (block_m, block_n, warps, stages)  # fmt: skip
DQ_TILES = [(128, 64, 8, 3), (128, 64, 8, 2), (64, 64, 4, 2), (64, 64, 4, 3), (64, 32, 4, 3),
            (128, 32, 8, 3), (128, 128, 8, 2), (64, 64, 8, 2), (128, 64, 4, 3), (128, 64, 8, 4),
            (64, 32, 4, 4)]  # (block_m2, block_n2, warps, stages)  # fmt: skip
ROUNDS = 3


def inputs(case, causal):
    """q, k, v, dO, lse and delta for one case (lse from the lesson's forward pass)."""
    import torch

    from course.kernels.attention import attention_forward

    torch.manual_seed(0)
    q, k, v, do = (torch.randn(*case, device="cuda", dtype=torch.float16) for _ in range(4))
    o, lse = attention_forward(q, k, v, causal=causal)
    delta = (o.float() * do.float()).sum(-1)
    return q, k, v, do, lse, delta


def launcher(kernel: str, tile, case, causal: bool, tensors):
    """A function that launches one of the two kernels with ``tile`` on ``tensors``."""
    import torch
    import triton
    from triton.tools.tensor_descriptor import TensorDescriptor

    from course.kernels import attention_hopper as ah
    from course.kernels.attention import LOG2E

    q, k, v, do, lse, delta = tensors
    batch, heads, n, d = case
    block_m, block_n, warps, stages = tile
    scale = d**-0.5

    def describe(t, rows):
        return TensorDescriptor(t, [batch * heads * n, d], [d, 1], [rows, d])

    if kernel == "dkdv":  # (dQ's descriptor and buffer go unused: DQ_SEPARATE)
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        grid = (triton.cdiv(n, block_n), batch * heads)
        return lambda: ah.attention_bwd_dkdv_tma_kernel[grid](
            describe(q, block_m), describe(k, block_n), describe(v, block_n), describe(do, block_m),
            None, dk, dk, dv, lse, delta, n, scale, scale * LOG2E, HEAD_DIM=d, BLOCK_M=block_m,
            BLOCK_N=block_n, CAUSAL=causal, EVEN_N=True, DQ_MODE=ah.DQ_SEPARATE,
            num_warps=warps, num_stages=stages)  # fmt: skip
    dq = torch.empty_like(q)
    grid = (triton.cdiv(n, block_m), batch * heads)
    return lambda: ah.attention_bwd_dq_tma_kernel[grid](
        describe(q, block_m), describe(k, block_n), describe(v, block_n), describe(do, block_m),
        dq, lse, delta, n, scale, scale * LOG2E, HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n,
        CAUSAL=causal, EVEN_N=True, num_warps=warps, num_stages=stages)  # fmt: skip


def compile_one(task):
    """Compile one (kernel, tile, case, causal) in a worker; None, or why it failed."""
    import torch

    course.configure()
    kernel, tile, case, causal = task
    try:
        launcher(kernel, tile, case, causal, inputs(case, causal))()
        torch.cuda.synchronize()
        return task, None
    except Exception as error:  # noqa: BLE001 - recorded, the tiling is left out
        return task, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: repo's)")
    parser.add_argument("--workers", type=int, default=12, help="processes that compile tilings")
    args = parser.parse_args()
    env = course.configure()
    import torch

    if not env.on_gpu or torch.cuda.get_device_capability()[0] < 9:
        print("The TMA kernels need an NVIDIA GPU with compute capability 9.0 or later. "
              "Nothing recorded.")  # fmt: skip
        return
    from triton.testing import do_bench

    from course.results import record

    kernels = (("dkdv", DKDV_TILES), ("dq", DQ_TILES))
    tasks = [(kernel, tile, case, causal) for case in CASES for causal in (False, True)
             for kernel, tiles in kernels for tile in tiles]  # fmt: skip
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        problems = dict(pool.map(compile_one, tasks))
    rows = []
    for case in CASES:
        for causal in (False, True):
            tensors = inputs(case, causal)
            for kernel, tiles in kernels:
                fns = {tile: launcher(kernel, tile, case, causal, tensors) for tile in tiles
                       if problems[(kernel, tile, case, causal)] is None}  # fmt: skip
                times = {tile: [] for tile in fns}
                for _ in range(ROUNDS):
                    for tile, fn in fns.items():
                        times[tile].append(do_bench(fn))
                for tile in tiles:
                    row = {"kernel": kernel, "head_dim": case[3], "heads": case[1],
                           "causal": causal, "tile": list(tile)}  # fmt: skip
                    if tile in times:
                        row |= {"ms": statistics.median(times[tile]), "rounds_ms": times[tile]}
                    else:
                        row["error"] = problems[(kernel, tile, case, causal)]
                    rows.append(row)
                best = sorted((r["ms"], r["tile"]) for r in rows[-len(tiles):] if "ms" in r)
                print(f"D{case[3]} causal={causal} {kernel}: "
                      + ", ".join(f"{tuple(t)} {ms * 1000:.0f} us" for ms, t in best[:4]))
    path = record("hopper_backward_tiles", rows, directory=args.out, rounds=ROUNDS,
                  notes="do_bench medians (ms) of each backward kernel alone, fp16, EVEN_N, in "
                  f"{ROUNDS} rounds over the tilings; tile = (block rows, block columns, warps, "
                  "stages).")  # fmt: skip
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
