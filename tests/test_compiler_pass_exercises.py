"""The write-a-pass exercise (chapter 1) and the axis-info transfer function (chapter 2): the
checks accept the solutions and reject each kind of wrong answer a learner would write, saying
what to fix."""

import pytest

from course import NotSolvedYet, WrongAnswer
from course.exercises import lesson02_compiler
from course.exercises.compiler_passes import check_simplify_algebra, constant_like
from mini_compiler.ir.ops import replace_uses
from mini_compiler.passes.constant_fold import constant_value
from mini_compiler.passes.gpu.axis_info import MAX_DIVISIBILITY, AxisInfo

# -- simplify_algebra ---------------------------------------------------------------------------


def make_pass(*, floats=False, regions=True, left_zero=True, replace=True, by_x=False,
              scalar_zero=False, self_sub=True):
    """The solution, or the solution with one learner's mistake switched on."""

    def is_zero_mul(op):
        zeros = [constant_value(v) == 0 and constant_value(v) is not None for v in op.operands]
        return zeros[1] or (left_zero and zeros[0])

    def simplify_algebra(fn):
        def visit(block):
            kept = []
            for op in block.ops:
                if regions:
                    for region in op.regions:
                        visit(region)
                wanted = (floats or op.results and op.result.type.element.is_int)
                zero = wanted and ((op.name == "tile.mul" and is_zero_mul(op)) or
                                   (self_sub and op.name == "tile.sub" and
                                    op.operands[0] is op.operands[1]))
                if not zero:
                    kept.append(op)
                    continue
                if by_x:
                    replacement = op.operands[0]
                else:
                    like = op.result
                    if scalar_zero and not like.type.is_scalar:
                        like = next(v for v in fn.args if v.type.is_scalar)  # a scalar i32
                    new = constant_like(0, like)
                    kept.append(new)
                    replacement = new.result
                if replace:
                    replace_uses(fn.body, op.result, replacement)
            block.ops = kept

        visit(fn.body)
        return fn

    return simplify_algebra


def test_the_solution_passes(capsys):
    check_simplify_algebra(make_pass())
    assert "✓ simplify_algebra" in capsys.readouterr().out


def test_a_stub_is_not_solved_yet():
    def stub(fn):
        raise NotImplementedError()

    with pytest.raises(NotSolvedYet):
        check_simplify_algebra(stub)


def test_a_pass_that_does_nothing_is_told_what_remains():
    with pytest.raises(WrongAnswer, match=r"integer x \* 0 \(or 0 \* x\) is still there"):
        check_simplify_algebra(lambda fn: fn)


def test_returning_nothing_is_explained():
    def forgets_return(fn):
        make_pass()(fn)

    with pytest.raises(WrongAnswer, match="returned None.*return fn"):
        check_simplify_algebra(forgets_return)


def test_folding_float_zeros_is_rejected_with_the_reason():
    with pytest.raises(WrongAnswer, match=r"float x \* 0.0 by 0.*inf \* 0.0.*NaN.*is_int"):
        check_simplify_algebra(make_pass(floats=True))


def test_skipping_loop_bodies_is_caught():
    with pytest.raises(WrongAnswer, match="inside a loop body.*op.regions"):
        check_simplify_algebra(make_pass(regions=False))


def test_only_a_zero_on_the_right_is_not_enough():
    with pytest.raises(WrongAnswer, match=r"x \* 0 \(or 0 \* x\) is still there, inside a loop"):
        check_simplify_algebra(make_pass(left_zero=False))


def test_forgetting_x_minus_x_is_caught():
    with pytest.raises(WrongAnswer, match="an integer x - x is still there"):
        check_simplify_algebra(make_pass(self_sub=False))


def test_dropping_an_op_without_rewiring_its_users_is_explained():
    with pytest.raises(WrongAnswer, match="no longer defined.*replace_uses"):
        check_simplify_algebra(make_pass(replace=False))


def test_replacing_x_times_zero_by_x_changes_the_results():
    changed = "(different results before and after|reaches outside its tensors).*not by x"
    with pytest.raises(WrongAnswer, match=changed):
        check_simplify_algebra(make_pass(by_x=True))


def test_a_zero_of_the_wrong_type_is_explained():
    with pytest.raises(WrongAnswer, match="wrong type.*constant_like"):
        check_simplify_algebra(make_pass(scalar_zero=True))


# -- multiply_info -------------------------------------------------------------------------------


