"""What each Tile IR op computes, in numpy: the meaning the reference interpreter gives it.

A semantic function is ``run(interp, op, values) -> numpy array``: ``values`` are the operands'
values (0-d arrays for scalars, numpy broadcasting standing in for implicit broadcasts) and
``interp`` gives the program id and grid. Every op computes in the promoted type of its operands;
the interpreter converts the result to the op's declared type. Ops that touch memory or own
regions (load, store, atomic_add, for, while, if) are run by the interpreter itself.
"""

from __future__ import annotations

import numpy as np

from . import type_rules
from .types import ElementType, PointerType, ScalarType, bf16

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


Op = object  # (annotation only: an ir.ops.Op)


def _compute_element(op: Op) -> ElementType:
    """The type a binary op computes in: the promoted operand type (f32 for integer `/`)."""
    a, b = op.operands[-2].type.element, op.operands[-1].type.element
    return type_rules.promote_elements(a, b, op.name)


def _binary(fn):
    def run(interp, op: Op, vals):
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
    def run(interp, op: Op, vals):
        x = vals[0]
        compute = np.float32 if x.dtype in (np.float16, np.int32, np.int64, np.int8, np.int16,
                                            np.bool_) else x.dtype
        return fn(x.astype(compute))

    return run


def _bitcast(interp, op: Op, vals):
    source, target = op.operands[0].type.element, op.result.type.element
    x = np.ascontiguousarray(vals[0])
    if source == bf16:
        x = (x.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    else:
        x = x.astype(numpy_dtype(source))
    if target == bf16:
        return (x.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
    return x.view(numpy_dtype(target))


def _reduce(interp, op: Op, vals):
    x = vals[0]
    axis = op.attrs["axis"]
    kind = op.attrs["kind"]
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    return {"sum": np.sum, "max": np.max, "min": np.min}[kind](x, axis=axis)


def _scan(interp, op: Op, vals):
    x = vals[0]
    axis = op.attrs["axis"]
    if op.attrs.get("reverse"):
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


def _dot(interp, op: Op, vals):
    compute = np.float64 if op.result.type.element.name == "f64" else np.float32
    out = vals[0].astype(compute) @ vals[1].astype(compute)
    if op.attrs.get("has_acc"):
        out = out + vals[2].astype(compute)
    return out


def _cast(interp, op: Op, vals):
    return convert(vals[0], op.result.type.element)


def _addptr(interp, op: Op, vals):
    element = op.operands[0].type.element.pointee
    return vals[0].astype(np.int64) + vals[1].astype(np.int64) * element.size_bytes


def _where(interp, op: Op, vals):
    element = op.result.type.element
    return np.where(vals[0], convert(vals[1], element), convert(vals[2], element))


def _constant(interp, op, vals):
    return np.asarray(op.attrs["value"])


def _program_id(interp, op, vals):
    return np.asarray(interp.pid[op.attrs["axis"]])


def _num_programs(interp, op, vals):
    return np.asarray(interp.grid[op.attrs["axis"]])


def _arange(interp, op, vals):
    return np.arange(op.attrs["start"], op.attrs["end"])


def _full(interp, op, vals):
    return np.full(op.result.type.shape, op.attrs["value"])


def _broadcast(interp, op, vals):
    return np.broadcast_to(vals[0], op.result.type.shape)


def _expand_dims(interp, op, vals):
    return np.expand_dims(vals[0], op.attrs["axis"])


def _trans(interp, op, vals):
    return np.ascontiguousarray(vals[0].T)


def _reshape(interp, op, vals):
    return np.reshape(vals[0], op.result.type.shape)


def _unary(fn):
    return lambda interp, op, vals: fn(vals[0])


def _same(interp, op, vals):
    return vals[0]


# ----- shared memory, for the IR after the GPU passes ------------------------------------------
# Once ``gpu.allocate_shared_memory`` has given a buffer its bytes (``smem_offset``), the
# interpreter really keeps the tile in a byte array standing for the program's shared memory, at
# the places the buffer's ``#shared`` layout (its swizzle included) gives each element, and reads
# it back from there. A wrong allocation (two live buffers sharing bytes) or a swizzle that is not
# a permutation then changes the result, as it would on the GPU.
SHARED_MEMORY_BYTES = 256 * 1024
_OFFSET_MAPS: dict = {}


def _shared_memory(interp) -> np.ndarray:
    memory = getattr(interp, "shared_memory", None)
    if memory is None:
        memory = interp.shared_memory = np.zeros(SHARED_MEMORY_BYTES, dtype=np.uint8)
    return memory


def _element_offsets(layout, shape) -> np.ndarray:
    """Per tile element, its element offset in the buffer (``layout.element_offset``)."""
    key = (layout, layout.rule, shape) if hasattr(layout, "rule") else (layout, None, shape)
    if key not in _OFFSET_MAPS:
        offsets = np.zeros(shape, dtype=np.int64)
        for coordinate in np.ndindex(*shape):
            offsets[coordinate] = (layout.element_offset(shape, coordinate)
                                   if hasattr(layout, "element_offset")
                                   else np.ravel_multi_index(coordinate, shape))
        _OFFSET_MAPS[key] = offsets
    return _OFFSET_MAPS[key]


def _shared_view(interp, op, element) -> np.ndarray:
    """The bytes ``op``'s buffer was given, viewed as its elements (bf16 as its 16 bits)."""
    storage = np.dtype(STORAGE_DTYPES[element.name])
    start = op.attrs["smem_offset"]
    nbytes = op.attrs["smem_bytes"] - op.attrs["smem_bytes"] % storage.itemsize
    return _shared_memory(interp)[start:start + nbytes].view(storage)


def _to_storage(x, element) -> np.ndarray:
    if element == bf16:
        return (np.asarray(round_to_bfloat16(x), np.float32).view(np.uint32)
                >> np.uint32(16)).astype(np.uint16)
    return convert(x, element)


def _from_storage(raw, element) -> np.ndarray:
    if element == bf16:
        return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return raw


def _write_shared(interp, op, x) -> None:
    element = op.result.type.element
    if element.is_pointer:
        return
    view = _shared_view(interp, op, element)
    if op.name == "gpu.local_alloc":
        offsets = _element_offsets(op.layout, x.shape)
    else:  # a layout conversion's scratch: row-major
        offsets = np.arange(x.size).reshape(x.shape)
    view[offsets] = _to_storage(x, element)


def _local_alloc(interp, op, vals):
    x = np.asarray(vals[0])
    if "smem_offset" in op.attrs:
        _write_shared(interp, op, np.broadcast_to(x, op.result.type.shape))
    return x


def _local_load(interp, op, vals):
    source = op.operands[0].owner
    if getattr(source, "name", None) != "gpu.local_alloc" or "smem_offset" not in source.attrs:
        return vals[0]
    element = op.result.type.element
    view = _shared_view(interp, source, element)
    return _from_storage(view[_element_offsets(source.layout, op.result.type.shape)], element)


def _convert_layout(interp, op, vals):
    """A layout conversion passes its tile through its scratch bytes (clobbering them)."""
    x = np.asarray(vals[0])
    if "smem_offset" in op.attrs:
        _write_shared(interp, op, np.broadcast_to(x, op.result.type.shape))
    return x


# ----- the asynchronous copies of a pipelined tl.dot loop (gpu.pipeline_loads) ----------------
# A ring of ``num_stages`` shared-memory slots per dot operand: ``gpu.async_copy`` loads a tile
# from global memory straight into one slot (masked-off elements read as zero), ``gpu.ring_load``
# reads a slot back. Programs run one at a time here and a copy completes at once, so
# ``gpu.async_commit`` and ``gpu.async_wait`` change nothing. Before the allocator the ring is a
# numpy array of shape (num_stages, *slot); once it has ``smem_offset`` its slots live in the
# simulated shared memory, slot ``s`` at ``smem_offset + s * slot bytes``, in its ``#shared``
# layout, so a wrong slot, offset or swizzle shows in the result.
def _alloc_ring(interp, op, vals):
    return np.zeros(op.result.type.shape, numpy_dtype(op.result.type.element))


def _ring_slot_view(interp, ring_op, slot: int) -> np.ndarray:
    element = ring_op.result.type.element
    storage = np.dtype(STORAGE_DTYPES[element.name])
    slot_shape = ring_op.result.type.shape[1:]
    slot_bytes = int(np.prod(slot_shape)) * storage.itemsize
    start = ring_op.attrs["smem_offset"] + slot * slot_bytes
    return _shared_memory(interp)[start:start + slot_bytes].view(storage)


def _async_copy(interp, op, vals):
    """``gpu.async_copy ring, slot, pointers, mask``: the slot receives the tile (zeros where
    the mask is off), read as ``tile.load`` reads it (bounds checked)."""
    ring, slot, pointers, mask = vals
    ring_op = op.operands[0].owner
    shape = op.operands[0].type.shape[1:]
    element = op.operands[2].type.element.pointee
    addresses = np.broadcast_to(pointers, shape).astype(np.int64)
    on = np.broadcast_to(np.asarray(mask, bool), shape)
    which = interp._access(op, addresses, on, element, "load")
    tile = np.zeros(shape, numpy_dtype(element))
    for sel, data, index in interp._per_buffer(addresses, on, which, element,
                                               STORAGE_DTYPES[element.name]):
        tile[sel] = _from_storage(data[index], element)
    slot = int(slot)
    if "smem_offset" in ring_op.attrs:
        view = _ring_slot_view(interp, ring_op, slot)
        view[_element_offsets(ring_op.layout, shape)] = _to_storage(tile, element)
    else:
        ring[slot] = tile


def _ring_load(interp, op, vals):
    ring, slot = vals
    ring_op = op.operands[0].owner
    element = op.result.type.element
    if "smem_offset" in ring_op.attrs:
        view = _ring_slot_view(interp, ring_op, int(slot))
        return _from_storage(view[_element_offsets(ring_op.layout, op.result.type.shape)],
                             element)
    return ring[int(slot)]


def _nothing(interp, op, vals):
    return None
