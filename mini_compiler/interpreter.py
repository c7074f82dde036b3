"""A reference interpreter for Tile IR, written with numpy: the semantic oracle of every pass.

It runs a :class:`~mini_compiler.ir.Function` for every program id of a grid, one program after
the other. A scalar is a 0-d numpy array, a tile an n-d array, a pointer a byte address (int64).
Memory is the set of tensors passed to the kernel (:class:`Memory`); a load or store that falls
outside all of them raises :class:`~mini_compiler.errors.OutOfBoundsError` instead of reading
garbage, so the interpreter also checks a learner's masks.

It accepts IR both before and after ``infer_shapes``: numpy broadcasting plays the role of the
implicit broadcasts, and every op computes in the promoted type of its operands and converts to
its declared result type, which is what the explicit casts of ``infer_shapes`` spell out.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from .errors import OutOfBoundsError
from .ir.ops import Block, Function, Op, Value, for_parts, load_parts, store_parts
from .ir.registry import OPS
from .ir.semantics import STORAGE_DTYPES, convert, numpy_dtype
from .ir.types import ScalarType, bf16


@dataclass
class Buffer:
    name: str
    base: int  # byte address of element 0
    nbytes: int
    raw: np.ndarray  # uint8 view of the memory


class Memory:
    """The tensors a launch may touch, by address range."""

    def __init__(self):
        self.buffers: list[Buffer] = []

    def add(self, name: str, base: int, nbytes: int) -> None:
        if nbytes <= 0:
            raw = np.zeros(0, dtype=np.uint8)
        else:
            raw = np.ctypeslib.as_array(ctypes.cast(base, ctypes.POINTER(ctypes.c_uint8)),
                                        shape=(nbytes,))
        self.buffers.append(Buffer(name, base, nbytes, raw))

    def locate(self, addresses: np.ndarray, itemsize: int):
        """(buffer index per address or -1)."""
        which = np.full(addresses.shape, -1, dtype=np.int64)
        for i, b in enumerate(self.buffers):
            inside = (addresses >= b.base) & (addresses + itemsize <= b.base + b.nbytes)
            which[inside & (which < 0)] = i
        return which

    def typed(self, buffer: Buffer, storage):
        usable = buffer.nbytes - buffer.nbytes % np.dtype(storage).itemsize
        return buffer.raw[:usable].view(storage)


class InterpreterError(RuntimeError):
    pass


class Interpreter:
    """Runs a Function over a grid. ``kernel_name`` is used in error messages."""

    def __init__(self, fn: Function, memory: Memory):
        self.fn = fn
        self.memory = memory
        self.pid = (0, 0, 0)
        self.grid = (1, 1, 1)

    def run_grid(self, args: list, grid: tuple[int, int, int]) -> None:
        self.grid = tuple(grid) + (1,) * (3 - len(grid))
        gx, gy, gz = self.grid
        for z in range(gz):
            for y in range(gy):
                for x in range(gx):
                    self.run_program(args, (x, y, z))

    def run_program(self, args: list, pid: tuple[int, int, int]) -> None:
        self.pid = pid
        env: dict[Value, np.ndarray] = {}
        for value, arg in zip(self.fn.args, args, strict=False):
            env[value] = convert(np.asarray(arg), value.type.element)
        with np.errstate(all="ignore"):
            self.run_block(self.fn.body, env)

    def run_block(self, block: Block, env: dict) -> list:
        for op in block.ops:
            if op.name == "tile.yield":
                return [env[v] for v in op.operands]
            outputs = self.run_op(op, env)
            for result, out in zip(op.results, outputs, strict=False):
                env[result] = out
        return []

    # -- op semantics -----------------------------------------------------------------------
    def run_op(self, op: Op, env: dict) -> list:
        name = op.name
        vals = [env[v] for v in op.operands]
        if name == "tile.for":
            return self.run_for(op, env)
        if name == "tile.if":
            region = op.regions[0] if bool(vals[0]) else op.regions[1]
            return self.run_block(region, env)
        if name == "tile.store":
            self.store(op, env)
            return []
        if name == "tile.load":
            return [self.load(op, env)]
        if name == "tile.atomic_add":
            return [self.atomic_add(op, env)]
        if name == "tile.while":
            return self.run_while(op, env)
        if name in ("tile.debug_barrier", "gpu.barrier"):
            return []  # one program at a time: every thread is always "there"
        handler = OPS[name].semantics if name in OPS else None
        if handler is None:
            raise InterpreterError(f"the interpreter does not know {name}")
        if not op.results:  # an effect only (gpu.async_copy...)
            handler(self, op, vals)
            return []
        rt = op.result.type
        out = handler(self, op, vals)
        return [convert(np.broadcast_to(out, rt.shape) if np.shape(out) != rt.shape else out,
                        rt.element)]

    def run_for(self, op: Op, env: dict) -> list:
        lower, upper, step, inits = for_parts(op)
        body = op.regions[0]
        carried = [env[v] for v in inits]
        for i in range(int(env[lower]), int(env[upper]), int(env[step])):
            env[body.args[0]] = convert(np.asarray(i), body.args[0].type.element)
            for arg, v in zip(body.args[1:], carried, strict=False):
                env[arg] = v
            carried = self.run_block(body, env)
        return carried

    def run_while(self, op: Op, env: dict) -> list:
        """``tile.while``: run the condition region, then the body, while the condition holds."""
        before, body = op.regions
        carried = [env[v] for v in op.operands]
        while True:
            for arg, v in zip(before.args, carried, strict=True):
                env[arg] = v
            (go,) = self.run_block(before, env)
            if not bool(go):
                return carried
            for arg, v in zip(body.args, carried, strict=True):
                env[arg] = v
            carried = self.run_block(body, env)

    def atomic_add(self, op: Op, env: dict) -> np.ndarray:
        """Read, add and write back each element in turn (programs run one at a time, so this
        is what an atomic add means here); returns the values read."""
        ptr, value = op.operands[0], op.operands[1]
        rt = op.result.type
        addresses = np.broadcast_to(env[ptr], rt.shape).astype(np.int64)
        m = (np.ones(rt.shape, bool) if not op.attrs.get("has_mask")
             else np.broadcast_to(env[op.operands[2]], rt.shape))
        element = ptr.type.element.pointee
        values = convert(np.broadcast_to(env[value], rt.shape), element)
        storage = STORAGE_DTYPES[element.name]
        which = self._access(op, addresses, m, element, "atomic_add")
        old = np.zeros(rt.shape, dtype=numpy_dtype(element))
        positions = [tuple(p) for p in np.argwhere(m)] if rt.shape else ([()] if m else [])
        for position in positions:
            buffer = self.memory.buffers[which[position]]
            data = self.memory.typed(buffer, storage)
            index = (addresses[position] - buffer.base) // element.size_bytes
            old[position] = data[index]
            data[index] = convert(np.asarray(data[index] + values[position]), element)
        return old

    def where_error(self, op: Op, verb: str, offsets: np.ndarray, buffer_name: str) -> str:
        return (f"kernel `{self.fn.name}`, program id {self.pid[:self._rank()]}: {verb} out of "
                f"bounds at {op.loc.file}:{op.loc.line} (element offset {offsets} of "
                f"`{buffer_name}`); did you forget a mask?")

    def _rank(self) -> int:
        return 3 if self.grid[2] > 1 else (2 if self.grid[1] > 1 else 1)

    def _access(self, op: Op, addresses: np.ndarray, mask: np.ndarray, element: ScalarType,
                verb: str):
        itemsize = element.size_bytes
        which = self.memory.locate(addresses, itemsize)
        bad = mask & (which < 0)
        if bad.any():
            first = addresses[bad].flat[0]
            nearest = min(self.memory.buffers, key=lambda b: abs(first - b.base)) \
                if self.memory.buffers else None
            offset = (first - nearest.base) // itemsize if nearest else first
            raise OutOfBoundsError(self.where_error(op, verb, offset,
                                                    nearest.name if nearest else "?"))
        return which

    def load(self, op: Op, env: dict) -> np.ndarray:
        ptr, mask, other = load_parts(op)
        rt = op.result.type
        addresses = np.broadcast_to(env[ptr], rt.shape).astype(np.int64)
        m = np.ones(rt.shape, bool) if mask is None else np.broadcast_to(env[mask], rt.shape)
        element = ptr.type.element.pointee
        storage = STORAGE_DTYPES[element.name]
        which = self._access(op, addresses, m, element, "load")
        out = np.zeros(rt.shape, dtype=numpy_dtype(rt.element))
        for sel, data, index in self._per_buffer(addresses, m, which, element, storage):
            raw = data[index]
            if element == bf16:
                raw = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
            out[sel] = raw
        if other is not None:
            out = np.where(m, out, convert(np.broadcast_to(env[other], rt.shape), rt.element))
        return convert(out, rt.element)

    def _per_buffer(self, addresses, mask, which, element, storage):
        """For each tensor an access touches: (lanes selecting it, its typed view, indices)."""
        for i, buffer in enumerate(self.memory.buffers):
            sel = mask & (which == i)
            if sel.any():
                index = (addresses[sel] - buffer.base) // element.size_bytes
                yield sel, self.memory.typed(buffer, storage), index

    def store(self, op: Op, env: dict) -> None:
        ptr, value, mask = store_parts(op)
        shape = np.broadcast_shapes(np.shape(env[ptr]), np.shape(env[value]),
                                    () if mask is None else np.shape(env[mask]))
        addresses = np.broadcast_to(env[ptr], shape).astype(np.int64)
        m = np.ones(shape, bool) if mask is None else np.broadcast_to(env[mask], shape)
        element = ptr.type.element.pointee
        values = convert(np.broadcast_to(env[value], shape), element)
        storage = STORAGE_DTYPES[element.name]
        which = self._access(op, addresses, m, element, "store")
        for sel, data, index in self._per_buffer(addresses, m, which, element, storage):
            v = values[sel]
            if element == bf16:
                v = (np.asarray(v, np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
            data[index] = v


# What each op computes, from the registry (looked up when an op runs, so new ops are seen).
SEMANTICS = {name: d.semantics for name, d in OPS.items() if d.semantics is not None}


def interpret(fn: Function, args: list, grid, memory: Memory) -> None:
    """Run ``fn`` for every program of ``grid`` (a tuple of up to 3 ints)."""
    Interpreter(fn, memory).run_grid(args, tuple(grid))
