"""Host time of the ways one compiled mini_compiler kernel can be launched, on a GPU.

Run from the repository root:  PYTHONPATH=. python3 benchmarks/bench_launch_paths.py

Lesson 1's ``add_kernel`` on 4096 fp32 elements is compiled once by mini_compiler, then launched
through: the ``PackedLauncher`` alone (arguments packed once, one ctypes call into libcuda),
``LoadedKernel.launch`` (``cuda.bindings``, arguments converted per call), the whole
``kernel[grid](...)`` path, and Triton's own launch of the same kernel. Each path is called 2,000
times back to back, the paths taking turns batch by batch (9 batches each); the figure is the
median per-call wall time before synchronising, i.e. what the host spends per launch. Host time
drifts between processes, so only the numbers of one run are compared with each other.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import torch

    import mini_compiler
    from course.kernels.vector_add import add_kernel

    if not torch.cuda.is_available():
        print("no GPU here: nothing to time")
        return
    kernel = mini_compiler.jit(add_kernel)
    n = 4096
    x, y, out = (torch.rand(n, device="cuda") for _ in range(3))
    for _ in range(2):  # the first launch compiles; the second fills the fast path's table
        kernel[(4,)](x, y, out, n, BLOCK_SIZE=1024)
    compiled = next(iter(kernel.cache.fast.values())).artifact
    (packed,) = compiled._packed.values()
    stream = torch.cuda.current_stream().cuda_stream
    values = [x.data_ptr(), y.data_ptr(), out.data_ptr(), n]
    handle = packed._streams.get(stream) or ctypes.c_void_p(stream)
    accepted = packed._call(packed._function, 4, 1, 1, 128, 1, 1, 0, handle, packed.params, None)
    print(f"the driver's answer to the packed call: {accepted} (0 is success); "
          f"fallbacks so far: {packed._refusals}")
    loaded = compiled._loaded[torch.cuda.current_device()]
    paths = {
        "PackedLauncher": lambda: packed(values, (4, 1, 1), stream),
        "LoadedKernel.launch (cuda.bindings)": lambda: loaded.launch(
            (4, 1, 1), 128, (tuple(values), compiled._ctypes), stream),
        "kernel[grid](...)": lambda: kernel[(4,)](x, y, out, n, BLOCK_SIZE=1024),
        "Triton add_kernel[grid](...)": lambda: add_kernel[(4,)](x, y, out, n, BLOCK_SIZE=1024),
    }
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for launch in paths.values():
        for _ in range(100):
            launch()
    torch.cuda.synchronize()
    for _ in range(9):
        for name, launch in paths.items():
            start = time.perf_counter()
            for _ in range(2000):
                launch()
            samples[name].append((time.perf_counter() - start) / 2000 * 1e6)
            torch.cuda.synchronize()
    for name, times in samples.items():
        print(f"{name:40s} {statistics.median(times):6.2f} us per launch")
    torch.testing.assert_close(out, x + y)


if __name__ == "__main__":
    main()
