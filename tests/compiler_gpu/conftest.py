"""Shared fixtures: skip reasons for tests that need ptxas or a CUDA GPU."""

from __future__ import annotations

import pytest

from mini_compiler.backends.gpu.ptxas import find_ptxas


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


ON_GPU = _cuda_available()
PTXAS = find_ptxas()

needs_ptxas = pytest.mark.skipif(
    PTXAS is None,
    reason="no ptxas: install triton (its Linux wheel carries ptxas) or set MINI_COMPILER_PTXAS",
)
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU (torch.cuda.is_available())")


@pytest.fixture(autouse=True, scope="session")
def _private_compile_cache(tmp_path_factory):
    """Each test session compiles into a disk cache of its own (tests that replace compiler
    internals must not meet kernels an earlier session stored)."""
    import os

    os.environ["MINI_COMPILER_CACHE_DIR"] = str(tmp_path_factory.mktemp("compile_cache"))
    yield
