"""The GPU pipeline: optimised Tile IR -> GPU passes -> per-thread LLVM IR -> PTX -> a launcher.

Stages (each kept as text in ``GpuKernel.asm``, printed when ``MINI_COMPILER_DEBUG`` names it):

==============  ===========================================================================
``tile.gpu.*``  Tile IR after each GPU pass (``gpu.pipeline_loads``, ``gpu.coalesce``,
                ``gpu.assign_layouts``,
                ``gpu.allocate_shared_memory``, ``gpu.insert_barriers``)
``tile.gpu``    the last of them: layouts, ``vector_width``, shared-memory offsets, barriers
``shared_memory``  the allocator's plan: each buffer's offset, size and live range
``llvm``        the per-thread LLVM IR we generate (NVVM intrinsics, inline PTX)
``llvm.opt``    the same after LLVM's -O3
``ptx``         NVPTX's output for ``sm_90``, linted for unresolved intrinsics
==============  ===========================================================================

Compiling needs no GPU; launching loads the PTX through the CUDA driver on first use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from ...debug import print_stage
from ...errors import CompilationError
from ...ir.ops import Function
from ...ir.printer import print_function
from ...passes.gpu.allocate_shared_memory import PlaceRule, allocate_shared_memory, place_buffers
from ...passes.gpu.assign_layouts import assign_layouts
from ...passes.gpu.async_pipeline import pipeline_async
from ...passes.gpu.axis_info import analyse_axis_info
from ...passes.gpu.coalesce import VectorWidthRule, coalesce, vector_width
from ...passes.gpu.insert_barriers import insert_barriers
from ...passes.gpu.mma_layouts import SwizzleRule, swizzle
from ...passes.gpu.pipeline_loads import NUM_STAGES
from ...passes.pipeline import PassManager
from . import nvvm
from .driver import (
    CTYPES_FOR_LLVM,
    GpuUnavailableError,
    LoadedKernel,
    PackedLauncher,
    load_kernel,
    torch_current_stream,
)
from .lint import check_ptx
from .lowering import ButterflyRule, lower_to_llvm
from .ptx import DEFAULT_ARCH, llvm_ir_to_ptx, optimised_llvm_ir

MAX_STATIC_SHARED_BYTES = 48 * 1024
# Shared memory one block may have on sm_90 (H100/H200): 227 KB, all of it beyond 48 KB dynamic.
MAX_DYNAMIC_SHARED_BYTES = 227 * 1024


# The GPU's exercise rules, replaceable for a block with ``hooks.override(gpu={...})``.
RULES: dict[str, Callable] = {"vector_width": vector_width,
                              "butterfly_offsets": nvvm.butterfly_offsets,
                              "swizzle": swizzle, "place_buffers": place_buffers}
DEFAULT_RULES = dict(RULES)


@dataclass
class GpuOptions:
    """What one GPU compilation may be told: launch shape and the two exercise rules."""

    num_warps: int = 4
    num_stages: int = NUM_STAGES  # tl.dot loops: tiles loaded this many iterations ahead - 1
    arch: str = DEFAULT_ARCH
    vector_width: VectorWidthRule = field(default_factory=lambda: RULES["vector_width"])
    butterfly_offsets: ButterflyRule = field(
        default_factory=lambda: RULES["butterfly_offsets"])
    swizzle: SwizzleRule = field(default_factory=lambda: RULES["swizzle"])
    place_buffers: PlaceRule = field(default_factory=lambda: RULES["place_buffers"])

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
    # Shared memory above 48 KB is *dynamic*: declared with no size in the PTX, given at launch.
    dynamic_shared_bytes: int = 0
    _loaded: dict[int, LoadedKernel] = field(default_factory=dict, repr=False)
    _packed: dict[int, Callable] = field(default_factory=dict, repr=False)

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

    def __post_init__(self) -> None:
        self._ctypes = tuple(CTYPES_FOR_LLVM[kind] for kind in self.param_types)

    def launch_raw(self, values: list, grid: tuple[int, int, int]) -> None:
        """The warm launch path: ``values`` are already plain numbers (device addresses for
        tensors); no per-argument objects are built. On torch's current device and stream."""
        device, stream = _current_device_and_stream()
        packed = self._packed.get(device)
        if packed is None:
            packed = self._packed[device] = self._packed_launcher(device)
        packed(values, grid, stream)

    def _packed_launcher(self, device: int) -> Callable:
        """The fastest launcher this machine allows: a :class:`PackedLauncher` (one foreign call
        per launch), else the ``cuda.bindings`` call with the values converted each time."""
        loaded = self._loaded.get(device)
        if loaded is None:
            loaded = self._loaded[device] = self._load(device)
        threads = self.num_warps * nvvm.WARP_SIZE
        try:
            return PackedLauncher(loaded, self._ctypes, threads,
                                  shared_bytes=self.dynamic_shared_bytes)
        except GpuUnavailableError:  # pragma: no cover - libcuda not reachable by ctypes
            return lambda values, grid, stream: loaded.launch(
                grid, threads, (tuple(values), self._ctypes), stream)

    def _load(self, device: int) -> LoadedKernel:
        return load_kernel(self.ptx, self.name, device, self.dynamic_shared_bytes)

    def launch(self, runtime_args: list, grid: tuple[int, int, int],
               stream: int | None = None) -> None:
        """Run on the current CUDA device, on torch's current stream unless ``stream`` is given.

        ``runtime_args``: per parameter, an object with ``.address`` (a tensor argument, as the
        runtime passes it), a raw device address, or a number.
        """
        import torch

        device = torch.cuda.current_device()
        if device not in self._loaded:
            self._loaded[device] = self._load(device)
        if stream is None:
            stream = torch_current_stream(device)
        self._loaded[device].launch(grid, self.num_warps * nvvm.WARP_SIZE,
                                    self.pack_arguments(runtime_args), stream)


