"""The jit object: ``kernel[grid](*args, **constexprs)`` compiles (once per specialisation) and
launches.

Compiling a specialisation runs the whole pipeline and keeps the text of every stage::

    compiled = kernel.compile(x, y, out, n, BLOCK_SIZE=1024)
    compiled.asm["tile"]                # Tile IR from the front end
    compiled.asm["tile.infer_shapes"]   # ... after each pass (constant_fold, cse, dce)
    compiled.asm["llvm"], compiled.asm["llvm.opt"], compiled.asm["x86"]

``MINI_COMPILER_DEBUG=ir,llvm,asm`` (or ``all``) prints those stages as they are produced.
``kernel[grid](..., backend="interpreter")`` runs the numpy reference interpreter instead of
compiled code; ``bounds_check=True`` (or ``MINI_COMPILER_BOUNDS_CHECK=1``) makes every load and
store check that it stays inside its tensor.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..backends import backend_for_device
from ..errors import LaunchError
from ..frontend.codegen import build_tile_ir, kernel_source, python_function_of
from ..interpreter import Memory, interpret
from ..ir.ops import Function
from ..passes.pipeline import PassManager
from .cache import KernelCache
from .specialization import FastBinder, Specialisation, TensorArg, specialise

LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg", "enable_fp_fusion",
                  "bounds_check", "backend")
DEBUG_STAGES = {"ir", "llvm", "asm", "ptx"}


def debug_stages() -> set[str]:
    """The stages MINI_COMPILER_DEBUG asks to print: a comma list of ir, llvm, asm, or all."""
    raw = os.environ.get("MINI_COMPILER_DEBUG", "")
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    if "all" in names or "1" in names:
        return set(DEBUG_STAGES)
    return names & DEBUG_STAGES


def print_stage(name: str, text: str) -> None:
    print(f"// ----- {name} -----\n{text}", file=sys.stdout, flush=True)


@dataclass
class CompiledKernel:
    """One specialisation, compiled: the optimised Tile IR, every stage's text, and a launcher."""

    name: str
    tile_ir: Function
    asm: dict[str, str] = field(default_factory=dict)
    artifact: Any = None
    backend: str = "cpu"

    def launch(self, runtime_args: list, grid: tuple[int, int, int]) -> None:
        if self.backend == "interpreter":
            memory = Memory()
            values = []
            for a in runtime_args:
                if isinstance(a, TensorArg):
                    memory.add(a.name, a.address, a.nbytes)
                    values.append(a.address)
                else:
                    values.append(a)
            interpret(self.tile_ir, values, grid, memory)
        else:
            self.artifact.launch(runtime_args, grid)


def normalise_grid(grid, meta: dict) -> tuple[int, int, int]:
    if callable(grid):
        grid = grid(meta)
    if isinstance(grid, int):
        grid = (grid,)
    try:
        dims = tuple(int(g) for g in grid)
    except TypeError:
        raise LaunchError(f"grid must be a tuple of ints or a callable returning one, got "
                          f"{grid!r}") from None
    if not 1 <= len(dims) <= 3 or any(d < 0 for d in dims):
        raise LaunchError(f"grid must have 1 to 3 non-negative sizes, got {dims}")
    return dims + (1,) * (3 - len(dims))


