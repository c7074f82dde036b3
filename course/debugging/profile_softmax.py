"""One launch of lesson 2's softmax kernel at full size, for a profiler to measure.

``ncu --section SpeedOfLight --kernel-name regex:softmax_kernel --launch-skip 1 --launch-count 1
python -m course.debugging.profile_softmax`` (``course.debugging.run_ncu`` does) skips the first
launch, which compiles the kernel, and measures the second. It needs a CUDA GPU.
"""

import sys

import torch

from course.kernels import softmax as lesson


def main(n_cols: int = 4096) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("profiling runs on a CUDA GPU")
    n_rows = 2**27 // n_cols  # 512 MiB of fp32 read and 512 MiB written
    x = torch.randn(n_rows, n_cols, device="cuda")
    for _ in range(2):  # the first launch compiles; the profiler measures the second
        out = lesson.softmax(x)
    torch.cuda.synchronize()
    assert torch.allclose(out, torch.softmax(x, dim=-1), atol=1e-6)
    print(f"softmax of {n_rows} x {n_cols} fp32: {2 * x.numel() * 4 / 2**20:.0f} MiB moved")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4096)
