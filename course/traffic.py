"""Count the bytes a kernel moves: a memory-traffic score for the puzzles.

A memory-bound kernel is only as fast as the bytes it moves between DRAM and the chip, so the
first question about a correct kernel is: did it move more than it had to? Reloading a tile it
already holds, or loading a vector as a whole 2-D tile, gives the right answer and wastes
bandwidth; the result cannot show it, a count can.

:func:`measure_traffic` runs the kernel once more through ``mini_compiler``'s reference
interpreter (Tile IR executed with numpy, one program after the other) on CPU copies of its
arguments, and counts, for every ``tl.load`` and ``tl.store``, the lanes its mask leaves on times
the element size, per tensor. That is the traffic of a machine without caches: each access goes
to memory. A GPU's L1 and L2 caches may serve a repeated load, but the count is what the kernel
asks for, and a kernel that asks for less never depends on the cache being large enough.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Traffic:
    """Bytes loaded and stored by one launch, in total and per tensor argument."""

    loaded: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_loaded(self) -> int:
        return sum(self.loaded.values())

    @property
    def bytes_stored(self) -> int:
        return sum(self.stored.values())

    @property
    def total(self) -> int:
        return self.bytes_loaded + self.bytes_stored

    def describe(self) -> str:
        """One line per tensor, e.g. ``x: loaded 4,096 B``."""
        names = list(dict.fromkeys([*self.loaded, *self.stored]))
        parts = []
        for name in names:
            moved = []
            if self.loaded.get(name):
                moved.append(f"loaded {self.loaded[name]:,} B")
            if self.stored.get(name):
                moved.append(f"stored {self.stored[name]:,} B")
            parts.append(f"{name}: {', '.join(moved)}")
        return "; ".join(parts)


def _counting_interpreter(fn, memory, traffic: Traffic):
    """An interpreter whose loads and stores add the bytes of their active lanes to ``traffic``."""
    from mini_compiler.interpreter import Interpreter
    from mini_compiler.ir.ops import load_parts, store_parts

    def add(counts: dict, addresses, mask, itemsize: int) -> None:
        active = addresses[mask]
        which = memory.locate(active, itemsize)
        for index, buffer in enumerate(memory.buffers):
            lanes = int(np.count_nonzero(which == index))
            if lanes:
                counts[buffer.name] = counts.get(buffer.name, 0) + lanes * itemsize

    class CountingInterpreter(Interpreter):
        def load(self, op, env):
            ptr, mask, _ = load_parts(op)
            shape = op.result.type.shape
            addresses = np.broadcast_to(env[ptr], shape).astype(np.int64)
            m = np.ones(shape, bool) if mask is None else np.broadcast_to(env[mask], shape)
            values = super().load(op, env)  # raises on a stray access before we count it
            add(traffic.loaded, addresses, m, ptr.type.element.pointee.size_bytes)
            return values

        def store(self, op, env):
            ptr, value, mask = store_parts(op)
            shape = np.broadcast_shapes(np.shape(env[ptr]), np.shape(env[value]),
                                        () if mask is None else np.shape(env[mask]))
            addresses = np.broadcast_to(env[ptr], shape).astype(np.int64)
            m = np.ones(shape, bool) if mask is None else np.broadcast_to(env[mask], shape)
            super().store(op, env)
            add(traffic.stored, addresses, m, ptr.type.element.pointee.size_bytes)

    return CountingInterpreter(fn, memory)


def measure_traffic(kernel, grid, *args, **constexprs) -> Traffic:
    """Run ``kernel[grid](*args, **constexprs)`` in ``mini_compiler``'s interpreter on CPU copies of
    the tensors and return the bytes it loaded and stored, per tensor argument.

    ``kernel`` is a ``@triton.jit`` (or ``@mini_compiler.jit``) function; ``args`` are its runtime
    arguments in order (tensors and numbers), ``constexprs`` its ``tl.constexpr`` parameters by
    name. A load or store outside every tensor raises ``mini_compiler.OutOfBoundsError``.
    """
    import torch

    import mini_compiler
    from mini_compiler.frontend.source import python_function_of
    from mini_compiler.interpreter import Memory

    cpu_args = [a.detach().to("cpu").contiguous().clone() if isinstance(a, torch.Tensor) else a
                for a in args]
    compiled = mini_compiler.jit(kernel).compile(*cpu_args, backend="interpreter", **constexprs)
    names = list(inspect.signature(python_function_of(kernel) or kernel).parameters)
    memory, values = Memory(), []
    for name, arg in zip(names, cpu_args, strict=False):
        if isinstance(arg, torch.Tensor):
            memory.add(name, arg.data_ptr(), arg.numel() * arg.element_size())
            values.append(arg.data_ptr())
        else:
            values.append(arg)
    grid = tuple(grid) + (1,) * (3 - len(tuple(grid)))
    traffic = Traffic()
    _counting_interpreter(compiled.tile_ir, memory, traffic).run_grid(values, grid)
    return traffic
