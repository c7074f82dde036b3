"""Coalescing: choose how many elements each thread moves per memory instruction.

Input: Tile IR after ``infer_shapes`` and the :mod:`.axis_info` analysis of it.
Output: the same IR; every ``tile.load`` / ``tile.store`` of a tile gets the attribute
``vector_width`` (elements per access along the fastest dimension), and the function gets the
widest width per tile rank, which :mod:`.assign_layouts` uses as ``size_per_thread``.

Idea: a warp's accesses are *coalesced* when its 32 threads touch one contiguous stretch of
memory; the GPU then moves it in few wide transactions. Giving each thread ``v`` consecutive
elements, loaded by one instruction, makes both the transactions and the instruction count
small. A width is legal only if the ``v`` addresses are consecutive (contiguity), the first is
aligned to ``v * element size`` bytes (divisibility), and the access is at most 16 bytes (the
widest load a thread can issue, ``ld.global.v4.b32``). A masked access keeps its width only if the
mask is the same over each group of ``v`` elements (constancy); one predicate then guards the
whole vector.

:func:`vector_width` is the rule; a learner may write their own and pass it in (see
``mini_compiler.backends.gpu``).
"""

from __future__ import annotations

from collections.abc import Callable

from ...ir.ops import Function, load_parts, store_parts, walk_ops
from .axis_info import AxisInfo, unknown

MAX_ACCESS_BYTES = 16

VectorWidthRule = Callable[[int, int, int], int]


def vector_width(contiguity: int, divisibility: int, elem_bytes: int) -> int:
    """The widest legal access, in elements: the largest power of two ``v`` with
    ``v <= contiguity``, ``v * elem_bytes <= 16`` and ``v * elem_bytes`` dividing
    ``divisibility`` (the alignment of the first address, in bytes)."""
    width = 1
    while (width * 2 <= contiguity and width * 2 * elem_bytes <= MAX_ACCESS_BYTES
           and divisibility % (width * 2 * elem_bytes) == 0):
        width *= 2
    return width


def _check_width(width: int, rule: VectorWidthRule, args: tuple[int, int, int]) -> int:
    contiguity, divisibility, elem_bytes = args
    if not isinstance(width, int) or width < 1 or width & (width - 1):
        raise ValueError(f"{rule.__name__}{args} returned {width!r}: a width must be a power "
                         "of two >= 1")
    if width > 1 and (width > contiguity or width * elem_bytes > MAX_ACCESS_BYTES or (
            divisibility % (width * elem_bytes))):
        raise ValueError(
            f"{rule.__name__}{args} returned {width}, which is not legal: {width} elements of "
            f"{elem_bytes} bytes need contiguity >= {width}, alignment divisible by "
            f"{width * elem_bytes} and at most {MAX_ACCESS_BYTES} bytes")
    return width


def coalesce(fn: Function, axis_info: dict, rule: VectorWidthRule = vector_width) -> dict[int, int]:
    """Set ``vector_width`` on every tile load/store; return the widest width per tile rank."""
    widest: dict[int, int] = {}
    for op in walk_ops(fn.body):
        if op.name == "tile.load":
            pointers, mask, _ = load_parts(op)
        elif op.name == "tile.store":
            pointers, _, mask = store_parts(op)
        elif op.name == "gpu.async_copy":  # ring, slot, pointers, mask
            pointers, mask = op.operands[2], op.operands[3]
        else:
            continue
        if pointers.type.is_scalar:
            continue
        # Values the analysis does not reach (a loop's iteration arguments, for one) have no
        # entry: nothing is known about them, so they get the narrowest access.
        info: AxisInfo = axis_info.get(pointers) or unknown(pointers.type.shape)
        fastest = pointers.type.rank - 1
        elem_bytes = pointers.type.element.pointee.size_bytes
        args = (min(info.contiguity[fastest], pointers.type.shape[fastest]),
                info.divisibility[fastest], elem_bytes)
        width = _check_width(rule(*args), rule, args)
        rank = pointers.type.rank
        widest[rank] = max(widest.get(rank, 1), width)
        if mask is not None:
            mask_info: AxisInfo | None = axis_info.get(mask)
            uniform = mask_info.constancy[fastest] if mask_info else 1
            width = min(width, uniform)
        op.attrs["vector_width"] = width
    return widest
