"""Back ends: Tile IR -> machine code, all behind one small interface.

A back end is a module with a function ::

    compile(fn: mini_compiler.ir.Function, options: dict) -> artifact

where ``fn`` is the optimised Tile IR of one specialisation and the returned artifact has

* ``asm: dict[str, str]``: the text of the stages it produced (``"llvm"``, ``"llvm.opt"``,
  ``"x86"`` on the CPU; e.g. ``"ptx"`` on the GPU), and
* ``launch(runtime_args: list, grid: tuple[int, int, int]) -> None``: runs the kernel. A runtime
  argument is a :class:`~mini_compiler.runtime.specialization.TensorArg` (``address``,
  ``nbytes``, ``element``) for a pointer parameter, or a Python ``int`` / ``float``.

``options`` holds ``kernel_name``, ``bounds_check`` (bool), ``num_warps`` and ``num_stages``
(launch hints the CPU ignores) and ``debug`` (a set of stage names to print as produced).

``backends/cpu`` lowers to LLVM IR for the host CPU; ``backends/gpu`` (NVPTX) is looked up by
:func:`backend_for_device` when the tensors are CUDA tensors.
"""

from __future__ import annotations

import importlib

from ..errors import LaunchError


def backend_for_device(device: str):
    """The back-end module for tensors on ``device`` ("cpu" or "cuda")."""
    if device == "cpu":
        return importlib.import_module("mini_compiler.backends.cpu")
    if device == "cuda":
        try:
            module = importlib.import_module("mini_compiler.backends.gpu")
        except ImportError:
            module = None
        if module is None or not hasattr(module, "compile"):
            raise LaunchError(
                "these are CUDA tensors, but mini_compiler's GPU back end "
                "(mini_compiler.backends.gpu) is not available yet; run the kernel on CPU "
                "tensors (x.cpu()) or with Triton itself"
            )
        return module
    raise LaunchError(f"tensors on device `{device}` are not supported (use CPU tensors)")
