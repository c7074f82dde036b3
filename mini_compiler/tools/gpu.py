"""Learner-facing entry points: compile a kernel for the GPU (no GPU needed), inspect every
stage, look at layouts, and run with your own rules plugged in (on a GPU).

These take the runtime's compile path (``mini_compiler.driver``) but bypass its caches on
purpose: each call compiles afresh, so a rule you just changed is the one used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..backends.gpu.compiler import GpuKernel
from ..backends.gpu.lowering import ButterflyRule
from ..backends.gpu.ptxas import PtxasReport, assemble
from ..driver import compile_specialisation
from ..frontend.source import kernel_source, python_function_of
from ..ir.ops import walk_ops
from ..passes.gpu.coalesce import VectorWidthRule
from ..passes.gpu.layouts import Layout
from ..runtime.grid import normalise_grid
from ..runtime.specialization import Specialisation, specialise


def _python_function(kernel):
    fn = python_function_of(kernel)
    if fn is None:
        fn = getattr(kernel, "fn", kernel)
    return fn


def _compile(kernel, args, constexprs, num_warps, vector_width, butterfly_offsets
             ) -> tuple[GpuKernel, Specialisation]:
    num_stages = constexprs.pop("num_stages", None)  # a launch option, as in kernel[grid]
    """The runtime's compile path (``mini_compiler.driver``) without its caches; the
    specialisation is computed once and returned for launching."""
    fn = _python_function(kernel)
    spec = specialise(kernel_source(fn), args, constexprs)
    options = {"num_warps": num_warps, "bounds_check": False, "num_stages": num_stages}
    if vector_width is not None:
        options["vector_width"] = vector_width
    if butterfly_offsets is not None:
        options["butterfly_offsets"] = butterfly_offsets
    compiled = compile_specialisation(fn, spec, "cuda", options)
    kernel_artifact: GpuKernel = compiled.artifact
    kernel_artifact.asm = dict(compiled.asm)  # every stage, the front end's included
    return kernel_artifact, spec


def compile_for_gpu(kernel, *args, num_warps: int = 4,
                    vector_width: VectorWidthRule | None = None,
                    butterfly_offsets: ButterflyRule | None = None,
                    **constexprs) -> GpuKernel:
    """Compile ``kernel`` for these arguments down to PTX; no GPU is needed.

    ``args`` are what you would launch with (tensors on any device: only their dtype and the
    alignment of their address matter, plus the ints and floats). The result's ``asm`` holds
    every stage: ``"tile"`` and ``"tile.<pass>"`` (the front end and the common passes),
    ``"tile.gpu.<pass>"`` (each GPU pass; ``"tile.gpu"`` is the last), ``"llvm"``,
    ``"llvm.opt"`` and ``"ptx"``.
    """
    return _compile(kernel, args, constexprs, num_warps, vector_width, butterfly_offsets)[0]


def run_on_gpu(kernel, grid, *args, num_warps: int = 4,
               vector_width: VectorWidthRule | None = None,
               butterfly_offsets: ButterflyRule | None = None, **constexprs) -> GpuKernel:
    """Compile like :func:`compile_for_gpu` and launch on CUDA tensors (``grid`` as in
    ``kernel[grid]``). Needs a GPU; returns the compiled kernel."""
    compiled, spec = _compile(kernel, args, constexprs, num_warps, vector_width,
                              butterfly_offsets)
    dims = normalise_grid(grid, spec.bound)
    if dims[0] * dims[1] * dims[2]:
        compiled.launch(spec.runtime_args, dims)
    return compiled


def launcher_for(kernel, grid, *args, num_warps: int = 4, **constexprs
                 ) -> tuple[GpuKernel, Callable[[], None]]:
    """Compile once and return ``(compiled, launch)`` where ``launch()`` runs the kernel on
    these exact arguments with no per-call work in Python beyond the driver call: what a
    benchmark should time. Needs a GPU to call ``launch``."""
    compiled, spec = _compile(kernel, args, constexprs, num_warps, None, None)
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


