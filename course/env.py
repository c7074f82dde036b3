"""Where the course runs: an NVIDIA GPU at full size, or the CPU through Triton's interpreter.

Triton decides at import time whether ``@triton.jit`` kernels compile for a GPU or run in its
interpreter (``TRITON_INTERPRET=1``, which executes every program of the grid with numpy on the
CPU). So the decision has to be made *before* ``import triton``: :func:`configure` makes it, and
everything in the course that imports triton calls it first. :func:`setup` is what the first cell
of each notebook calls; it does the same and tells the learner what it chose and why.

Set ``COURSE_DEVICE=cpu`` to use the interpreter even on a machine with a GPU (handy for checking
that a notebook still runs on a laptop).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Environment:
    """The choice :func:`configure` made, with the reason in words."""

    device: str  # "cuda" or "cpu"
    device_name: str  # e.g. "NVIDIA H100 80GB HBM3" or "CPU (Triton interpreter)"
    reason: str

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def interpreted(self) -> bool:
        return not self.on_gpu


_chosen: Environment | None = None


def _decide() -> Environment:
    import torch

    forced = os.environ.get("COURSE_DEVICE", "").lower()
    if forced == "cpu":
        return Environment("cpu", "CPU (Triton interpreter)", "COURSE_DEVICE=cpu asks for the CPU")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return Environment("cuda", name, f"a CUDA GPU is present ({name})")
    if forced == "cuda":
        raise RuntimeError(
            "COURSE_DEVICE=cuda asks for a GPU, but torch sees none "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}). "
            "Unset COURSE_DEVICE to run on the CPU instead."
        )
    why = "torch is a CPU-only build" if torch.version.cuda is None else "torch finds no CUDA GPU"
    return Environment("cpu", "CPU (Triton interpreter)", why)


def configure() -> Environment:
    """Choose GPU or interpreter once per process; set ``TRITON_INTERPRET`` before triton loads."""
    global _chosen
    if _chosen is not None:
        return _chosen
    env = _decide()
    if env.interpreted:
        if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError(
                "triton was imported before the course chose the CPU interpreter, so its kernels "
                "would try to compile for a GPU that is not there. Restart the kernel and run the "
                "first cell (course.setup()) before importing triton."
            )
        os.environ["TRITON_INTERPRET"] = "1"
    _chosen = env
    return env


def _show_wrong_answer(shell, etype, value, tb, tb_offset=None):
    """IPython handler: a wrong answer is shown as its message, not as a stack trace."""
    message = f"\u2717 {etype.__name__}: {value}"
    shell._showtraceback(etype, value, [message])
    return [message]


def _install_notebook_display() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to install
        return
    shell = get_ipython()
    if shell is not None:
        from .check import WrongAnswer

        shell.set_custom_exc((WrongAnswer,), _show_wrong_answer)


def setup(verbose: bool = True) -> Environment:
    """Configure the notebook's device and say which one, and why. Call it before ``import triton``.

    In a notebook it also makes a failed check show its explanation without a stack trace.
    """
    env = configure()
    _install_notebook_display()
    if verbose:
        if env.on_gpu:
            print(f"Running on the GPU: {env.reason}. Problem sizes are full size.")
        else:
            print(
                f"Running on the CPU with Triton's interpreter: {env.reason}.\n"
                "Kernels give the same results as on a GPU, but slowly, so problem sizes are "
                "small and timings are CPU wall-clock, not GPU speed."
            )
    return env
