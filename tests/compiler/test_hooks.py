"""The two exercise hooks: a correct learner rule works, a wrong one is caught by a kernel."""

import pytest
import torch

import mini_compiler
import mini_compiler.language as tl
from mini_compiler.backends import llvm_core
from mini_compiler.hooks import override
from mini_compiler.passes.constant_fold import FOLDERS


@mini_compiler.jit
def scale_by_folded_constant(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    factor = tl.full((BLOCK,), 3.0, tl.float32) * 2.0  # folded at compile time: 6.0
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(out_ptr + offs, x * factor, mask=offs < n)


@mini_compiler.jit
def relu_by_maximum(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0), mask=offs < n)


def run(kernel, x):
    out = torch.full_like(x, float("nan"))
    kernel[(4,)](x, out, x.numel(), BLOCK=64)
    return out


def test_constant_folding_rule_is_used_by_the_compiler():
    x = torch.randn(256)
    stages = scale_by_folded_constant.stages(x, x, 256, BLOCK=64)
    assert "tile.full 6.0 : tile<64xf32>" in stages["tile.constant_fold"]


def test_correct_learner_folding_rule_passes():
    x = torch.randn(256)

    def fold_mul(a, b):
        return a * b

    with override(folders={"tile.mul": fold_mul}):
        torch.testing.assert_close(run(scale_by_folded_constant, x), x * 6)


def test_wrong_learner_folding_rule_is_caught_by_running_a_kernel():
    x = torch.randn(256)
    with override(folders={"tile.mul": lambda a, b: a + b}):  # a classic slip
        wrong = run(scale_by_folded_constant, x)
    assert not torch.allclose(wrong, x * 6)
    torch.testing.assert_close(wrong, x * 5)
    # Leaving the block restores the real rule (and recompiles).
    torch.testing.assert_close(run(scale_by_folded_constant, x), x * 6)
    assert FOLDERS["tile.mul"](3, 2) == 6


def test_correct_learner_lowering_rule_passes():
    def lower_maximum(builder, element, a, b):
        bigger = builder.fcmp_ordered(">", a, b) if element.is_float else \
            builder.icmp_signed(">", a, b)
        return builder.select(bigger, a, b)

    x = torch.randn(256)
    with override(lowering={"tile.maximum": lower_maximum}):
        torch.testing.assert_close(run(relu_by_maximum, x), torch.relu(x))
        assert "select" in relu_by_maximum.stages(x, x, 256, BLOCK=64)["llvm"]


def test_wrong_learner_lowering_rule_is_caught_by_running_a_kernel():
    def lower_maximum_backwards(builder, element, a, b):
        return builder.select(builder.fcmp_ordered("<", a, b), a, b)  # that is minimum

    x = torch.randn(256)
    with override(lowering={"tile.maximum": lower_maximum_backwards}):
        out = run(relu_by_maximum, x)
    assert not torch.allclose(out, torch.relu(x))
    torch.testing.assert_close(out, torch.clamp(x, max=0.0))
    assert not llvm_core.LEARNER_RULES, "the rule outlived its block"


@mini_compiler.jit
def maximum_of_two(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    y = tl.load(y_ptr + offs, mask=offs < n)
    tl.store(out_ptr + offs, tl.maximum(x, y), mask=offs < n)


def test_a_lowering_rule_is_told_the_signedness():
    """The rule sees the element type, so it can pick the unsigned compare for uint8 (a rule
    that guessed from the LLVM type alone would read 200 as -56)."""
    seen = []

    def lower_maximum(builder, element, a, b):
        seen.append(element.name)
        compare = builder.icmp_signed if element.is_signed else builder.icmp_unsigned
        return builder.select(compare(">", a, b), a, b)

    x = torch.randint(0, 256, (300,), dtype=torch.uint8)
    y = torch.randint(0, 256, (300,), dtype=torch.uint8)
    out = torch.zeros_like(x)
    with override(lowering={"tile.maximum": lower_maximum}):
        maximum_of_two[(5,)](x, y, out, 300, BLOCK=64)
    assert set(seen) == {"u8"}  # once per loop version (see cpu/lowering.py)
    torch.testing.assert_close(out, torch.maximum(x, y))


def test_override_rejects_a_lowering_rule_for_an_op_that_is_not_elementwise():
    with pytest.raises(KeyError, match="not elementwise ops"):
        with override(lowering={"tile.load": lambda builder, element, x: x}):
            pass


def test_override_rejects_keys_that_are_not_op_names():
    with pytest.raises(KeyError, match="keyed by op name such as 'tile.add'"):
        with override(folders={"mul": lambda a, b: a * b}):
            pass
