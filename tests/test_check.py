"""The learner-facing checker: each kind of mistake gets its own, correct explanation."""

import pytest
import torch

import course
from course.check import INT_POISON, WrongAnswer, check_close, empty_poisoned, poison


def test_matching_result_passes_and_says_so(capsys):
    x = torch.randn(100)
    check_close(x.clone(), x.double(), name="copy")
    assert "✓ copy: all 100 elements match" in capsys.readouterr().out


def test_unwritten_elements_are_reported_with_their_first_index():
    expected = torch.randn(4, 5, dtype=torch.float64)
    actual = empty_poisoned(4, 5)
    actual[:3] = expected[:3].float()
    with pytest.raises(
        WrongAnswer, match=r"5 of 20 elements were never written.*first at \[3, 0\]"
    ):
        check_close(actual, expected)


def test_wrong_tail_points_at_the_mask():
    expected = torch.randn(100, dtype=torch.float64)
    actual = expected.float().clone()
    actual[90:] += 1
    with pytest.raises(WrongAnswer, match="Only the tail is wrong: check the mask") as info:
        check_close(actual, expected)
    assert "at [90]: got" in str(info.value)


def test_everything_wrong_points_at_the_formula():
    expected = torch.rand(50, dtype=torch.float64) + 1
    with pytest.raises(WrongAnswer, match="Every element is wrong"):
        check_close((expected * 2).float(), expected)


def test_infinity_where_the_reference_is_finite_suggests_overflow():
    expected = torch.ones(8, dtype=torch.float64)
    actual = torch.ones(8)
    actual[2] = float("inf")
    with pytest.raises(
        WrongAnswer, match="infinite where the reference is finite, first at \\[2\\]"
    ):
        check_close(actual, expected)


def test_shape_mismatch_is_reported_before_values():
    with pytest.raises(WrongAnswer, match=r"shape \(3,\) but the reference has shape \(4,\)"):
        check_close(torch.zeros(3), torch.zeros(4))


def test_tolerance_follows_the_result_dtype():
    expected = torch.randn(1000, dtype=torch.float64)
    check_close(expected.half(), expected, quiet=True)  # fp16 rounding is within fp16 tolerance
    with pytest.raises(WrongAnswer):
        check_close(expected.half().float(), expected)  # but not within fp32 tolerance


def test_integer_results_and_integer_poison():
    expected = torch.arange(10, dtype=torch.int32)
    actual = poison(torch.empty(10, dtype=torch.int32))
    actual[:7] = expected[:7]
    assert int(actual[9]) == INT_POISON
    with pytest.raises(WrongAnswer, match="3 of 10 elements were never written"):
        check_close(actual, expected)
    check_close(expected.clone(), expected, quiet=True)


def test_non_tensor_is_rejected():
    with pytest.raises(WrongAnswer, match="expected a torch.Tensor, got list"):
        check_close([1.0], torch.ones(1))


def test_wrong_answer_is_an_assertion_error():
    assert issubclass(course.WrongAnswer, AssertionError)
    assert issubclass(course.NotSolvedYet, course.WrongAnswer)