class JITFunction:
    """A kernel compiled by mini_compiler. Create it with :func:`jit`."""

    _mini_compiler_jit = True

    def __init__(self, fn):
        python_fn = python_function_of(fn)
        self.fn = python_fn if python_fn is not None else fn
        if not callable(self.fn):
            raise TypeError("mini_compiler.jit needs a Python function or a @triton.jit kernel")
        self.__name__ = self.fn.__name__
        self.__doc__ = self.fn.__doc__
        self.cache = KernelCache()
        self._binder: FastBinder | None = None

    def __repr__(self) -> str:
        return f"<mini_compiler.jit kernel {self.__name__}>"

    def __call__(self, *args, **kwargs):
        raise LaunchError(f"launch a kernel with {self.__name__}[grid](...); calling it "
                          "directly is only possible from another kernel")

    def __getitem__(self, grid):
        def launcher(*args, **kwargs):
            return self.run(*args, grid=grid, **kwargs)

        return launcher

    # -- compilation -----------------------------------------------------------------------
    def _split_options(self, kwargs: dict) -> tuple[dict, dict]:
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in LAUNCH_OPTIONS}
        if options.get("bounds_check") is None:
            options["bounds_check"] = os.environ.get("MINI_COMPILER_BOUNDS_CHECK", "0") not in (
                "", "0", "false", "False")
        options.setdefault("backend", None)
        return kwargs, options

    def _specialise(self, args, kwargs) -> tuple[Specialisation, dict]:
        kwargs, options = self._split_options(dict(kwargs))
        source = kernel_source(self.fn)
        if self._binder is None:
            self._binder = FastBinder(source)
        return specialise(source, args, kwargs), options

    def _compile(self, spec: Specialisation, options: dict) -> CompiledKernel:
        backend_name = options["backend"] or spec.device
        # num_warps shapes the GPU code (threads per program), so it is part of the key too.
        key = (spec.key, backend_name, options["bounds_check"], options.get("num_warps"))
        compiled = self.cache.get(key)
        if compiled is not None:
            return compiled
        debug = debug_stages()
        on_stage = (lambda name, text: print_stage(name, text)) if "ir" in debug else None
        tile_ir = build_tile_ir(self.fn, spec.params)
        manager = PassManager(record=True, on_stage=on_stage)
        tile_ir = manager.run(tile_ir)
        compiled = CompiledKernel(self.__name__, tile_ir, dict(manager.stages),
                                  backend=backend_name)
        if backend_name != "interpreter":
            backend = backend_for_device(backend_name)
            artifact = backend.compile(tile_ir, {
                "kernel_name": self.__name__, "bounds_check": options["bounds_check"],
                "num_warps": options.get("num_warps"), "num_stages": options.get("num_stages"),
                "debug": debug,
            })
            compiled.artifact = artifact
            compiled.asm.update(artifact.asm)
        self.cache[key] = compiled
        return compiled

    def compile(self, *args, **kwargs) -> CompiledKernel:
        """Compile for these arguments (without launching) and return the CompiledKernel."""
        kwargs.pop("grid", None)
        spec, options = self._specialise(args, kwargs)
        return self._compile(spec, options)

    def stages(self, *args, **kwargs) -> dict[str, str]:
        """The text of every stage for these arguments: ``{"tile": ..., "llvm": ...}``."""
        return dict(self.compile(*args, **kwargs).asm)

    def run(self, *args, grid, **kwargs) -> CompiledKernel:
        """Launch. The first launch with arguments of new kinds takes the slow path
        (:func:`specialise`, the compile cache); it records the result under the cheap key of
        :class:`FastBinder`, so later launches like it skip straight to packing the arguments."""
        fast = self._fast_launch(args, kwargs, grid)
        if fast is not None:
            return fast
        spec, options = self._specialise(args, kwargs)
        compiled = self._compile(spec, options)
        dims = normalise_grid(grid, spec.bound)
        if self._binder is not None and self._binder.usable:
            values = self._binder.bind(args, self._without_options(kwargs))
            key = self._binder.key(values) if values is not None else None
            if key is not None:
                variant = (options["backend"], options["bounds_check"], options.get("num_warps"))
                self.cache.fast[(key, *variant)] = compiled
        if dims[0] * dims[1] * dims[2] == 0:
            return compiled
        compiled.launch(spec.runtime_args, dims)
        return compiled

    @staticmethod
    def _without_options(kwargs: dict) -> dict:
        if not any(k in LAUNCH_OPTIONS for k in kwargs):
            return kwargs
        return {k: v for k, v in kwargs.items() if k not in LAUNCH_OPTIONS}

    def _fast_launch(self, args: tuple, kwargs: dict, grid) -> CompiledKernel | None:
        """Launch through the fast path's table, or return None (not seen before: slow path)."""
        binder = self._binder
        if binder is None:
            binder = self._binder = FastBinder(kernel_source(self.fn))
        if not binder.usable:
            return None
        bounds_check = kwargs.get("bounds_check")
        if bounds_check is None:
            bounds_check = os.environ.get("MINI_COMPILER_BOUNDS_CHECK", "0") not in (
                "", "0", "false", "False")
        backend = kwargs.get("backend")
        values = binder.bind(args, self._without_options(kwargs))
        if values is None:
            return None
        key = binder.key(values)
        if key is None:
            return None
        compiled = self.cache.fast.get((key, backend, bounds_check, kwargs.get("num_warps")))
        if compiled is None:
            return None
        if callable(grid):
            grid = grid(dict(zip(binder.names, values, strict=True)))
        if type(grid) is tuple and len(grid) == 1 and type(grid[0]) is int and grid[0] >= 0:
            dims = (grid[0], 1, 1)  # the common case, without normalise_grid's checks
        else:
            dims = normalise_grid(grid, {})
        if dims[0] * dims[1] * dims[2] == 0:
            return compiled
        launch_raw = getattr(compiled.artifact, "launch_raw", None)
        if launch_raw is not None:  # the GPU: addresses and numbers are all it needs
            launch_raw(binder.raw_args(values), dims)
        else:
            compiled.launch(binder.runtime_args(values), dims)
        return compiled


def jit(fn=None, **options):
    """Decorate a kernel written with ``mini_compiler.language`` (or wrap a ``@triton.jit``
    kernel object) so that ``kernel[grid](*args)`` compiles and runs it with mini_compiler."""
    if fn is None:
        return lambda f: JITFunction(f)
    return JITFunction(fn)
