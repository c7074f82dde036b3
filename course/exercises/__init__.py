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


__all__ = ["learner_code", "passed", "NotSolvedYet", "WrongAnswer", "Callable"]
