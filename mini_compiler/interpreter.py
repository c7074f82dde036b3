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
from .ir import type_rules
from .ir.ops import Block, Function, Op, Value, dot_parts, for_parts, load_parts, store_parts
from .ir.types import ElementType, PointerType, ScalarType, bf16

NUMPY_DTYPES = {
    "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
    "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
    "f16": np.float16, "bf16": np.float32, "f32": np.float32, "f64": np.float64,
}
# How each element type lies in memory (bf16 is kept as float32 while computing, 16 bits stored).
STORAGE_DTYPES = {**NUMPY_DTYPES, "bf16": np.uint16}


def numpy_dtype(element: ElementType):
    if isinstance(element, PointerType):
        return np.int64
    return NUMPY_DTYPES[element.name]


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), still held in float32."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) \
        & np.uint32(0xFFFF0000)
    return np.where(np.isnan(x), np.float32(np.nan), rounded.view(np.float32))


def convert(x, element: ElementType) -> np.ndarray:
    """``x`` converted to ``element`` with C semantics (float to int truncates toward zero)."""
    x = np.asarray(x)
    if element == bf16:
        return round_to_bfloat16(x.astype(np.float32))
    if isinstance(element, ScalarType) and element.is_bool:
        return x != 0
    target = numpy_dtype(element)
    if x.dtype == target:
        return x
    with np.errstate(all="ignore"):
        if np.issubdtype(target, np.integer) and np.issubdtype(x.dtype, np.floating):
            x = np.trunc(np.nan_to_num(x, nan=0.0))
        return x.astype(target)


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
        rt = op.result.type
        handler = SEMANTICS.get(name)
        if handler is None:
            raise InterpreterError(f"the interpreter does not know {name}")
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


def _compute_element(op: Op) -> ElementType:
    """The type a binary op computes in: the promoted operand type (f32 for integer `/`)."""
    a, b = op.operands[-2].type.element, op.operands[-1].type.element
    return type_rules.promote_elements(a, b, op.name)


def _binary(fn):
    def run(interp: Interpreter, op: Op, vals):
        element = _compute_element(op)
        a, b = (convert(v, element) for v in vals)
        return fn(a, b)

    return run


def _c_floordiv(a, b):
    q = np.floor_divide(a, np.where(b == 0, 1, b))
    adjust = (np.remainder(a, np.where(b == 0, 1, b)) != 0) & ((a < 0) != (b < 0))
    return q + adjust


def _c_mod(a, b):
    if np.issubdtype(np.asarray(a).dtype, np.floating):
        return np.fmod(a, b)  # C's fmod: the sign of the dividend, as LLVM's frem
    return a - _c_floordiv(a, b) * b


def _float_unary(fn):
    def run(interp: Interpreter, op: Op, vals):
        x = vals[0]
        compute = np.float32 if x.dtype in (np.float16, np.int32, np.int64, np.int8, np.int16,
                                            np.bool_) else x.dtype
        return fn(x.astype(compute))

    return run


def _bitcast(interp: Interpreter, op: Op, vals):
    source, target = op.operands[0].type.element, op.result.type.element
    x = np.ascontiguousarray(vals[0])
    if source == bf16:
        x = (x.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    else:
        x = x.astype(numpy_dtype(source))
    if target == bf16:
        return (x.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
    return x.view(numpy_dtype(target))


def _reduce(interp: Interpreter, op: Op, vals):
    x = vals[0]
    axis = op.attrs["axis"]
    kind = op.attrs["kind"]
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    return {"sum": np.sum, "max": np.max, "min": np.min}[kind](x, axis=axis)


def _scan(interp: Interpreter, op: Op, vals):
    x = vals[0]
    axis = op.attrs["axis"]
    if op.attrs.get("reverse"):
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


def _dot(interp: Interpreter, op: Op, vals):
    a, b, acc = dot_parts(op)
    compute = np.float64 if op.result.type.element.name == "f64" else np.float32
    out = vals[0].astype(compute) @ vals[1].astype(compute)
    if acc is not None:
        out = out + vals[2].astype(compute)
    return out


def _cast(interp: Interpreter, op: Op, vals):
    return convert(vals[0], op.result.type.element)


def _addptr(interp: Interpreter, op: Op, vals):
    element = op.operands[0].type.element.pointee
    return vals[0].astype(np.int64) + vals[1].astype(np.int64) * element.size_bytes


def _where(interp: Interpreter, op: Op, vals):
    element = op.result.type.element
    return np.where(vals[0], convert(vals[1], element), convert(vals[2], element))


SEMANTICS = {
    "tile.constant": lambda i, op, v: np.asarray(op.attrs["value"]),
    "tile.program_id": lambda i, op, v: np.asarray(i.pid[op.attrs["axis"]]),
    "tile.num_programs": lambda i, op, v: np.asarray(i.grid[op.attrs["axis"]]),
    "tile.arange": lambda i, op, v: np.arange(op.attrs["start"], op.attrs["end"]),
    "tile.full": lambda i, op, v: np.full(op.result.type.shape, op.attrs["value"]),
    "tile.splat": lambda i, op, v: np.broadcast_to(v[0], op.result.type.shape),
    "tile.broadcast": lambda i, op, v: np.broadcast_to(v[0], op.result.type.shape),
    "tile.expand_dims": lambda i, op, v: np.expand_dims(v[0], op.attrs["axis"]),
    "tile.trans": lambda i, op, v: np.ascontiguousarray(v[0].T),
    "tile.cast": _cast,
    "tile.bitcast": _bitcast,
    "tile.floor": _float_unary(np.floor), "tile.ceil": _float_unary(np.ceil),
    "tile.addptr": _addptr,
    "tile.add": _binary(np.add), "tile.sub": _binary(np.subtract),
    "tile.mul": _binary(np.multiply), "tile.div": _binary(np.divide),
    "tile.floordiv": _binary(_c_floordiv), "tile.mod": _binary(_c_mod),
    "tile.and": _binary(np.bitwise_and), "tile.or": _binary(np.bitwise_or),
    "tile.xor": _binary(np.bitwise_xor),
    "tile.maximum": _binary(np.maximum), "tile.minimum": _binary(np.minimum),
    "tile.lt": _binary(np.less), "tile.le": _binary(np.less_equal),
    "tile.gt": _binary(np.greater), "tile.ge": _binary(np.greater_equal),
    "tile.eq": _binary(np.equal), "tile.ne": _binary(np.not_equal),
    "tile.neg": lambda i, op, v: np.negative(v[0]),
    "tile.not": lambda i, op, v: np.invert(v[0]),
    "tile.exp": _float_unary(np.exp), "tile.exp2": _float_unary(np.exp2),
    "tile.log": _float_unary(np.log), "tile.log2": _float_unary(np.log2),
    "tile.sqrt": _float_unary(np.sqrt), "tile.sin": _float_unary(np.sin),
    "tile.cos": _float_unary(np.cos),
    "tile.abs": lambda i, op, v: np.abs(v[0]),
    "tile.where": _where,
    "gpu.convert_layout": lambda i, op, v: v[0],  # same values, held by other threads
    "tile.reduce": _reduce,
    "tile.scan": _scan,
    "tile.reshape": lambda i, op, v: np.reshape(v[0], op.result.type.shape),
    "tile.dot": _dot,
}


def interpret(fn: Function, args: list, grid, memory: Memory) -> None:
    """Run ``fn`` for every program of ``grid`` (a tuple of up to 3 ints)."""
    Interpreter(fn, memory).run_grid(args, tuple(grid))
