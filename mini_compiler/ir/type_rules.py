"""The typing rules of Tile IR, shared by the front end (to type ops as it builds them and report
errors at the right source line) and by ``passes.infer_shapes`` (to make the rules explicit).

Rules, as in Triton:

* shapes broadcast like numpy: align on the right, a dimension of 1 (or a missing one) stretches;
* element types promote: float beats int, the wider float wins (f16 with bf16 gives f32), the wider
  int wins, ``i1`` (a mask) joins any other type;
* a pointer plus an integer is pointer arithmetic (``tile.addptr``);
* comparisons give ``i1``; ``/`` of two integers gives ``f32``.
"""

from __future__ import annotations

from .types import ElementType, PointerType, ScalarType, TileType, f32, f64


class TypeRuleError(Exception):
    """A typing rule was broken; the front end turns it into a CompilationError with a location."""


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape both ``a`` and ``b`` stretch to, or TypeRuleError if they cannot."""
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb, strict=False):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise TypeRuleError(
                f"shapes {list(a)} and {list(b)} cannot be broadcast together "
                f"(dimension {x} against {y}; broadcasting needs equal sizes or a size of 1)"
            )
    return tuple(out)


def promote_elements(a: ElementType, b: ElementType) -> ElementType:
    """The common element type of ``a`` and ``b`` for arithmetic (pointers are handled apart)."""
    if a == b:
        return a
    if isinstance(a, PointerType) or isinstance(b, PointerType):
        raise TypeRuleError(f"cannot combine {a} and {b} in arithmetic")
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_float and b.is_float:
        if a.bits == b.bits:  # f16 and bf16: neither holds the other
            return f32
        return a if a.bits > b.bits else b
    if a.is_float:
        return a
    if b.is_float:
        return b
    return a if a.bits >= b.bits else b


def float_type_for(a: ElementType) -> ScalarType:
    """The float type math functions compute in for an element type (ints become f32)."""
    if isinstance(a, ScalarType) and a.is_float:
        return a
    return f32


def reduce_result_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return tuple(d for i, d in enumerate(shape) if i != axis)


def normalise_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise TypeRuleError(f"axis {axis} is out of range for a tile of rank {rank}")
    return axis % rank


def dot_result_type(a: TileType, b: TileType, acc: TileType | None) -> TileType:
    """``tile.dot`` of (M, K) by (K, N): fp32 accumulation, or the accumulator's type."""
    if a.rank != 2 or b.rank != 2:
        raise TypeRuleError(
            f"tl.dot needs two 2-D tiles, got shapes {list(a.shape)} and {list(b.shape)}"
        )
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise TypeRuleError(
            f"tl.dot shapes do not match: {list(a.shape)} @ {list(b.shape)} "
            f"(the inner dimensions {k} and {k2} must be equal)"
        )
    if not (a.element.is_float or a.element.is_int) or a.element.is_pointer:
        raise TypeRuleError(f"tl.dot needs number tiles, got {a.element}")
    result_element = f64 if (a.element == f64 and b.element == f64) else f32
    if acc is not None:
        if acc.shape != (m, n):
            raise TypeRuleError(
                f"tl.dot accumulator has shape {list(acc.shape)}, expected {[m, n]}"
            )
        result_element = acc.element
    return TileType((m, n), result_element)
