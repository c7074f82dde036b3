"""Learner-facing entry points: compile a kernel for the GPU (no GPU needed), inspect every
stage, look at layouts, and run with your own rules plugged in (on a GPU).

These bypass the runtime's compile cache on purpose: each call compiles afresh, so a rule you
just changed is the one used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...frontend.codegen import build_tile_ir, kernel_source, python_function_of
from ...ir.ops import walk_ops
from ...passes.gpu.coalesce import VectorWidthRule
from ...passes.gpu.coalesce import vector_width as default_vector_width
from ...passes.gpu.layouts import Layout
from ...passes.pipeline import PassManager
from ...runtime.jit import normalise_grid
from ...runtime.specialization import specialise
from . import nvvm
from .compiler import GpuKernel, GpuOptions, compile_tile_ir
from .lowering import ButterflyRule
from .ptxas import PtxasReport, assemble

LAUNCH_OPTIONS = ("num_warps", "vector_width", "butterfly_offsets")


def _python_function(kernel):
    fn = python_function_of(kernel)
    if fn is None:
        fn = getattr(kernel, "fn", kernel)
    return fn


def compile_for_gpu(kernel, *args, num_warps: int = 4,
                    vector_width: VectorWidthRule | None = None,
                    butterfly_offsets: ButterflyRule | None = None,
                    **constexprs) -> GpuKernel:
    """Compile ``kernel`` for these arguments down to PTX; no GPU is needed.

    ``args`` are what you would launch with (tensors on any device: only their dtype and the
    alignment of their address matter, plus the ints and floats). The result's ``asm`` holds
    every stage: ``"tile"`` and ``"tile.<pass>"`` (the front end and the common passes),
    ``"tile.gpu"`` (with layouts), ``"llvm"``, ``"llvm.opt"`` and ``"ptx"``.
    """
    fn = _python_function(kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    manager = PassManager(record=True)
    tile_ir = manager.run(build_tile_ir(fn, spec.params))
    options = GpuOptions(num_warps=num_warps,
                         vector_width=vector_width or default_vector_width,
                         butterfly_offsets=butterfly_offsets or nvvm.butterfly_offsets)
    compiled = compile_tile_ir(tile_ir, options)
    compiled.asm = {**manager.stages, **compiled.asm}
    return compiled


def run_on_gpu(kernel, grid, *args, num_warps: int = 4,
               vector_width: VectorWidthRule | None = None,
               butterfly_offsets: ButterflyRule | None = None, **constexprs) -> GpuKernel:
    """Compile like :func:`compile_for_gpu` and launch on CUDA tensors (``grid`` as in
    ``kernel[grid]``). Needs a GPU; returns the compiled kernel."""
    fn = _python_function(kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    compiled = compile_for_gpu(kernel, *args, num_warps=num_warps, vector_width=vector_width,
                               butterfly_offsets=butterfly_offsets, **constexprs)
    dims = normalise_grid(grid, spec.bound)
    if dims[0] * dims[1] * dims[2]:
        compiled.launch(spec.runtime_args, dims)
    return compiled


def launcher_for(kernel, grid, *args, num_warps: int = 4, **constexprs
                 ) -> tuple[GpuKernel, Callable[[], None]]:
    """Compile once and return ``(compiled, launch)`` where ``launch()`` runs the kernel on
    these exact arguments with no per-call work in Python beyond the driver call: what a
    benchmark should time. Needs a GPU to call ``launch``."""
    fn = _python_function(kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    compiled = compile_for_gpu(kernel, *args, num_warps=num_warps, **constexprs)
    dims = normalise_grid(grid, spec.bound)
    runtime_args = spec.runtime_args

    def launch() -> None:
        compiled.launch(runtime_args, dims)

    return compiled, launch


@dataclass(frozen=True)
class TileLayout:
    """One tile of a compiled kernel and how it is spread over the threads."""

    op: str  # e.g. "tile.load"
    shape: tuple[int, ...]
    element: str
    layout: Layout


def tile_layouts(compiled: GpuKernel) -> list[TileLayout]:
    """Every tile-producing op of a compiled kernel with its layout, in program order."""
    found = []
    for op in walk_ops(compiled.layout_ir.body):
        if op.results and not op.results[0].type.is_scalar and op.layout is not None and (
                not isinstance(op.layout, tuple)):
            value = op.results[0]
            found.append(TileLayout(op.name, value.type.shape, str(value.type.element),
                                    op.layout))
    return found


def ptxas_report(compiled: GpuKernel, arch: str = "sm_90") -> PtxasReport:
    """Assemble the kernel's PTX with ptxas (from Triton's wheel): registers, spills, smem."""
    return assemble(compiled.ptx, arch)


