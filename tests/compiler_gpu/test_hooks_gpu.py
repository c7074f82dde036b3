"""One hook mechanism for both back ends: ``hooks.override(lowering=...)`` reaches the GPU's
elementwise lowering too, and ``hooks.override(gpu=...)`` replaces the GPU's exercise rules
(vector width, shuffle offsets) for kernels compiled inside the block."""

from __future__ import annotations

import pytest
import torch

import mini_compiler.hooks
from mini_compiler.backends import gpu


def _add_case():
    from course.kernels.vector_add import add_kernel

    x = torch.empty(4096)
    return add_kernel, (x, x, x, 4096), {"BLOCK_SIZE": 1024}


def test_a_lowering_rule_reaches_the_gpu():
    kernel, args, meta = _add_case()
    calls = []

    def my_add(builder, element, a, b):
        calls.append(element.name)
        return builder.fadd(a, b) if element.is_float else builder.add(a, b)

    with mini_compiler.hooks.override(lowering={"tile.add": my_add}):
        gpu.compile_for_gpu(kernel, *args, **meta)
    # told the element type: the offsets are added in i32, the data in f32
    assert set(calls) == {"f32", "i32"}, "the GPU back end did not use the installed rule"
    calls.clear()
    gpu.compile_for_gpu(kernel, *args, **meta)
    assert not calls, "the rule outlived its block"


def test_gpu_rules_through_the_same_mechanism():
    kernel, args, meta = _add_case()
    wide = gpu.compile_for_gpu(kernel, *args, **meta).ptx
    assert "ld.global.v4" in wide or "ld.global.nc.v4" in wide
    with mini_compiler.hooks.override(gpu={"vector_width": lambda c, d, e: 1}):
        narrow = gpu.compile_for_gpu(kernel, *args, **meta).ptx
    assert ".v4" not in narrow
    with pytest.raises(KeyError, match="GPU rules are"):
        with mini_compiler.hooks.override(gpu={"vector_wdith": lambda c, d, e: 1}):
            pass
