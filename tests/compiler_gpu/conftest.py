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
