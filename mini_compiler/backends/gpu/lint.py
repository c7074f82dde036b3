"""A lint for generated PTX: problems that LLVM accepts but the CUDA driver rejects at load time.

The main one: an LLVM intrinsic called with a signature LLVM does not know (or one the NVPTX back
end cannot lower) is not an error in LLVM; it becomes a call to an external function named after
the intrinsic (``.extern .func ... llvm.nvvm.something``). ``ptxas`` and the driver then fail with
an unresolved symbol, far away from the code that caused it. Catch it right after code generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXTERN_FUNC = re.compile(r"^\s*\.extern\s+\.func\s*(?:\([^)]*\)\s*)?([A-Za-z_$.][\w$.]*)", re.M)
_ENTRY = re.compile(r"\.entry\s+([A-Za-z_$][\w$]*)")


class PtxLintError(RuntimeError):
    """Generated PTX would not load; the message names every problem found."""


@dataclass(frozen=True)
class LintProblem:
    symbol: str
    message: str

    def __str__(self) -> str:
        return f"{self.symbol}: {self.message}"


def lint_ptx(ptx: str) -> list[LintProblem]:
    """Every problem found in ``ptx`` (an empty list when it looks loadable)."""
    problems = []
    for match in _EXTERN_FUNC.finditer(ptx):
        symbol = match.group(1)
        if symbol.startswith("llvm."):
            problems.append(LintProblem(
                symbol,
                "call to an LLVM intrinsic that the NVPTX back end did not lower (wrong "
                "signature, or no NVPTX implementation such as llvm.exp.f32); the driver "
                "would fail to resolve it when loading the module",
            ))
    if not _ENTRY.search(ptx):
        problems.append(LintProblem(
            "<module>",
            "no .entry function: mark the kernel with the ptx_kernel calling convention",
        ))
    return problems


def check_ptx(ptx: str) -> str:
    """Return ``ptx`` unchanged, or raise :class:`PtxLintError` listing its problems."""
    problems = lint_ptx(ptx)
    if problems:
        raise PtxLintError("generated PTX is not loadable:\n" +
                           "\n".join(f"  - {p}" for p in problems))
    return ptx


def entry_names(ptx: str) -> list[str]:
    """The names of the kernels (``.entry`` functions) in ``ptx``."""
    return _ENTRY.findall(ptx)
