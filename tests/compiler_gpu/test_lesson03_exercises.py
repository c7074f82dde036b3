"""Lesson 3's compiler exercises: the model answers pass, and each kind of wrong answer a
learner would write is rejected with a message that says what to fix."""

from __future__ import annotations

import pytest

from course.check import NotSolvedYet, WrongAnswer
from course.exercises import lesson03_compiler as exercises
from mini_compiler.passes.gpu.allocate_shared_memory import place_buffers
from mini_compiler.passes.gpu.mma_layouts import swizzle


def test_the_model_answers_pass(capsys):
    exercises.check_swizzle(swizzle)
    exercises.check_place_buffers(place_buffers)
    out = capsys.readouterr().out
    assert out.count("✓") == 2 and "interpreted lesson 3's matmul" in out


def _unsolved(*args):
    raise NotImplementedError


WRONG_SWIZZLES = {
    "no swizzle": (lambda row, chunk, chunks: chunk, "bank conflict"),
    "xor with the row, unbounded": (lambda row, chunk, chunks: chunk ^ row, "places 0.."),
    "xor with row % 8 ignores short rows": (lambda row, chunk, chunks: chunk ^ (row % 8),
                                            "places 0.."),
    "xor with row % chunks ignores rows sharing a line": (
        lambda row, chunk, chunks: chunk ^ (row % chunks), "bank conflict"),
    "a rotation": (lambda row, chunk, chunks: (chunk + row) % chunks, "bank conflict"),
    "two chunks to one place": (lambda row, chunk, chunks: (chunk // 2) * 2 % chunks,
                                "permutation"),
    "returns a float": (lambda row, chunk, chunks: float(chunk), "places 0.."),
}


@pytest.mark.parametrize("name", list(WRONG_SWIZZLES))
def test_wrong_swizzles_are_rejected(name):
    rule, message = WRONG_SWIZZLES[name]
    with pytest.raises(WrongAnswer, match=message):
        exercises.check_swizzle(rule)


def test_a_swizzle_with_an_if_on_the_row_is_told_to_use_operators():
    from mini_compiler.passes.gpu.mma_layouts import swizzle as right

    def with_if(row, chunk, chunks):  # right values in Python, but `if` on a runtime row
        if row >= 0:
            return right(row, chunk, chunks)
        return chunk

    with pytest.raises(WrongAnswer, match="no `if`"):
        exercises.check_swizzle(with_if)


def _at_zero(buffers):
    return [0] * len(buffers)


def _one_after_another(buffers):
    offsets, end = [], 0
    for b in buffers:
        offsets.append(end)
        end += b.size
    return offsets


def _ends_exclusive(buffers):
    """First fit that takes a live range's end as exclusive: ranges that touch share bytes."""
    offsets = []
    for i, b in enumerate(buffers):
        offset = 0
        for j in range(i):
            other = buffers[j]
            live = not (b.end <= other.start or other.end <= b.start)
            if live and offset < offsets[j] + other.size and offsets[j] < offset + b.size:
                offset = offsets[j] + other.size
        offsets.append(offset)
    return offsets


def _unaligned(buffers):
    return [o + 8 if o else o for o in place_buffers(buffers)]


WRONG_PLACEMENTS = {
    "everything at offset 0": (_at_zero, "share bytes"),
    "no reuse": (_one_after_another, "reuse"),
    "a live range's end taken as exclusive": (_ends_exclusive, "both its ends"),
    "unaligned offsets": (_unaligned, "multiples of 16"),
    "one offset too few": (lambda buffers: place_buffers(buffers)[:-1], "one offset per buffer"),
}


@pytest.mark.parametrize("name", list(WRONG_PLACEMENTS))
def test_wrong_placements_are_rejected(name):
    rule, message = WRONG_PLACEMENTS[name]
    with pytest.raises(WrongAnswer, match=message):
        exercises.check_place_buffers(rule)


def test_a_wrong_placement_that_slips_past_the_unit_checks_is_caught_by_the_interpreter():
    """The compiler check is not decoration: a placement that is right on the check's buffer
    sets but puts the matmul's two operands on the same bytes gives a wrong product."""
    from course.exercises.lesson03_compiler import _compiles_and_runs

    def operands_collide(buffers):
        offsets = place_buffers(buffers)
        return [0 if b.size == 4096 else o for b, o in zip(buffers, offsets, strict=True)]

    with pytest.raises(WrongAnswer, match="wrong product after the pass"):
        _compiles_and_runs("place_buffers", place_buffers=operands_collide)


def test_unsolved_stubs_say_not_solved_yet():
    with pytest.raises(NotSolvedYet):
        exercises.check_swizzle(_unsolved)
    with pytest.raises(NotSolvedYet):
        exercises.check_place_buffers(_unsolved)
