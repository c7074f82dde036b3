"""Checks for lesson 2's compiler exercises, in the course's words.

The checks themselves live with the compiler (:mod:`mini_compiler.tools.gpu_exercises`): they
replay a learner's shuffle offsets on a simulated warp, compare a vector-width rule with the
compiler's own on many cases, compile kernels with the learner's rule to PTX and, where there is a
GPU, run them against torch. This module only wraps them the way every course check behaves: an
unsolved stub says so, and a failed check is a :class:`~course.check.WrongAnswer`.
"""

from __future__ import annotations

from ..check import WrongAnswer
from ..env import configure
from . import learner_code, passed


def _run(exercise: str, check, rule) -> None:
    with learner_code(exercise):
        try:
            check(rule, run=configure().on_gpu)
        except AssertionError as failed:
            if isinstance(failed, WrongAnswer):
                raise
            raise WrongAnswer(f"{exercise}: {failed}") from None


def _where_it_ran() -> str:
    return "and ran it on the GPU" if configure().on_gpu else "(run it on a GPU to execute it)"


def check_butterfly_offsets(butterfly_offsets) -> None:
    """``butterfly_offsets(lanes, lane_stride)``: the xor distances of a warp reduction."""
    from mini_compiler.tools import gpu_exercises as exercises

    _run("butterfly_offsets", exercises.check_butterfly_offsets, butterfly_offsets)
    where = _where_it_ran()
    passed(
        "butterfly_offsets",
        f"every lane ends with its group's sum on a simulated warp, for groups of 1 to 32 lanes "
        f"at every spacing; a row/column-sum kernel compiled with your offsets {where}",
    )


def check_vector_width(vector_width) -> None:
    """``vector_width(contiguity, divisibility, elem_bytes)``: the widest legal access."""
    from mini_compiler.tools import gpu_exercises as exercises

    _run("vector_width", exercises.check_vector_width, vector_width)
    where = _where_it_ran()
    passed(
        "vector_width",
        f"agrees with the compiler's rule on all 168 cases; vector add compiled with it uses "
        f"128-bit loads {where}",
    )