def _current_device_and_stream() -> tuple[int, int]:
    """torch's current CUDA device and the raw handle of its current stream, by the cheapest
    calls torch offers (``torch._C``; the public ones build Python objects each time)."""
    import torch

    get_device = getattr(torch._C, "_cuda_getDevice", None)
    get_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if get_device is None or get_stream is None or not torch.cuda.is_initialized():
        device = torch.cuda.current_device()
        return device, torch_current_stream(device)
    device = get_device()
    return device, get_stream(device)


def _param_type(value) -> str:
    element = value.type.element
    return "ptr" if element.is_pointer else element.name


def gpu_passes(options: GpuOptions) -> list[tuple[str, Callable[[Function], Function]]]:
    """The GPU passes in order, each ``Function -> Function`` with its name (its stage is
    ``tile.gpu.<name>``). What a pass learns for a later one is left in ``fn.attrs``."""

    def coalesce_accesses(fn: Function) -> Function:
        fn.attrs["vector_widths"] = coalesce(fn, analyse_axis_info(fn), options.vector_width)
        return fn

    def layouts(fn: Function) -> Function:
        return assign_layouts(fn, options.num_warps, fn.attrs.get("vector_widths", {}),
                              options.swizzle)

    def shared_memory(fn: Function) -> Function:
        shared_bytes = allocate_shared_memory(fn, options.place_buffers)
        if shared_bytes > MAX_DYNAMIC_SHARED_BYTES:
            raise CompilationError(
                f"the kernel needs {shared_bytes} bytes of shared memory for dot operands, "
                f"layout conversions and reductions; one block may have at most "
                f"{MAX_DYNAMIC_SHARED_BYTES}: use smaller blocks or fewer num_stages\n"
                f"{fn.attrs['shared_memory_plan']}", fn.loc, fn.name)
        fn.attrs["shared_bytes"] = shared_bytes
        return fn

    def pipeline(fn: Function) -> Function:
        return pipeline_async(fn, options.num_stages)

    return [("gpu.pipeline_loads", pipeline), ("gpu.coalesce", coalesce_accesses),
            ("gpu.assign_layouts", layouts),
            ("gpu.allocate_shared_memory", shared_memory), ("gpu.insert_barriers", insert_barriers)]


def run_gpu_passes(fn: Function, options: GpuOptions, manager: PassManager | None = None) -> int:
    """Annotate ``fn`` in place for the GPU (through ``manager``, which records each stage);
    return its shared-memory bytes."""
    manager = manager or PassManager(gpu_passes(options), record=False, first_stage=None)
    manager.run(fn)
    return fn.attrs["shared_bytes"]


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
    on_stage = (lambda stage, text: _show(debug, "ir", stage, text)) if "ir" in debug else None
    manager = PassManager(gpu_passes(options), record=True, first_stage=None, on_stage=on_stage)
    shared_bytes = run_gpu_passes(fn, options, manager)
    asm: dict[str, str] = dict(manager.stages)
    asm["tile.gpu"] = print_function(fn)  # the IR the lowering reads (= the last GPU stage)
    asm["shared_memory"] = str(fn.attrs["shared_memory_plan"])  # the allocator's plan
    dynamic = shared_bytes > MAX_STATIC_SHARED_BYTES
    module = lower_to_llvm(fn, options.num_warps, shared_bytes, options.butterfly_offsets,
                           dynamic_shared=dynamic)
    asm["llvm"] = str(module)
    _show(debug, "llvm", "llvm", asm["llvm"])
    asm["llvm.opt"] = optimised_llvm_ir(asm["llvm"], options.arch)
    _show(debug, "llvm", "llvm.opt", asm["llvm.opt"])
    asm["ptx"] = check_ptx(llvm_ir_to_ptx(asm["llvm.opt"], options.arch, optimise_first=False))
    _show(debug, "ptx", "ptx", asm["ptx"])
    return GpuKernel(fn.name, options.num_warps, shared_bytes,
                     [_param_type(arg) for arg in fn.args], asm, fn,
                     dynamic_shared_bytes=shared_bytes if dynamic else 0)


def _show(debug, switch: str, stage: str, text: str) -> None:
    if switch in debug or "asm" in debug and switch == "ptx":
        print_stage(stage, text)


def compile(fn: Function, options: dict) -> GpuKernel:  # noqa: A001 - the back-end interface
    """The back-end interface of ``mini_compiler.backends`` (see its docstring)."""
    gpu_options = GpuOptions(num_warps=options.get("num_warps") or 4,
                             num_stages=options.get("num_stages") or NUM_STAGES)
    if options.get("vector_width") is not None:
        gpu_options.vector_width = options["vector_width"]
    if options.get("butterfly_offsets") is not None:
        gpu_options.butterfly_offsets = options["butterfly_offsets"]
    for rule in ("swizzle", "place_buffers"):
        if options.get(rule) is not None:
            setattr(gpu_options, rule, options[rule])
    return compile_tile_ir(fn, gpu_options, options.get("debug") or set(),
                           options.get("kernel_name"))

