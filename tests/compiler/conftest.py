"""Shared helpers for the compiler tests.

The course kernels of ``kernels.py`` are loaded under a unique module name (``compiler_kernels``)
so that they cannot clash with another test folder's ``kernels.py``.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

_spec = importlib.util.spec_from_file_location("compiler_kernels",
                                               Path(__file__).with_name("kernels.py"))
compiler_kernels = importlib.util.module_from_spec(_spec)
sys.modules["compiler_kernels"] = compiler_kernels
_spec.loader.exec_module(compiler_kernels)

_helpers_spec = importlib.util.spec_from_file_location(
    "compiler_helpers", Path(__file__).with_name("helpers.py"))
compiler_helpers = importlib.util.module_from_spec(_helpers_spec)
sys.modules["compiler_helpers"] = compiler_helpers
_helpers_spec.loader.exec_module(compiler_helpers)

torch.manual_seed(0)
np.random.seed(0)


@pytest.fixture(autouse=True, scope="session")
def _private_compile_cache(tmp_path_factory):
    """Each test session compiles into a disk cache of its own (tests that replace compiler
    internals must not meet kernels an earlier session stored)."""
    import os

    os.environ["MINI_COMPILER_CACHE_DIR"] = str(tmp_path_factory.mktemp("compile_cache"))
    yield
