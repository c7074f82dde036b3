"""The runtime: specialisation, the compile cache and the ``kernel[grid](...)`` launch."""

from .jit import CompiledKernel, JITFunction, jit

__all__ = ["CompiledKernel", "JITFunction", "jit"]
