"""mini_compiler: a small tile-kernel compiler for Triton-style kernels.

``mini_compiler.jit`` compiles a kernel written with ``mini_compiler.language`` (``tl``), or an
existing ``@triton.jit`` kernel, through Tile IR, a few passes and LLVM to x86 code (CPU tensors)
or PTX (CUDA tensors), and launches it with ``kernel[grid](*args, **constexprs)``. See
``README.md`` for the map.
"""

from . import language
from .errors import CompilationError, LaunchError, OutOfBoundsError
from .runtime.jit import CompiledKernel, JITFunction, jit

__all__ = ["CompilationError", "CompiledKernel", "JITFunction", "LaunchError",
           "OutOfBoundsError", "jit", "language"]
