"""Checks for the exercises, one module per lesson (``lesson01`` ...).

A check runs the learner's code on fresh random inputs, including sizes that are not multiples of
the block, and compares with a higher-precision reference. What it reports is meant for a person:

* an exercise still holding its ``# YOUR CODE HERE`` stub gets :class:`~course.check.NotSolvedYet`;
* an exception inside the learner's code is reported with its type and message, not a long trace
  through Triton's internals;
* a wrong result gets :func:`~course.check.check_close`'s account of what differs and where.

All three are ``AssertionError`` subclasses, so a notebook cell, pytest and a grader all stop on
them. On success a check prints one line saying what was verified.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from contextlib import contextmanager

from ..check import NotSolvedYet, WrongAnswer


def _short_error(exc: BaseException, limit: int = 1200) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


@contextmanager
def learner_code(exercise: str):
    """Run the learner's code, turning a stub or a crash into a message a learner can act on."""
    try:
        yield
    except NotImplementedError as exc:
        raise NotSolvedYet(
            f"{exercise}: not solved yet. Replace the `raise NotImplementedError` under "
            "`# YOUR CODE HERE` with your code, run that cell, then run this check again."
        ) from exc
    except WrongAnswer:
        raise
    except Exception as exc:  # noqa: BLE001 - any crash in learner code becomes a message
        message = _short_error(exc)
        if "NotImplementedError" in message:
            raise NotSolvedYet(
                f"{exercise}: not solved yet. Replace the `raise NotImplementedError` under "
                "`# YOUR CODE HERE` with your code, run that cell, then run this check again."
            ) from exc
        raise WrongAnswer(f"{exercise}: your code raised an error:\n{message}") from exc


def passed(exercise: str, what: str) -> None:
    print(f"✓ {exercise}: {what}")


def reads_stay_inside(exercise: str, kernel, grid, *args, only_reads: bool = False,
                      **constexprs) -> None:
    """Run the learner's Triton kernel once more, compiled by ``mini_compiler`` for the CPU with
    bounds checking, on CPU copies of ``args``: every load and store of a lane that the mask
    leaves on must fall inside the tensor it was derived from.

    With ``only_reads``, a stray store is left for the caller's guard check to report (it names
    the offset past the end of the output); call it so *before* the learner's kernel first runs
    on the real device, where a stray read can fault and take every later GPU call down with it.

    A wrong read is the bug a result cannot show: a load with no mask before the start of a
    tensor (say, ``x[n - 1 - i]`` for ``i >= n``) reads memory that belongs to someone else, and
    its value is thrown away by the masked store, so the output is right. On a GPU that read may
    return garbage silently or stop the program with an illegal-address fault. A kernel that uses
    something ``mini_compiler`` does not compile (``tl.fma``, inline assembly) is not
    checked this way; the other checks still run.
    """
    import mini_compiler

    cpu_args = [a.detach().to("cpu").clone() if hasattr(a, "detach") else a for a in args]
    try:
        compiled = mini_compiler.jit(kernel)
    except Exception:  # noqa: BLE001 - not a kernel mini_compiler accepts: nothing to check
        return
    try:
        compiled[grid](*cpu_args, bounds_check=True, **constexprs)
    except mini_compiler.OutOfBoundsError as error:
        if only_reads and _verb(str(error)) == "writes":
            return
        raise WrongAnswer(
            f"{exercise}: your kernel {_verb(str(error))} outside its tensor, with "
            f"{_describe_args(args, constexprs)}:\n{error}\nA masked-off lane must neither load "
            "nor store: give every tl.load and tl.store a mask that is False for such lanes "
            "(and keep the offsets of lanes that are on inside the tensor)."
        ) from None
    except Exception:  # noqa: BLE001 - a construct the course's compiler does not support
        return  # (the kernel already ran correctly under Triton): skip this part


def _verb(message: str) -> str:
    return "reads" if "load out of bounds" in message else "writes"


def _describe_args(args, constexprs) -> str:
    sizes = [f"{tuple(a.shape)}" for a in args if hasattr(a, "shape")]
    consts = ", ".join(f"{k}={v}" for k, v in constexprs.items())
    return f"tensors of shapes {', '.join(sizes)}" + (f" and {consts}" if consts else "")


__all__ = [
    "learner_code",
    "passed",
    "reads_stay_inside",
    "NotSolvedYet",
    "WrongAnswer",
    "Callable",
]
