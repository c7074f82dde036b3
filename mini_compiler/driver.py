"""The compile path, once: a kernel's Python function and one specialisation -> Tile IR -> the
common passes -> a back end -> a :class:`CompiledKernel` with every stage's text.

``runtime/jit.py`` (``kernel[grid](...)``) calls :func:`compile_specialisation` behind its
in-memory and on-disk caches; the learner-facing GPU helpers (``tools/gpu.py``) call it
directly, so a rule a learner just changed is the one used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .backends import backend_for_device
from .debug import debug_stages, print_stage
from .frontend.codegen import build_tile_ir
from .interpreter import Memory, interpret
from .ir.ops import Function
from .passes.pipeline import PassManager
from .runtime.specialization import Specialisation, TensorArg


def interpret_with_runtime_args(fn: Function, runtime_args: list, grid: tuple[int, ...]) -> None:
    """Run Tile IR ``fn`` in the reference interpreter on a specialisation's runtime arguments:
    each tensor becomes a region of the interpreter's memory (so a stray access is caught) and
    is passed by its address; numbers are passed as they are. ``grid`` may have 1 to 3 axes."""
    memory, values = Memory(), []
    for a in runtime_args:
        if isinstance(a, TensorArg):
            memory.add(a.name, a.address, a.nbytes)
            values.append(a.address)
        else:
            values.append(a)
    interpret(fn, values, tuple(grid) + (1,) * (3 - len(grid)), memory)


@dataclass
class CompiledKernel:
    """One specialisation, compiled: the optimised Tile IR, every stage's text, and a launcher."""

    name: str
    tile_ir: Function
    asm: dict[str, str] = field(default_factory=dict)
    artifact: Any = None
    backend: str = "cpu"

    def launch(self, runtime_args: list, grid: tuple[int, int, int]) -> None:
        if self.backend == "interpreter":
            interpret_with_runtime_args(self.tile_ir, runtime_args, grid)
        else:
            self.artifact.launch(runtime_args, grid)


def compile_specialisation(fn, spec: Specialisation, backend_name: str, options: dict,
                           kernel_name: str | None = None) -> CompiledKernel:
    """Compile the Python function ``fn`` for ``spec`` with the back end ``backend_name``
    (``"cpu"``, ``"cuda"`` or ``"interpreter"``). ``options`` go to the back end (see
    ``backends/__init__.py``); nothing is cached here."""
    name = kernel_name or fn.__name__
    debug = debug_stages()
    on_stage = print_stage if "ir" in debug else None
    manager = PassManager(record=True, on_stage=on_stage)
    tile_ir = manager.run(build_tile_ir(fn, spec.params, name))
    compiled = CompiledKernel(name, tile_ir, dict(manager.stages), backend=backend_name)
    if backend_name != "interpreter":
        backend = backend_for_device(backend_name)
        artifact = backend.compile(tile_ir, {**options, "kernel_name": name, "debug": debug})
        compiled.artifact = artifact
        compiled.asm.update(artifact.asm)
    return compiled
