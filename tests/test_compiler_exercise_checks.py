"""Lesson 2's compiler exercises: the course wrappers accept right rules and explain wrong ones."""

import pytest

from course import NotSolvedYet, WrongAnswer
from course.exercises import lesson02_compiler


def butterfly(lanes, lane_stride):
    offsets, distance = [], lanes // 2
    while distance:
        offsets.append(distance * lane_stride)
        distance //= 2
    return offsets


def width(contiguity, divisibility, elem_bytes):
    w = 1
    while (
        w * 2 <= contiguity
        and w * 2 * elem_bytes <= 16
        and divisibility % (w * 2 * elem_bytes) == 0
    ):
        w *= 2
    return w


def stub(*_):
    raise NotImplementedError()


def test_right_rules_pass(capsys):
    lesson02_compiler.check_butterfly_offsets(butterfly)
    lesson02_compiler.check_vector_width(width)
    out = capsys.readouterr().out
    assert "✓ butterfly_offsets" in out and "✓ vector_width" in out


def test_offsets_that_ignore_the_lane_stride_are_explained():
    with pytest.raises(WrongAnswer, match=r"butterfly_offsets: butterfly_offsets\(2, 2\) = \[1\]"):
        lesson02_compiler.check_butterfly_offsets(lambda lanes, stride: butterfly(lanes, 1))


def test_width_that_ignores_alignment_is_explained():
    with pytest.raises(
        WrongAnswer, match=r"vector_width\(contiguity=2, divisibility=1, elem_bytes=1\)"
    ):
        lesson02_compiler.check_vector_width(lambda c, d, e: min(c, 16 // e))


def test_stubs_are_unsolved():
    with pytest.raises(NotSolvedYet):
        lesson02_compiler.check_butterfly_offsets(stub)
    with pytest.raises(NotSolvedYet):
        lesson02_compiler.check_vector_width(stub)
