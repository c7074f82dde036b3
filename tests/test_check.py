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


def test_a_computed_nan_is_not_reported_as_never_written():
    from course.check import SECOND_POISON, written_by_rerun

    expected = torch.ones(4, 6, dtype=torch.float64)

    def kernel(out):  # writes every element, computes NaN in row 1, forgets row 3
        out[:3] = 1.0
        out[1, 2] = float("inf") - float("inf")
        return out

    actual = kernel(empty_poisoned(4, 6))
    written = written_by_rerun(lambda fill: kernel(torch.full((4, 6), fill)), actual.dtype)
    assert SECOND_POISON not in (0.0, 1.0)
    with pytest.raises(
        WrongAnswer, match=r"6 of 24 elements were never written .*first at \[3, 0\]"
    ):
        check_close(actual, expected, written=written)
    actual[3] = 1.0
    written[18:] = True
    with pytest.raises(WrongAnswer, match=r"your code computed NaN in 1 of 24 elements.*\[1, 2\]"):
        check_close(actual, expected, written=written)


def test_without_a_second_run_a_nan_is_reported_with_both_causes():
    actual = torch.ones(5)
    actual[4] = float("nan")
    with pytest.raises(WrongAnswer, match=r"never written \(they still hold the NaN poison, unless "
                       r"your code computed NaN there\)"):  # fmt: skip
        check_close(actual, torch.ones(5, dtype=torch.float64))


def test_an_unpoisoned_result_reports_every_nan_as_computed():
    actual = torch.ones(5)
    actual[1] = float("nan")
    with pytest.raises(WrongAnswer, match="your code computed NaN in 1 of 5"):
        check_close(actual, torch.ones(5, dtype=torch.float64), poisoned=False)


def test_most_rows_wrong_is_not_called_a_wrong_tail():
    expected = torch.rand(9, 10, dtype=torch.float64)
    actual = expected.float().clone()
    actual[1:] += 1  # row 0 right, all the others wrong
    with pytest.raises(WrongAnswer, match=r"Most elements \(89%\) are wrong") as info:
        check_close(actual, expected)
    assert "tail" not in str(info.value)


def test_wrong_last_columns_point_at_the_row_mask():
    expected = torch.rand(6, 10, dtype=torch.float64)
    actual = expected.float().clone()
    actual[:, 7:] = 0
    with pytest.raises(WrongAnswer, match=r"Only the last columns \(7 and after\) are wrong, in 6"):
        check_close(actual, expected)


def test_a_few_wrong_rows_are_named():
    expected = torch.rand(8, 10, dtype=torch.float64)
    actual = expected.float().clone()
    actual[2, 3] += 1
    actual[5] += 1
    with pytest.raises(WrongAnswer, match=r"Only 2 of 8 rows .* are wrong: 2, 5"):
        check_close(actual, expected)


def test_integer_mismatch_reports_a_numeric_largest_error():
    expected = torch.arange(10, dtype=torch.int32)
    actual = expected.clone()
    actual[3] = 7
    with pytest.raises(WrongAnswer, match=r"1 of 10 elements differ .*\(largest error 4\)") as info:
        check_close(actual, expected)
    assert "nan" not in str(info.value)
