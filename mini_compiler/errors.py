"""Errors a learner sees, written for people: what went wrong, where, and what to do."""

from __future__ import annotations

import linecache

from .ir.ops import Location


class CompilationError(Exception):
    """A kernel uses something the compiler does not support, or breaks a typing rule.

    The message names the kernel's file and line, shows the source line with a caret under the
    column, and says what is supported::

        kernels.py:12:17: in kernel `softmax`: tl.arange needs constexpr bounds ...
            offs = tl.arange(0, n)
                                ^
        Supported: ...
    """

    def __init__(self, message: str, loc: Location | None = None, kernel: str = "",
                 supported: str = ""):
        self.message = message
        self.loc = loc
        self.kernel = kernel
        self.supported = supported
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.loc is not None and self.loc.line > 0:
            where = f"{self.loc.file}:{self.loc.line}:{self.loc.col}: "
        who = f"in kernel `{self.kernel}`: " if self.kernel else ""
        text = f"{where}{who}{self.message}"
        if self.loc is not None and self.loc.line > 0:
            source = linecache.getline(self.loc.file, self.loc.line).rstrip("\n")
            if source:
                text += f"\n    {source}\n    {' ' * self.loc.col}^"
        if self.supported:
            text += f"\n{self.supported}"
        return text


class LaunchError(TypeError):
    """A kernel was launched with arguments it cannot take (count, kind, device)."""


class OutOfBoundsError(IndexError):
    """A bounds-checked launch found a load or store outside its tensor (a missing mask?)."""
