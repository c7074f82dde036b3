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

from ..debug import debug_stages, print_stage
from ..driver import CompiledKernel, compile_specialisation
from ..errors import LaunchError
from ..frontend.source import kernel_source, python_function_of
from . import disk_cache
from .cache import KernelCache
from .grid import normalise_grid
from .specialization import FastBinder, Specialisation, specialise

__all__ = ["CompiledKernel", "JITFunction", "debug_stages", "jit", "normalise_grid",
           "print_stage"]

LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg", "enable_fp_fusion",
                  "bounds_check", "backend")
_LAUNCH_OPTION_SET = frozenset(LAUNCH_OPTIONS)  # one C-level test per launch (isdisjoint)


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
        self._fingerprint: str | None = None  # of the source, for the disk cache

    def __repr__(self) -> str:
        return f"<mini_compiler.jit kernel {self.__name__}>"

    def __call__(self, *args, **kwargs):
        raise LaunchError(f"launch a kernel with {self.__name__}[grid](...); calling it "
                          "directly is only possible from another kernel")

    def __getitem__(self, grid):
        fast_launch, slow_launch = self._fast_launch, self._slow_launch

        def launcher(*args, **kwargs):  # what run() does, one Python call shorter
            compiled = fast_launch(args, kwargs, grid)
            return compiled if compiled is not None else slow_launch(args, kwargs, grid)

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
        # num_warps (threads per program) and num_stages (the software pipeline's depth) shape
        # the GPU code, so they are part of the key too.
        key = (spec.key, backend_name, options["bounds_check"], options.get("num_warps"),
               options.get("num_stages"))
        compiled = self.cache.get(key)
        if compiled is not None:
            return compiled
        entry = None
        if backend_name != "interpreter" and disk_cache.enabled() and \
                disk_cache.rules_are_defaults() and not debug_stages():
            if self._fingerprint is None:
                self._fingerprint = disk_cache.source_fingerprint(self.fn)
            entry = disk_cache.key(self._fingerprint, spec.key, backend_name, key[1:])
            compiled = disk_cache.load(entry)
            if compiled is not None:
                self.cache[key] = compiled
                return compiled
        compiled = compile_specialisation(self.fn, spec, backend_name, {
            "bounds_check": options["bounds_check"], "num_warps": options.get("num_warps"),
            "num_stages": options.get("num_stages")}, self.__name__)
        if entry is not None:
            disk_cache.store(entry, compiled)
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
        return fast if fast is not None else self._slow_launch(args, kwargs, grid)

    def _slow_launch(self, args: tuple, kwargs: dict, grid) -> CompiledKernel:
        spec, options = self._specialise(args, kwargs)
        compiled = self._compile(spec, options)
        dims = normalise_grid(grid, spec.bound)
        if self._binder is not None and self._binder.usable:
            values = self._binder.bind(args, self._without_options(kwargs))
            key = self._binder.key(values) if values is not None else None
            if key is not None:
                variant = (options["backend"], options["bounds_check"], options.get("num_warps"),
                           options.get("num_stages"))
                self.cache.fast[(key, *variant)] = compiled
        if dims[0] * dims[1] * dims[2] == 0:
            return compiled
        compiled.launch(spec.runtime_args, dims)
        return compiled

    @staticmethod
    def _without_options(kwargs: dict) -> dict:
        if _LAUNCH_OPTION_SET.isdisjoint(kwargs):
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
        key, raw = binder.key_and_raw_args(values)
        if key is None:
            return None
        compiled = self.cache.fast.get((key, backend, bounds_check, kwargs.get("num_warps"),
                                        kwargs.get("num_stages")))
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
            launch_raw(raw, dims)
        else:
            compiled.launch(binder.runtime_args(values), dims)
        return compiled


def jit(fn=None, **options):
    """Decorate a kernel written with ``mini_compiler.language`` (or wrap a ``@triton.jit``
    kernel object) so that ``kernel[grid](*args)`` compiles and runs it with mini_compiler."""
    if fn is None:
        return lambda f: JITFunction(f)
    return JITFunction(fn)
