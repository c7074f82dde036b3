"""The typing rules of Tile IR, shared by the front end (to type ops as it builds them and report
errors at the right source line) and by ``passes.infer_shapes`` (to make the rules explicit).

Rules, as in Triton (``triton/language/semantic.py``, ``computation_type_impl``):

* shapes broadcast like numpy: align on the right, a dimension of 1 (or a missing one) stretches;
* element types promote (:func:`computation_type`): a Python number written in the kernel (a
  *literal*) of the same or a lower kind (bool < integer < float) than the tile it meets takes the
  tile's type (``x16 * 2.0`` stays f16); otherwise f64 beats f32 beats f16 beats bf16 (f16 with
  bf16 gives f16; bf16 with anything else gives f32), floats beat integers, and integers follow
  C's usual conversions (the wider wins; with equal widths, unsigned wins);
* ``/`` and ``%`` never compute in f16 or bf16 (PTX has no such instructions): they use f32;
  ``/`` of two integers gives f32; ``//`` and ``%`` need integers of one signedness;
* a pointer plus an integer is pointer arithmetic (``tile.addptr``);
* comparisons give ``i1``.
"""

from __future__ import annotations

from .types import (
    ElementType,
    PointerType,
    ScalarType,
    TileType,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i32,
    i64,
    u32,
    u64,
)

DIV_OR_MOD_OPS = ("tile.div", "tile.floordiv", "tile.mod")


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


def _kind_rank(e: ScalarType) -> int:
    return 0 if e.is_bool else (2 if e.is_float else 1)


def literal_element(x) -> ScalarType:
    """The type Triton gives a Python number on its own: bool -> i1, int -> i32 (u32, i64, u64
    when it does not fit), float -> f32."""
    if isinstance(x, bool):
        return i1
    if isinstance(x, int):
        if -(2**31) <= x < 2**31:
            return i32
        if 2**31 <= x < 2**32:
            return u32
        if -(2**63) <= x < 2**63:
            return i64
        return u64
    return f32


def integer_promote(a: ScalarType, b: ScalarType) -> ScalarType:
    """C's usual arithmetic conversions for two integer types."""
    if a.is_signed == b.is_signed:
        return a if a.bits > b.bits else b
    if not a.is_signed:
        return a if a.bits >= b.bits else b
    return b if b.bits >= a.bits else a


def computation_type(a: ElementType, a_is_literal: bool, b: ElementType, b_is_literal: bool,
                     div_or_mod: bool = False) -> ScalarType:
    """The element type a binary operation computes in (Triton's ``computation_type_impl``)."""
    if isinstance(a, PointerType) or isinstance(b, PointerType):
        raise TypeRuleError(f"cannot combine {a} and {b} in arithmetic")
    if a_is_literal != b_is_literal:
        literal, tile = (a, b) if a_is_literal else (b, a)
        if _kind_rank(literal) <= _kind_rank(tile):
            if div_or_mod and tile in (f16, bf16):
                return f32
            return tile
    if f64 in (a, b):
        return f64
    if f32 in (a, b):
        return f32
    if f16 in (a, b):
        return f32 if div_or_mod else f16
    if a == bf16 and b == bf16:
        return f32 if div_or_mod else bf16
    if bf16 in (a, b):
        return f32
    if div_or_mod and a.is_signed != b.is_signed and not (a.is_bool or b.is_bool):
        raise TypeRuleError(f"cannot use /, // or % with {a} and {b}: they have different "
                            "signedness; cast one of them first")
    return integer_promote(a, b)


def promote_elements(a: ElementType, b: ElementType, op_name: str = "") -> ElementType:
    """The element type an op named ``op_name`` computes in for two tiles (no literals)."""
    if a == b and not (op_name in DIV_OR_MOD_OPS and a in (f16, bf16)):
        element = a
    else:
        element = computation_type(a, False, b, False, op_name in DIV_OR_MOD_OPS)
    if op_name == "tile.div" and not element.is_float:
        element = f32  # integer / integer is a float division, as in Python
    return element


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
