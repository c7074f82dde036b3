"""Registers, spills and shared memory of lesson 4's TMA dK/dV kernel, with and without dQ's share.

Run from the repository root on a Hopper GPU:

    PYTHONPATH=. python3 benchmarks/hopper_backward_resources.py

Compiles :func:`course.kernels.attention_hopper.attention_bwd_dkdv_tma_kernel` for fp16, N = 4096,
head_dim 128 and 64, two tilings, causal and not, with dQ left to the separate kernel, added by
atomics, or added by the copy engine's bulk reduce, and prints what the compiled kernel reports:
registers per thread, spilled 4-byte words per thread (Triton's ``n_spills``, the local memory
ptxas gave the kernel, divided by 4) and bytes of shared memory. The output of a run on the H200
is kept in ``benchmarks/results/nvidia-h200/hopper_backward_resources.txt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import course  # noqa: E402


def main() -> None:
    env = course.configure()
    import torch

    if not env.on_gpu or torch.cuda.get_device_capability()[0] < 9:
        print("Needs an NVIDIA GPU with TMA (compute capability 9.0 or later).")
        return
    from triton.tools.tensor_descriptor import TensorDescriptor

    from course.kernels import attention_hopper as ah
    from course.kernels.attention import LOG2E

    modes = ((ah.DQ_SEPARATE, "separate"), (ah.DQ_ATOMICS, "atomics"),
             (ah.DQ_BULK_REDUCE, "bulk reduce"))  # fmt: skip
    for d, heads in ((128, 32), (64, 64)):
        n = 4096
        q, k, v, do = (torch.randn(1, heads, n, d, device="cuda", dtype=torch.float16)
                       for _ in range(4))  # fmt: skip
        lse = torch.zeros(1, heads, n, device="cuda")
        delta = torch.zeros_like(lse)
        dq32 = torch.zeros(1, heads, n, d, device="cuda")
        dk, dv = torch.empty_like(k), torch.empty_like(v)

        def describe(t, rows, d=d, heads=heads):
            return TensorDescriptor(t, [heads * n, d], [d, 1], [rows, d])

        for bm, bn, warps, stages in ((64, 64, 4, 3), (64, 128, 8, 2)):
            for mode, name in modes:
                for causal in (False, True):
                    compiled = ah.attention_bwd_dkdv_tma_kernel[(n // bn, heads)](
                        describe(q, bm), describe(k, bn), describe(v, bn), describe(do, bm),
                        describe(dq32, bm), dq32, dk, dv, lse, delta, n, 0.1, 0.1 * LOG2E,
                        HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=causal, EVEN_N=True,
                        DQ_MODE=mode, num_warps=warps, num_stages=stages)  # fmt: skip
                    print(f"d={d} dkdv {bm}x{bn} w{warps} s{stages} causal={causal} dq={name}: "
                          f"regs {compiled.n_regs} spills {compiled.n_spills} "
                          f"shared {compiled.metadata.shared}")  # fmt: skip


if __name__ == "__main__":
    main()
