"""Run a kernel's IR after every GPU pass through the reference interpreter, on CPU tensors.

What a GPU pass does must never change what a kernel computes. Layouts, shared-memory offsets
and barriers describe *how* the GPU computes; the interpreter runs the IR as a whole program
and ignores the how, with one exception that makes it a test of the shared-memory passes: once
``gpu.allocate_shared_memory`` has placed a buffer, the interpreter keeps the buffer's data in a
simulated shared memory at the offsets and swizzled places the IR says (``ir/semantics.py``).
Two live buffers given the same bytes, or a swizzle that sends two chunks to one place, then
give wrong results here, on a laptop, as they would on the GPU.

This is how the lesson 3 compiler exercises check a learner's swizzle or allocator without a
GPU: :func:`interpret_gpu_stages` compiles with the learner's rule and returns each stage's
outputs.
"""

from __future__ import annotations

import copy

from ..backends.gpu.compiler import GpuOptions, gpu_passes
from ..driver import interpret_with_runtime_args
from ..frontend.codegen import build_tile_ir
from ..frontend.source import kernel_source
from ..passes.pipeline import PassManager
from ..runtime.specialization import specialise


def _python_function(kernel):
    return getattr(kernel, "fn", kernel)


def interpret_gpu_stages(kernel, grid: tuple[int, ...], args: tuple, outputs: list,
                         constexprs: dict, **options) -> dict[str, list]:
    """For the IR before the GPU passes (``"tile"``) and after each of them
    (``"tile.gpu.<pass>"``): run it over ``grid`` on ``args`` (CPU tensors) and keep a copy of
    each tensor in ``outputs`` (poisoned with NaN before every run). ``options`` are
    :class:`~mini_compiler.backends.gpu.compiler.GpuOptions` fields (``num_warps``, ``swizzle``,
    ``place_buffers``, ...)."""
    fn = _python_function(kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    optimised = PassManager(record=False).run(build_tile_ir(fn, spec.params))
    manager = PassManager(gpu_passes(GpuOptions(**options)), record=False, snapshots=True,
                          first_stage=None)
    manager.run(copy.deepcopy(optimised))
    results = {}
    for stage, ir in [("tile", optimised)] + manager.snapshots:
        for t in outputs:
            t.fill_(float("nan"))
        interpret_with_runtime_args(copy.deepcopy(ir), spec.runtime_args, grid)
        results[stage] = [t.clone() for t in outputs]
    return results
