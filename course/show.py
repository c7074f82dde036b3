"""Showing the course's code inside a notebook, so the notebook never keeps a second copy of it."""

from __future__ import annotations

import inspect


def source(obj) -> str:
    """The source text of a function, a ``@triton.jit`` kernel or an autotuned kernel.

    Triton wraps a kernel's Python function in objects (``JITFunction``, ``Autotuner``,
    ``InterpretedFunction``) that each keep the wrapped function in ``.fn``; follow that chain.
    """
    seen = 0
    while not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)):
        if not hasattr(obj, "fn") or seen > 8:
            raise TypeError(f"cannot find the source of {obj!r}")
        obj, seen = obj.fn, seen + 1
    return inspect.getsource(obj)


def show(obj) -> None:
    """Print the source of ``obj`` (see :func:`source`)."""
    print(source(obj))
