"""``MINI_COMPILER_DEBUG``: one switch that prints every stage as it is produced.

``MINI_COMPILER_DEBUG=ir,llvm,asm,ptx`` (or ``all``): ``ir`` prints the Tile IR before and after
each pass (the GPU passes included), ``llvm`` the LLVM IR before and after optimisation, ``asm``
the x86 assembly (and PTX), ``ptx`` the PTX. Every stage is printed the same way, by
:func:`print_stage`, whichever part of the compiler made it.
"""

from __future__ import annotations

import os
import sys

DEBUG_STAGES = {"ir", "llvm", "asm", "ptx"}


def debug_stages() -> set[str]:
    """The stages MINI_COMPILER_DEBUG asks to print: a comma list of ir, llvm, asm, ptx, or all."""
    raw = os.environ.get("MINI_COMPILER_DEBUG", "")
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    if "all" in names or "1" in names:
        return set(DEBUG_STAGES)
    return names & DEBUG_STAGES


def print_stage(name: str, text: str) -> None:
    print(f"// ----- {name} -----\n{text}", file=sys.stdout, flush=True)
