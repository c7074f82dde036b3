"""Going further on Hopper: the TMA kernels against cuBLAS, cuDNN and the lessons' kernels.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_hopper.py [--out DIR] [--sweep]

First correctness, on shapes that are not multiples of the tiles, fp16 and bf16, against a float64
(matmul) or float32 (attention) reference, outputs poisoned with NaN before each run; a variant
that fails to compile or gives a wrong answer is recorded as such and left out of the timings.
Then, side by side in one run (``triton.testing.do_bench`` medians, random data, in rounds that
time every kernel once each, the peer first, so that the GPU's clock drifts over all of them alike;
a row keeps the median round):

* matmul, fp16 and bf16, 4096^3 and 8192^3, TFLOP/s: cuBLAS (``torch.matmul``), the lesson's
  autotuned kernel, and the steps of :mod:`course.kernels.matmul_hopper` one after another
  (persistent, + TMA, + epilogue subtiling, + warp specialisation, the tuned configuration);
* attention forward, fp16, B=4, N=4096, head_dim 128 (H=32) and 64 (H=64), causal and not:
  cuDNN (SDPA's cuDNN back end), the lesson's kernel, and :mod:`course.kernels.attention_hopper`
  (plain, warp-specialised, with lazy rescaling);
* attention backward, same cases: cuDNN (``torch.autograd.grad`` through SDPA's cuDNN back end),
  the lesson's kernels (:func:`~course.kernels.attention.attention_backward`), the TMA kernels
  (dK/dV, then dQ, as in the lesson) and one TMA kernel that adds dQ's shares itself, by the copy
  engine's bulk reduce or by atomics.

``--sweep`` also times a few other tile shapes and pipeline depths of each new kernel (how the
chosen configurations were found). Writes ``hopper.json`` under ``benchmarks/results/<device>/``
(``hopper_sweep.json`` with ``--sweep``; ``--only PART`` adds ``_PART`` to the name).
Needs a GPU with TMA (compute capability 9.0 or later); elsewhere it says so and stops.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402

MATMUL_SIZES = (4096, 8192)
ATTENTION_CASES = [(4, 32, 4096, 128), (4, 64, 4096, 64)]  # (batch, heads, N, head_dim)
RAGGED_MATMUL = [(1000, 1000, 1000), (777, 555, 333), (1, 4096, 64)]
RAGGED_ATTENTION = [(1, 3, 1000, 128), (2, 2, 77, 64), (1, 2, 4096, 128)]
# Each shape compiles its own specialisation: the full check is for the kernels the lesson shows;
# sweep variants (timed only to choose) are checked on one shape.


def matmul_steps():
    """(name, HopperConfig) in the order of the lesson's story, then the tuned configuration."""
    from course.kernels.matmul_hopper import GPU_CONFIG, HopperConfig

    base = HopperConfig()  # 128 x 256 x 64 tiles, 8 warps, 3 stages, group 8: the TMA step
    steps = [
        ("persistent", replace(base, tma=False)),
        ("persistent, not flattened", replace(base, tma=False, flatten=False)),
        ("persistent + TMA", base),
        ("+ epilogue subtile", replace(base, epilogue_subtile=True)),
        ("+ warp specialise", replace(base, epilogue_subtile=True, warp_specialize=True)),
    ]
    if GPU_CONFIG not in dict(steps).values():
        steps.append((f"tuned: {GPU_CONFIG.num_stages} stages, group {GPU_CONFIG.group_size}",
                      GPU_CONFIG))  # fmt: skip
    return steps


def matmul_sweep():
    from course.kernels.matmul_hopper import HopperConfig

    return [
        (f"sweep {bm}x{bn}x{bk} w{w} s{s}{' sub' if sub else ''}{' ws' if ws else ''}",
         HopperConfig(bm, bn, bk, w, s, epilogue_subtile=sub, warp_specialize=ws))
        for bm, bn, bk, w, s, sub, ws in [
            (128, 256, 64, 8, 4, True, False),
            (128, 256, 64, 8, 4, False, False),
            (128, 256, 64, 8, 4, True, True),
            (128, 256, 64, 8, 3, False, True),
            (128, 128, 64, 4, 4, False, False),
            (256, 128, 64, 8, 3, True, False),
        ]
    ] + [("sweep 128x256x64 w8 s3 group 16", HopperConfig(group_size=16)),
         ("sweep 128x256x64 w8 s3 group 4", HopperConfig(group_size=4)),
         ("sweep 128x256x64 w8 s4 sub group 4",
          HopperConfig(num_stages=4, epilogue_subtile=True, group_size=4)),
         ("sweep 128x256x64 w8 s4 sub group 32",
          HopperConfig(num_stages=4, epilogue_subtile=True, group_size=32))]  # fmt: skip


