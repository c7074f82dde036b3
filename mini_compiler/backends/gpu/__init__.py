"""The GPU back end: layout-annotated Tile IR -> per-thread LLVM IR -> PTX -> the CUDA driver.

``kernel[grid](...)`` on CUDA tensors lands here (the runtime picks the back end from the
tensors' device); ``num_warps=`` sets the block size (``num_warps * 32`` threads).

Everything up to PTX runs without a GPU::

    from mini_compiler.backends import gpu
    compiled = gpu.compile_for_gpu(add_kernel, x, y, out, n, BLOCK_SIZE=1024, num_warps=4)
    print(compiled.asm["tile.gpu"])   # Tile IR with a layout on every tile, vector widths,
                                      # shared-memory offsets and barriers
    print(compiled.asm["llvm"])       # one thread's LLVM IR (NVVM intrinsics, inline PTX)
    print(compiled.asm["llvm.opt"])   # ... after LLVM -O3
    print(compiled.ptx)               # PTX for sm_90
    gpu.ptxas_report(compiled).kernel()   # registers, spills, shared memory (ptxas -v)

(``x``, ``y``, ``out`` may be CPU tensors: only dtypes and address alignment matter.)
On a GPU, ``gpu.run_on_gpu(kernel, grid, *args, ...)`` compiles and launches in one call, and
``compiled, launch = gpu.launcher_for(kernel, grid, *args, ...)`` gives a zero-argument
``launch()`` for timing.
``MINI_COMPILER_DEBUG=ir,llvm,ptx`` prints these stages as a launch compiles them.

Layouts, for a picture of which thread holds which element::

    for tile in gpu.tile_layouts(compiled):       # op, shape, element, layout
        print(tile.op, tile.shape, tile.layout)
    print(gpu.render_layout(tile.layout, tile.shape))   # grid of "w{warp}:t{lane}"
    gpu.thread_map(layout, shape)   # nested lists: warp, lane, register, copies per element
    gpu.choose_blocked_layout((64, 128), num_warps=4, vector=4)   # the rule the compiler uses

Exercise hooks (each a plain function passed to ``compile_for_gpu`` / ``run_on_gpu``; the checks
in :mod:`.exercises` replay it, compile a kernel with it and, on a GPU, run it against torch):

* ``butterfly_offsets(lanes, lane_stride) -> list[int]``: the xor distances of the shuffle tree
  of a warp reduction (reference: :func:`.nvvm.butterfly_offsets`, ``[16, 8, 4, 2, 1]`` for a
  full warp); check with ``gpu.exercises.check_butterfly_offsets(yours)``.
* ``vector_width(contiguity, divisibility, elem_bytes) -> int``: the widest legal memory access
  from axis info (reference: ``mini_compiler.passes.gpu.coalesce.vector_width``); check with
  ``gpu.exercises.check_vector_width(yours)``.

Modules: :mod:`.ptx` (LLVM -> PTX), :mod:`.lint` (unresolved intrinsics), :mod:`.ptxas`
(assemble and read ``-v``), :mod:`.driver` (load and launch through ``cuda.bindings``),
:mod:`.nvvm` (intrinsic and inline-asm builders), :mod:`.lowering` (Tile IR -> LLVM IR),
:mod:`.compiler` (the GPU passes and the back end's ``compile`` entry); the helpers above are
in :mod:`mini_compiler.tools.gpu`, the exercise checks in
:mod:`mini_compiler.tools.gpu_exercises`. The GPU passes are in
``mini_compiler.passes.gpu``.
"""

from ...passes.gpu.layouts import (
    BlockedLayout,
    SliceLayout,
    choose_blocked_layout,
    render_layout,
    thread_map,
)
from .compiler import GpuKernel, GpuOptions, compile, compile_tile_ir

# The learner-facing helpers live above the compile path (``mini_compiler.tools``): they call the
# driver, which calls this back end. They are offered here too, looked up on first use, so that
# importing the back end never imports them (no import cycle).
_TOOLS = {"TileLayout", "compile_for_gpu", "launcher_for", "ptxas_report", "run_on_gpu",
          "tile_layouts"}


def __getattr__(name: str):
    import importlib

    if name in _TOOLS:
        return getattr(importlib.import_module("mini_compiler.tools.gpu"), name)
    if name == "exercises":
        return importlib.import_module("mini_compiler.tools.gpu_exercises")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BlockedLayout", "GpuKernel", "GpuOptions", "SliceLayout", "TileLayout",
    "choose_blocked_layout", "compile", "compile_for_gpu", "compile_tile_ir", "launcher_for",
    "ptxas_report",
    "render_layout", "run_on_gpu", "thread_map", "tile_layouts",
]
