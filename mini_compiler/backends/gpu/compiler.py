"""The GPU pipeline: optimised Tile IR -> GPU passes -> per-thread LLVM IR -> PTX -> a launcher.

Stages (each kept as text in ``GpuKernel.asm``, printed when ``MINI_COMPILER_DEBUG`` names it):

==============  ===========================================================================
``tile.gpu``    Tile IR with layouts, ``vector_width``, shared-memory offsets and barriers
``llvm``        the per-thread LLVM IR we generate (NVVM intrinsics, inline PTX)
``llvm.opt``    the same after LLVM's -O3
``ptx``         NVPTX's output for ``sm_90``, linted for unresolved intrinsics
==============  ===========================================================================

Compiling needs no GPU; launching loads the PTX through the CUDA driver on first use.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field

from ...ir.ops import Function
from ...ir.printer import print_function
from ...passes.gpu.allocate_shared_memory import allocate_shared_memory
from ...passes.gpu.assign_layouts import assign_layouts
from ...passes.gpu.axis_info import analyse_axis_info
from ...passes.gpu.coalesce import VectorWidthRule, coalesce, vector_width
from ...passes.gpu.insert_barriers import insert_barriers
from . import nvvm
from .driver import CTYPES_FOR_LLVM, LoadedKernel, load_kernel, torch_current_stream
from .lint import check_ptx
from .lowering import ButterflyRule, lower_to_llvm
from .ptx import DEFAULT_ARCH, llvm_ir_to_ptx, optimised_llvm_ir

MAX_STATIC_SHARED_BYTES = 48 * 1024


@dataclass
class GpuOptions:
    """What one GPU compilation may be told: launch shape and the two exercise rules."""

    num_warps: int = 4
    arch: str = DEFAULT_ARCH
    vector_width: VectorWidthRule = vector_width
    butterfly_offsets: ButterflyRule = nvvm.butterfly_offsets

    def __post_init__(self) -> None:
        if self.num_warps < 1 or self.num_warps & (self.num_warps - 1) or self.num_warps > 32:
            raise ValueError(f"num_warps must be a power of two from 1 to 32, got "
                             f"{self.num_warps}")


@dataclass
class GpuKernel:
    """A compiled kernel: the text of every stage, and a launcher (loaded on first launch)."""

    name: str
    num_warps: int
    shared_bytes: int
    param_types: list[str]  # "ptr", "i32", "f32", ... per kernel parameter
    asm: dict[str, str] = field(default_factory=dict)
    layout_ir: Function | None = None
    _loaded: dict[int, LoadedKernel] = field(default_factory=dict, repr=False)

    @property
    def ptx(self) -> str:
        return self.asm["ptx"]

    def pack_arguments(self, runtime_args: list) -> tuple[tuple, tuple]:
        values, types = [], []
        for arg, kind in zip(runtime_args, self.param_types, strict=False):
            ctype = CTYPES_FOR_LLVM[kind]
            address = getattr(arg, "address", None)
            values.append(address if address is not None else arg)
            types.append(ctype)
        return tuple(values), tuple(types)

    def launch(self, runtime_args: list, grid: tuple[int, int, int],
               stream: int | None = None) -> None:
        """Run on the current CUDA device, on torch's current stream unless ``stream`` is given.

        ``runtime_args``: per parameter, an object with ``.address`` (a tensor argument, as the
        runtime passes it), a raw device address, or a number.
        """
        import torch

        device = torch.cuda.current_device()
        if device not in self._loaded:
            self._loaded[device] = load_kernel(self.ptx, self.name, device)
        if stream is None:
            stream = torch_current_stream()
        self._loaded[device].launch(grid, self.num_warps * nvvm.WARP_SIZE,
                                    self.pack_arguments(runtime_args), stream)


def _param_type(value) -> str:
    element = value.type.element
    return "ptr" if element.is_pointer else element.name


def run_gpu_passes(fn: Function, options: GpuOptions) -> int:
    """Annotate ``fn`` in place for the GPU; return its shared-memory bytes."""
    axis_info = analyse_axis_info(fn)
    widths = coalesce(fn, axis_info, options.vector_width)
    assign_layouts(fn, options.num_warps, widths)
    shared_bytes = allocate_shared_memory(fn)
    if shared_bytes > MAX_STATIC_SHARED_BYTES:
        raise ValueError(f"kernel {fn.name} needs {shared_bytes} bytes of shared memory for "
                         f"layout conversions; the limit for static shared memory is "
                         f"{MAX_STATIC_SHARED_BYTES}: use smaller blocks")
    insert_barriers(fn)
    return shared_bytes


def compile_tile_ir(fn: Function, options: GpuOptions | None = None,
                    debug: set[str] | frozenset[str] = frozenset(),
                    name: str | None = None) -> GpuKernel:
    """Compile optimised Tile IR (the output of the default pass pipeline) for the GPU.

    ``fn`` is not modified: the GPU passes work on a copy, kept as ``GpuKernel.layout_ir``.
    """
    options = options or GpuOptions()
    fn = copy.deepcopy(fn)
    if name:
        fn.name = name
    shared_bytes = run_gpu_passes(fn, options)
    asm: dict[str, str] = {"tile.gpu": print_function(fn)}
    _show(debug, "ir", "tile.gpu", asm["tile.gpu"])
    module = lower_to_llvm(fn, options.num_warps, shared_bytes, options.butterfly_offsets)
    asm["llvm"] = str(module)
    _show(debug, "llvm", "llvm", asm["llvm"])
    asm["llvm.opt"] = optimised_llvm_ir(asm["llvm"], options.arch)
    _show(debug, "llvm", "llvm.opt", asm["llvm.opt"])
    asm["ptx"] = check_ptx(llvm_ir_to_ptx(asm["llvm.opt"], options.arch, optimise_first=False))
    _show(debug, "ptx", "ptx", asm["ptx"])
    return GpuKernel(fn.name, options.num_warps, shared_bytes,
                     [_param_type(arg) for arg in fn.args], asm, fn)


def _show(debug, switch: str, stage: str, text: str) -> None:
    if switch in debug or "asm" in debug and switch == "ptx":
        print(f"// ----- {stage} -----\n{text}", file=sys.stdout, flush=True)


def compile(fn: Function, options: dict) -> GpuKernel:  # noqa: A001 - the back-end interface
    """The back-end interface of ``mini_compiler.backends`` (see its docstring)."""
    gpu_options = GpuOptions(num_warps=options.get("num_warps") or 4)
    return compile_tile_ir(fn, gpu_options, options.get("debug") or set(),
                           options.get("kernel_name"))