def attention_variants(head_dim: int, causal: bool, sweep: bool):
    from course.kernels.attention_hopper import HopperFwdConfig, default_config

    chosen = default_config(head_dim, causal)
    variants = [("hopper (chosen)", chosen),
                ("hopper + warp specialise", replace(chosen, warp_specialize=True)),
                ("hopper + lazy rescale", replace(chosen, lazy_rescale=True))]  # fmt: skip
    if sweep:
        shapes = [
            (128, 128, 8, 3),
            (128, 64, 8, 3),
            (128, 64, 8, 4),
            (128, 128, 8, 3, True),
            (128, 64, 8, 3, True),
        ]
        if head_dim == 64:
            shapes += [
                (128, 64, 4, 3),
                (128, 64, 4, 4),
                (128, 32, 4, 3),
                (64, 64, 4, 3),
                (128, 64, 8, 2),
                (256, 64, 8, 3),
                (128, 128, 4, 2),
                (256, 128, 8, 2),
            ]
        for bm, bn, w, s, *ws in shapes:
            cfg = HopperFwdConfig(bm, bn, w, s, warp_specialize=bool(ws))
            if cfg not in (chosen, replace(chosen, warp_specialize=True)):
                variants.append((f"sweep {bm}x{bn} w{w} s{s}{' ws' if ws else ''}", cfg))
    return variants


def backward_variants(head_dim: int, causal: bool, sweep: bool):
    """The chosen backward, dQ added by the dK/dV kernel both ways, and (``sweep``) other tiles."""
    from course.kernels.attention_hopper import HopperBwdConfig, default_bwd_config

    chosen = default_bwd_config(head_dim, causal)
    one_kernel = replace(chosen, block_m=64, block_n=64, num_warps=4, num_stages=3)
    variants = [
        ("hopper bwd (chosen)", chosen),
        ("hopper bwd, one kernel, bulk reduce", replace(one_kernel, dq="bulk reduce")),
        ("hopper bwd, one kernel, atomics", replace(one_kernel, dq="atomics")),
    ]
    if sweep:  # (dK/dV kernel: block_m, block_n, warps, stages; dQ kernel: the same)
        shapes = [
            ((64, 128, 8, 2), (128, 64, 8, 2)),
            ((64, 128, 8, 3), (128, 64, 8, 3)),
            ((64, 64, 4, 3), (64, 64, 4, 3)),
            ((32, 64, 4, 3), (64, 32, 4, 3)),
            ((64, 64, 4, 2), (64, 64, 4, 2)),
            ((32, 128, 8, 2), (128, 32, 8, 2)),
            ((64, 128, 8, 2), (128, 128, 8, 2)),
            ((32, 128, 4, 3), (128, 32, 4, 3)),
            ((64, 128, 8, 2), (64, 64, 4, 3)),
            ((64, 64, 4, 3), (128, 64, 8, 2)),
        ]
        for (bm, bn, w, s), (bm2, bn2, w2, s2) in shapes:
            cfg = HopperBwdConfig(bm, bn, w, s, "kernel", bm2, bn2, w2, s2)
            if cfg != chosen:
                variants.append(
                    (f"sweep bwd {bm}x{bn} w{w} s{s} / dq {bm2}x{bn2} w{w2} s{s2}", cfg)
                )
        variants.append(
            (
                "sweep bwd one kernel 64x128 w8 s2, bulk reduce",
                HopperBwdConfig(64, 128, 8, 2, "bulk reduce"),
            )
        )
    return variants  # fmt: skip


def check_matmul(dtype, cfg, full: bool = True) -> str | None:
    """None if the kernel is right on every ragged shape, else what went wrong."""
    import torch

    from course.kernels.matmul import tolerance
    from course.kernels.matmul_hopper import matmul_hopper

    for m, n, k in RAGGED_MATMUL if full else RAGGED_MATMUL[:1]:
        for transposed_b in (False, True) if full else (False,):
            a = torch.randn(m, k, device="cuda", dtype=dtype)
            b = (torch.randn(n, k, device="cuda", dtype=dtype).T if transposed_b
                 else torch.randn(k, n, device="cuda", dtype=dtype))  # fmt: skip
            try:
                c = matmul_hopper(a, b, "leaky_relu", config=cfg)
            except Exception as error:  # noqa: BLE001 - recorded, the variant is left out
                return f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            expected = torch.nn.functional.leaky_relu(a.double() @ b.double(), 0.01)
            rtol, atol = tolerance(dtype, k)
            if not torch.allclose(c.double(), expected, rtol=rtol, atol=atol):
                worst = (c.double() - expected).abs().max().item()
                return f"wrong at {m}x{n}x{k} (b transposed: {transposed_b}): max error {worst:.3g}"
    return None