def multiply_info(a, b, *, contiguity=None, run_divisibility=False, constancy=max,
                  cap=True, scalars=True, weak=False):
    if a.rank == 0:
        if not scalars:
            return AxisInfo((), (), (), 1)
        product = a.scalar_divisibility * b.scalar_divisibility
        return AxisInfo((), (), (), min(product, MAX_DIVISIBILITY) if cap else product)
    if run_divisibility:
        every = min(MAX_DIVISIBILITY, a.divisibility[0] * b.divisibility[0])
    else:
        every = min(MAX_DIVISIBILITY, a.element_divisibility() * b.element_divisibility())
    if weak:
        every = 1
    runs = (1,) * a.rank if contiguity is None else tuple(
        contiguity(x, y) for x, y in zip(a.contiguity, b.contiguity, strict=True))
    same = tuple((min if constancy is max else max)(x, y)
                 for x, y in zip(a.constancy, b.constancy, strict=True))
    return AxisInfo(runs, (every,) * a.rank, same)


def test_the_transfer_function_passes(capsys):
    lesson02_compiler.check_multiply_info(multiply_info)
    assert "✓ multiply_info" in capsys.readouterr().out


def test_the_compilers_own_rule_passes_its_soundness_check():
    from mini_compiler.passes.gpu.axis_info import DEFAULT_RULES

    lesson02_compiler.check_multiply_info(DEFAULT_RULES["tile.mul"])


def test_keeping_contiguity_is_unsound():
    with pytest.raises(WrongAnswer, match=r"contiguity\[0\] = .* is false.*no longer a run"):
        lesson02_compiler.check_multiply_info(
            lambda a, b: multiply_info(a, b, contiguity=min))


def test_the_divisibility_of_a_runs_first_value_is_not_every_values():
    with pytest.raises(WrongAnswer, match=r"divisibility\[0\] = .* is false"):
        lesson02_compiler.check_multiply_info(
            lambda a, b: multiply_info(a, b, run_divisibility=True))


def test_constancy_of_either_factor_is_unsound():
    unsound = r"constancy\[0\] = 16 is false.*constant only where both"
    with pytest.raises(WrongAnswer, match=unsound):
        lesson02_compiler.check_multiply_info(lambda a, b: multiply_info(a, b, constancy=min))


def test_a_safe_but_useless_rule_is_told_what_it_loses():
    with pytest.raises(WrongAnswer, match="safe but says less.*2\\^\\(i\\+j\\)"):
        lesson02_compiler.check_multiply_info(lambda a, b: multiply_info(a, b, weak=True))


def test_forgetting_scalars_is_caught():
    with pytest.raises(WrongAnswer, match="safe but says less.*divisibility = 1"):
        lesson02_compiler.check_multiply_info(lambda a, b: multiply_info(a, b, scalars=False))


def test_an_uncapped_divisibility_is_explained():
    with pytest.raises(WrongAnswer, match="above MAX_DIVISIBILITY"):
        lesson02_compiler.check_multiply_info(lambda a, b: multiply_info(a, b, cap=False))


def test_returning_something_else_is_explained():
    with pytest.raises(WrongAnswer, match="return an AxisInfo"):
        lesson02_compiler.check_multiply_info(lambda a, b: (1, 1, 1))
    with pytest.raises(WrongAnswer, match="one entry per dimension"):
        lesson02_compiler.check_multiply_info(
            lambda a, b: multiply_info(a, b) if a.rank == 1 else AxisInfo((1,), (1,), (1,)))


def test_facts_of_concrete_tiles():
    import numpy as np

    assert lesson02_compiler.facts_of(np.arange(16) + 32) == AxisInfo((16,), (32,), (1,))
    assert lesson02_compiler.facts_of(np.full(16, 12)) == AxisInfo((1,), (4,), (16,))
    assert lesson02_compiler.facts_of(np.int64(48)).scalar_divisibility == 16


def test_the_axis_info_hook_installs_a_rule_for_one_block_only():
    from mini_compiler.hooks import override
    from mini_compiler.passes.gpu import axis_info

    def rule(a, b):
        return multiply_info(a, b)

    with override(axis_info={"tile.mul": rule}):
        assert axis_info.RULES["tile.mul"] is rule
    assert axis_info.RULES == axis_info.DEFAULT_RULES
    with pytest.raises(KeyError, match="axis-info rules are"):
        with override(axis_info={"tile.add": rule}):
            pass
    assert axis_info.RULES == axis_info.DEFAULT_RULES


def test_nothing_is_cached_on_disk_while_a_learner_axis_rule_is_installed():
    from mini_compiler.hooks import override
    from mini_compiler.runtime import disk_cache

    assert disk_cache.rules_are_defaults()
    with override(axis_info={"tile.mul": multiply_info}):
        assert not disk_cache.rules_are_defaults()
    assert disk_cache.rules_are_defaults()
