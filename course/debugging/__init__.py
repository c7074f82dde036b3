"""Run NVIDIA's command-line tools on a lesson's kernel from a notebook: a memory checker and a
profiler. Both need a CUDA GPU and the tool on the ``PATH`` (or in ``/usr/local/cuda/bin``).

* :func:`run_memcheck` runs ``compute-sanitizer --tool memcheck`` on a script, here
  :mod:`course.debugging.planted_bug`, a kernel with its mask forgotten. Every tensor must be its
  own allocation for memcheck to see a stray access, so it sets
  ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` (PyTorch's caching allocator otherwise serves small
  tensors from larger segments, and an access past a tensor's end stays inside the segment).
* :func:`run_ncu` runs Nsight Compute's ``ncu`` with the *Speed Of Light* section on one launch
  of a kernel, here lesson 2's softmax (:mod:`course.debugging.profile_softmax`): how close the
  kernel comes to the GPU's memory and compute limits.

And :func:`print_locals_at_breakpoint` lets a notebook show what ``breakpoint()`` in an interpreted
kernel would let you inspect, without waiting at a debugger prompt.

Each tool runner returns a :class:`ToolRun` whose ``available`` says whether it could run at
all and whose ``relevant`` lines are the ones worth reading; nothing here raises because a tool
is missing or slow, since a notebook must run on any machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the scripts import `course`


@dataclass
class ToolRun:
    """What a tool run produced: ``available`` is False when the tool or a GPU is missing."""

    tool: str
    available: bool
    message: str = ""
    output: str = ""
    relevant: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.available or not self.relevant:
            return self.message or self.output[-2000:]
        return "\n".join(self.relevant)


def find_tool(name: str) -> str | None:
    """The path of an NVIDIA tool: on the PATH, or where the CUDA toolkit installs it."""
    found = shutil.which(name)
    if found:
        return found
    for folder in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"):
        candidate = Path(folder) / "bin" / name
        if folder and candidate.exists():
            return str(candidate)
    return None


def _gpu_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no torch CUDA: no GPU for our purposes
        return False


def _run(tool: str, command: list[str], env_extra: dict, timeout: int) -> ToolRun | str:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(env_extra)
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ToolRun(tool, False, f"{tool} did not finish within {timeout} s; run it by hand: "
                       f"{' '.join(command)}")
    except OSError as error:
        return ToolRun(tool, False, f"{tool} could not start: {error}")
    return done.stdout + done.stderr


def _unavailable(tool: str) -> ToolRun | None:
    if not _gpu_present():
        return ToolRun(tool, False, f"{tool} needs an NVIDIA GPU; this machine has none.")
    if find_tool(tool) is None:
        return ToolRun(tool, False, f"{tool} was not found (it comes with the CUDA toolkit: put "
                       "its bin folder on the PATH, or set CUDA_HOME).")
    return None


MEMCHECK_KEYS = ("Invalid __global__", "    at ", "by thread", "Address", "bytes after",
                 "bytes before", "ERROR SUMMARY", "planted bug ran")


def run_memcheck(module: str = "course.debugging.planted_bug", timeout: int = 300) -> ToolRun:
    """``compute-sanitizer --tool memcheck python -m module``, each tensor its own allocation."""
    missing = _unavailable("compute-sanitizer")
    if missing:
        return missing
    command = [find_tool("compute-sanitizer"), "--tool", "memcheck", "--print-limit", "4",
               sys.executable, "-m", module]
    output = _run("compute-sanitizer", command, {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}, timeout)
    if isinstance(output, ToolRun):
        return output
    relevant = [line.replace("========= ", "").rstrip() for line in output.splitlines()
                if any(key in line for key in MEMCHECK_KEYS)]
    return ToolRun("compute-sanitizer", True, "" if relevant else
                   "compute-sanitizer printed nothing recognisable; its output:\n" + output[-3000:],
                   output, relevant)


NCU_KEYS = ("DRAM Throughput", "Memory Throughput", "Compute (SM) Throughput", "Duration",
            "Elapsed Cycles", "SM Frequency", "DRAM Frequency", "softmax_kernel")


def run_ncu(module: str = "course.debugging.profile_softmax", kernel: str = "softmax_kernel",
            timeout: int = 300) -> ToolRun:
    """Nsight Compute's Speed Of Light section for the second launch of ``kernel``."""
    missing = _unavailable("ncu")
    if missing:
        return missing
    command = [find_tool("ncu"), "--clock-control", "none", "--kernel-name", f"regex:{kernel}",
               "--launch-skip", "1", "--launch-count", "1", "--section", "SpeedOfLight",
               sys.executable, "-m", module]
    output = _run("ncu", command, {}, timeout)
    if isinstance(output, ToolRun):
        return output
    if "ERR_NVGPUCTRPERM" in output:
        return ToolRun("ncu", False, "ncu may not read the GPU's performance counters here "
                       "(ERR_NVGPUCTRPERM): an administrator must allow it.", output)
    relevant = [" ".join(line.split()) for line in output.splitlines()
                if any(key in line for key in NCU_KEYS) and not line.startswith("==PROF==")]
    return ToolRun("ncu", True, "" if relevant else
                   "ncu printed no metrics; its output:\n" + output[-3000:], output, relevant)


def metric(run: ToolRun, name: str) -> tuple[float, str] | None:
    """A metric's value and unit from an ``ncu`` table line such as ``DRAM Throughput % 91.52``."""
    for line in run.relevant:
        if line.startswith(name):
            parts = line[len(name):].split()
            if len(parts) >= 2:
                try:
                    return float(parts[-1].replace(",", "")), parts[-2]
                except ValueError:
                    continue
    return None


@contextmanager
def print_locals_at_breakpoint(*names: str):
    """Inside the block, ``breakpoint()`` prints the caller's line and the local variables
    ``names`` (a tile as its values) and goes on, instead of opening ``pdb``. Made for notebooks
    that run from start to end; to debug, call ``breakpoint()`` with the hook left alone."""

    def show(*_args, **_kwargs) -> None:
        frame = sys._getframe(1)
        values = []
        for name in names:
            if name in frame.f_locals:
                value = frame.f_locals[name]
                data = getattr(getattr(value, "handle", None), "data", value)  # interpreter tile
                values.append(f"{name} = {data}")
        print(f"stopped at line {frame.f_lineno} of {frame.f_code.co_name}: " + ", ".join(values))

    saved = sys.breakpointhook
    sys.breakpointhook = show
    try:
        yield
    finally:
        sys.breakpointhook = saved