def check_attention(dtype, cfg, causal: bool, full: bool = True) -> str | None:
    import torch

    from course.kernels.attention_hopper import attention_forward_hopper

    for batch, heads, n, d in RAGGED_ATTENTION if full else RAGGED_ATTENTION[:1]:
        q, k, v = (torch.randn(batch, heads, n, d, device="cuda", dtype=dtype) for _ in range(3))
        try:
            o, lse = attention_forward_hopper(q, k, v, causal=causal, config=cfg)
        except Exception as error:  # noqa: BLE001
            return f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        expected = torch.nn.functional.scaled_dot_product_attention(
            q.float(), k.float(), v.float(), is_causal=causal
        )
        tol = 2e-2 if dtype == torch.bfloat16 else 4e-3
        if not torch.allclose(o.float(), expected, rtol=tol, atol=tol) or lse.isnan().any():
            worst = (o.float() - expected).abs().max().item()
            return f"wrong at B{batch} H{heads} N{n} D{d} causal={causal}: max error {worst:.3g}"
    return None


def check_attention_backward(dtype, cfg, causal: bool, full: bool = True) -> str | None:
    import torch

    from course.kernels.attention_hopper import attention_backward_hopper, attention_forward_hopper

    for batch, heads, n, d in RAGGED_ATTENTION if full else RAGGED_ATTENTION[:1]:
        q, k, v, do = (torch.randn(batch, heads, n, d, device="cuda", dtype=dtype)
                       for _ in range(4))  # fmt: skip
        try:
            o, lse = attention_forward_hopper(q, k, v, causal=causal)
            grads = attention_backward_hopper(do, q, k, v, o, lse, causal=causal, config=cfg)
        except Exception as error:  # noqa: BLE001
            return f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        ref = [t.double().requires_grad_() for t in (q, k, v)]
        out = torch.nn.functional.scaled_dot_product_attention(*ref, is_causal=causal)
        expected = torch.autograd.grad(out, ref, do.double())
        tol = 5e-2 if dtype == torch.bfloat16 else 1e-2
        for name, got, want in zip("qkv", grads, expected, strict=True):
            if not torch.allclose(got.double(), want, rtol=tol, atol=tol):
                worst = (got.double() - want).abs().max().item()
                return (f"d{name} wrong at B{batch} H{heads} N{n} D{d} causal={causal}: "
                        f"max error {worst:.3g}")  # fmt: skip
    return None


def prepare(task: tuple) -> tuple[tuple, str | None]:
    """Check one variant and compile it for the timed shape too (in a worker process).

    Compiling is most of this benchmark's time and each variant compiles several specialisations;
    worker processes compile them side by side, and Triton's disk cache hands the results to the
    process that times them (one at a time).
    """
    import torch

    course.configure()
    torch.manual_seed(0)
    if task[0] == "matmul":
        _, dtype_name, label, cfg = task
        from course.kernels.matmul_hopper import matmul_hopper

        dtype = getattr(torch, dtype_name)
        problem = check_matmul(dtype, cfg, full=not label.startswith("sweep"))
        if problem is None:
            a = torch.randn(MATMUL_SIZES[0], MATMUL_SIZES[0], device="cuda", dtype=dtype)
            matmul_hopper(a, a, config=cfg)
    else:
        part, (batch, heads, n, d), causal, label, cfg = task
        from course.kernels.attention_hopper import (
            attention_backward_hopper,
            attention_forward_hopper,
        )

        full = not label.startswith("sweep")
        check = check_attention if part == "attention" else check_attention_backward
        problem = None
        for dtype in (torch.float16, torch.bfloat16) if full else (torch.float16,):
            problem = problem or check(dtype, cfg, causal, full)
        if problem is None:
            q = torch.randn(batch, heads, n, d, device="cuda", dtype=torch.float16)
            if part == "attention":
                attention_forward_hopper(q, q, q, causal=causal, config=cfg)
            else:
                o, lse = attention_forward_hopper(q, q, q, causal=causal)
                attention_backward_hopper(q, q, q, q, o, lse, causal=causal, config=cfg)
    torch.cuda.synchronize()
    return task, problem


