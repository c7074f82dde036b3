"""Helpers for the course notebooks: device choice, problem sizes, checks, timing, plots.

The first cell of every notebook is::

    import course
    env = course.setup()      # GPU if there is one, otherwise Triton's interpreter

It must run before ``import triton``, because Triton reads ``TRITON_INTERPRET`` when it loads.
This package itself never imports triton at import time.
"""

from . import plots, results, timing
from .check import NotSolvedYet, WrongAnswer, check_close, empty_poisoned, poison
from .env import Environment, configure, setup
from .show import show, source
from .sizes import sizes
from .timing import Timing, bench, gbps, tflops

__all__ = [
    "plots",
    "results",
    "timing",
    "Environment",
    "NotSolvedYet",
    "Timing",
    "WrongAnswer",
    "bench",
    "check_close",
    "configure",
    "empty_poisoned",
    "gbps",
    "poison",
    "setup",
    "show",
    "source",
    "sizes",
    "tflops",
]
