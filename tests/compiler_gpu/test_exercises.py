"""The two exercise hooks: correct rules pass, typical mistakes get an explanation."""

from __future__ import annotations

import pytest

from mini_compiler.backends.gpu import nvvm
from mini_compiler.passes.gpu.coalesce import vector_width
from mini_compiler.tools import gpu_exercises as exercises


def test_reference_rules_pass_without_a_gpu():
    exercises.check_butterfly_offsets(nvvm.butterfly_offsets, run=False)
    exercises.check_vector_width(vector_width, run=False)


def test_simulated_warp_matches_the_group_sums():
    values = list(range(32))
    got = exercises.simulate_butterfly([16, 8, 4, 2, 1], values)
    assert got == [sum(values)] * 32
    assert exercises.simulate_butterfly([4, 8], values) == exercises.expected_group_sums(
        values, 4, 4)


@pytest.mark.parametrize("wrong", [
    lambda lanes, stride: [16, 8, 4, 2, 1],             # ignores the group
    lambda lanes, stride: nvvm.butterfly_offsets(lanes),  # ignores the stride
    lambda lanes, stride: [o * stride for o in range(1, lanes)],  # not powers of two
])
def test_wrong_butterflies_are_explained(wrong):
    with pytest.raises(AssertionError, match="butterfly_offsets"):
        exercises.check_butterfly_offsets(wrong, run=False)


@pytest.mark.parametrize("wrong", [
    lambda c, d, b: min(c, 16 // b),          # forgets alignment
    lambda c, d, b: 4,                        # always 4
    lambda c, d, b: 1,                        # never vectorises
])
def test_wrong_vector_widths_are_explained(wrong):
    with pytest.raises(AssertionError, match="vector_width"):
        exercises.check_vector_width(wrong, run=False)


def test_an_illegal_width_is_refused_by_the_compiler():
    import torch

    from mini_compiler.backends.gpu import compile_for_gpu

    x = torch.empty(4096)
    with pytest.raises(ValueError, match="not legal"):
        compile_for_gpu(exercises.add_vectors, x, x, x, 4096, BLOCK=1024,
                        vector_width=lambda c, d, b: 16)