def prepare_all(tasks: list[tuple], workers: int) -> dict:
    """{task: problem or None} for every task, checked and compiled by ``workers`` processes."""
    import concurrent.futures as futures
    import multiprocessing

    results = {}
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for task, problem in pool.map(prepare, tasks):
            results[task] = problem
            if problem:
                print(f"  {task[0]} {task[1:-1]}: {problem}")
    return results


ROUNDS = 5  # each round times every kernel once, the peer first; a row keeps the median round


def interleaved(fns: dict, rounds: int = ROUNDS) -> dict[str, tuple[float, list[float]]]:
    """{label: (median ms, the rounds' ms)}: ``rounds`` rounds of ``do_bench`` over every function.

    Timing each kernel once, one after another, lets the GPU's clock drift between them: in one
    run cuBLAS measured 760 TFLOP/s first and 678 at the end. Rounds spread that drift over every
    kernel alike, and the median round drops the outlier.
    """
    import statistics

    from triton.testing import do_bench

    times = {label: [] for label in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            times[label].append(do_bench(fn))
    return {label: (statistics.median(ms), ms) for label, ms in times.items()}


def bench_matmul(sweep: bool, problems: dict) -> list[dict]:
    import torch

    from course.kernels.matmul import flops, matmul
    from course.kernels.matmul_hopper import matmul_hopper

    rows = []
    variants = matmul_steps() + (matmul_sweep() if sweep else [])
    for dtype in (torch.float16, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        broken = {label: problems[("matmul", name, label, cfg)] for label, cfg in variants
                  if problems[("matmul", name, label, cfg)]}  # fmt: skip
        for size in MATMUL_SIZES:
            a = torch.randn(size, size, device="cuda", dtype=dtype)
            b = torch.randn(size, size, device="cuda", dtype=dtype)
            fns = {"cuBLAS": lambda: torch.matmul(a, b), "lesson": lambda: matmul(a, b)}
            for label, cfg in variants:
                if label not in broken:
                    fns[label] = lambda cfg=cfg: matmul_hopper(a, b, config=cfg)
            timings = interleaved(fns)
            cublas = timings["cuBLAS"][0]
            work = flops(size, size, size)
            for label, (ms, rounds) in timings.items():
                row = {"kernel": label, "dtype": name, "size": size, "ms": ms,
                       "rounds_ms": rounds, "tflops": work / ms * 1e-9,
                       "vs_cublas": cublas / ms}  # fmt: skip
                config = dict(variants).get(label)
                if config is not None:
                    row["config"] = config.as_dict()
                rows.append(row)
                print(f"| matmul | {name} | {size} | {label} | {row['tflops']:.0f} | "
                      f"{row['vs_cublas']:.3f}x |")  # fmt: skip
        for label, problem in broken.items():
            rows.append({"kernel": label, "dtype": name, "error": problem})
    return rows


def attention_rows(part, case, causal, fns, variants, broken, work) -> list[dict]:
    """Time ``fns`` (cuDNN first, then the lesson, then ours) in rounds; one row per kernel."""
    batch, heads, n, d = case
    timings = interleaved(fns)
    peer, lesson = timings["cuDNN"][0], timings["lesson"][0]
    rows = []
    for label, (ms, rounds) in timings.items():
        row = {"kernel": label, "batch": batch, "heads": heads, "n": n, "head_dim": d,
               "causal": causal, "dtype": "float16", "ms": ms, "rounds_ms": rounds,
               "tflops": work / ms * 1e-9, "vs_cudnn": peer / ms,
               "vs_lesson": lesson / ms}  # fmt: skip
        config = dict(variants).get(label)
        if config is not None:
            row["config"] = dict(config.__dict__)
        rows.append(row)
        print(f"| {part} | D{d} causal={causal} | {label} | {row['tflops']:.0f} | "
              f"{row['vs_cudnn']:.3f}x cuDNN | {row['vs_lesson']:.3f}x lesson |")  # fmt: skip
    for label, problem in broken.items():
        rows.append({"kernel": label, "head_dim": d, "causal": causal, "error": problem})
    return rows


def bench_attention(sweep: bool, problems: dict) -> list[dict]:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from course.kernels.attention import attention_flops, attention_forward
    from course.kernels.attention_hopper import attention_forward_hopper

    rows = []
    for case in ATTENTION_CASES:
        for causal in (False, True):
            variants = attention_variants(case[3], causal, sweep)
            broken = {label: problems[("attention", case, causal, label, cfg)]
                      for label, cfg in variants
                      if problems[("attention", case, causal, label, cfg)]}  # fmt: skip
            q, k, v = (torch.randn(*case, device="cuda", dtype=torch.float16) for _ in range(3))

            def cudnn():
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    return torch.nn.functional.scaled_dot_product_attention(
                        q, k, v, is_causal=causal
                    )

            fns = {"cuDNN": cudnn, "lesson": lambda: attention_forward(q, k, v, causal=causal)}
            for label, cfg in variants:
                if label not in broken:
                    fns[label] = lambda cfg=cfg: attention_forward_hopper(
                        q, k, v, causal=causal, config=cfg
                    )
            work = attention_flops(*case, causal)
            rows += attention_rows("attention fwd", case, causal, fns, variants, broken, work)
    return rows


def bench_attention_backward(sweep: bool, problems: dict) -> list[dict]:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from course.kernels.attention import attention_backward, attention_flops, attention_forward
    from course.kernels.attention_hopper import attention_backward_hopper

    rows = []
    for case in ATTENTION_CASES:
        for causal in (False, True):
            variants = backward_variants(case[3], causal, sweep)
            broken = {label: problems[("attention-bwd", case, causal, label, cfg)]
                      for label, cfg in variants
                      if problems[("attention-bwd", case, causal, label, cfg)]}  # fmt: skip
            q, k, v, do = (torch.randn(*case, device="cuda", dtype=torch.float16)
                           for _ in range(4))  # fmt: skip
            o, lse = attention_forward(q, k, v, causal=causal)
            leaves = [t.clone().requires_grad_() for t in (q, k, v)]
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                o_cudnn = torch.nn.functional.scaled_dot_product_attention(
                    *leaves, is_causal=causal
                )
            fns = {
                "cuDNN": lambda: torch.autograd.grad(o_cudnn, leaves, do, retain_graph=True),
                "lesson": lambda: attention_backward(do, q, k, v, o, lse, causal=causal),
            }
            for label, cfg in variants:
                if label not in broken:
                    fns[label] = lambda cfg=cfg: attention_backward_hopper(
                        do, q, k, v, o, lse, causal=causal, config=cfg
                    )
            work = attention_flops(*case, causal, backward=True)
            rows += attention_rows("attention bwd", case, causal, fns, variants, broken, work)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: repo's)")
    parser.add_argument("--sweep", action="store_true", help="also time other configurations")
    parser.add_argument("--only", choices=("matmul", "attention", "attention-bwd"), default=None)
    parser.add_argument("--workers", type=int, default=12, help="processes that compile variants")
    args = parser.parse_args()
    env = course.configure()
    import torch

    if not env.on_gpu or torch.cuda.get_device_capability()[0] < 9:
        print("The Hopper kernels need an NVIDIA GPU with TMA (compute capability 9.0 or later); "
              "their CPU runs are in tests/test_hopper_kernels.py. Nothing recorded.")  # fmt: skip
        return
    from course.results import record

    tasks = []
    if args.only in (None, "matmul"):
        variants = matmul_steps() + (matmul_sweep() if args.sweep else [])
        tasks += [("matmul", dtype, label, cfg) for dtype in ("float16", "bfloat16")
                  for label, cfg in variants]  # fmt: skip
    if args.only in (None, "attention"):
        tasks += [("attention", case, causal, label, cfg) for case in ATTENTION_CASES
                  for causal in (False, True)
                  for label, cfg in attention_variants(case[3], causal, args.sweep)]  # fmt: skip
    if args.only in (None, "attention-bwd"):
        tasks += [("attention-bwd", case, causal, label, cfg) for case in ATTENTION_CASES
                  for causal in (False, True)
                  for label, cfg in backward_variants(case[3], causal, args.sweep)]  # fmt: skip
    problems = prepare_all(tasks, args.workers)
    torch.manual_seed(0)
    rows = []
    for part, run in (
        ("matmul", bench_matmul),
        ("attention", bench_attention),
        ("attention-bwd", bench_attention_backward),
    ):
        if args.only in (None, part):
            try:
                rows += [{"part": part, **row} for row in run(args.sweep, problems)]
            except Exception:  # noqa: BLE001 - keep what the other part measured
                traceback.print_exc()
                rows.append({"part": part, "error": traceback.format_exc()[-2000:]})
    name = "hopper" + ("_sweep" if args.sweep else "") + (f"_{args.only}" if args.only else "")
    path = record(
        name.replace("-", "_"), rows, directory=args.out, sweep=args.sweep, rounds=ROUNDS,
        notes=f"do_bench medians (ms), random data, in {ROUNDS} rounds: each round times the peer "
        "(cuBLAS or cuDNN), the lesson's kernel and every variant once; a row's ms is its median "
        "round. Part attention: forward pass; attention-bwd: backward pass (2.5x the forward's "
        "FLOPs).",
    )  # fmt: skip
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
