"""Assemble PTX with ``ptxas`` and read its resource report, on any machine (no GPU needed).

Triton's Linux wheel ships NVIDIA's PTX assembler (``triton/backends/nvidia/bin/ptxas``). Running
it on the PTX we generate checks that the code is valid for ``sm_90`` and, with ``-v``, reports
per kernel the registers used and whether anything *spilled* to local memory (slow, per-thread
memory in DRAM): a kernel that keeps its tiles in registers shows ``0 bytes stack frame, 0 bytes
spill stores, 0 bytes spill loads``. CI runs this where there is no GPU.

Search order for the assembler: ``$MINI_COMPILER_PTXAS``, the installed Triton package, ``PATH``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


class PtxasError(RuntimeError):
    """ptxas rejected the PTX; the message carries its diagnostics."""


def find_ptxas() -> Path | None:
    """The path of a usable ``ptxas`` executable, or None if there is none."""
    override = os.environ.get("MINI_COMPILER_PTXAS")
    if override:
        return Path(override) if Path(override).is_file() else None
    spec = importlib.util.find_spec("triton")  # locate the wheel without importing triton
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "backends" / "nvidia" / "bin" / "ptxas"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("ptxas")
    return Path(found) if found else None


@dataclass
class KernelResources:
    """What ``ptxas -v`` says about one kernel."""

    name: str
    registers: int = 0
    stack_frame_bytes: int = 0
    spill_store_bytes: int = 0
    spill_load_bytes: int = 0
    shared_memory_bytes: int = 0

    @property
    def spills(self) -> bool:
        """True if the kernel uses local memory (a stack frame or register spills)."""
        return bool(self.stack_frame_bytes or self.spill_store_bytes or self.spill_load_bytes)


@dataclass
class PtxasReport:
    """The parsed ``-v`` output of one ptxas run, plus the raw text."""

    arch: str
    kernels: dict[str, KernelResources] = field(default_factory=dict)
    log: str = ""

    def kernel(self, name: str | None = None) -> KernelResources:
        """The report of kernel ``name`` (or of the only kernel)."""
        if name is None:
            (only,) = self.kernels.values()
            return only
        return self.kernels[name]


_FUNCTION = re.compile(r"(?:Compiling entry function|Function properties for) '?([\w$.]+)'?")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGISTERS = re.compile(r"Used (\d+) registers")
_SHARED = re.compile(r"(\d+) bytes smem")


def parse_ptxas_report(log: str, arch: str) -> PtxasReport:
    """Read registers, stack frame, spills and shared memory per kernel from ``ptxas -v`` text."""
    report = PtxasReport(arch=arch, log=log)
    current: KernelResources | None = None
    for line in log.splitlines():
        function = _FUNCTION.search(line)
        if function:
            name = function.group(1)
            current = report.kernels.setdefault(name, KernelResources(name))
            continue
        if current is None:
            continue
        if frame := _FRAME.search(line):
            current.stack_frame_bytes, current.spill_store_bytes, current.spill_load_bytes = (
                int(g) for g in frame.groups())
        if registers := _REGISTERS.search(line):
            current.registers = int(registers.group(1))
        if shared := _SHARED.search(line):
            current.shared_memory_bytes = int(shared.group(1))
    return report


def assemble(ptx: str, arch: str = "sm_90", ptxas: Path | None = None) -> PtxasReport:
    """Assemble ``ptx`` for ``arch`` with ``ptxas -v``; raise :class:`PtxasError` if it fails."""
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise FileNotFoundError(
            "no ptxas found: install triton (its Linux wheel carries ptxas) or set "
            "MINI_COMPILER_PTXAS to the path of a ptxas executable"
        )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "kernel.ptx"
        source.write_text(ptx)
        result = subprocess.run(
            [str(ptxas), f"-arch={arch}", "-v", "-o", str(Path(tmp) / "kernel.cubin"), str(source)],
            capture_output=True, text=True, check=False,
        )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise PtxasError(f"ptxas failed for {arch}:\n{log}")
    return parse_ptxas_report(log, arch)
