"""Types of Tile IR values.

Every value has a :class:`TileType`: a shape and an element type. A shape of ``()`` is a scalar,
so ``i32`` (a program id), ``!ptr<f32>`` (a kernel's pointer argument) and ``tile<64x32xf16>``
(a block of data) are all described the same way. Element types are :class:`ScalarType`
(numbers and booleans) or :class:`PointerType` (an address of a number in memory).

Printed forms (stable; tests compare them)::

    f32              scalar float
    !ptr<f16>        scalar pointer to half floats
    tile<128xi1>     a 1-D tile of booleans (a mask)
    tile<64x32x!ptr<f32>>   a 2-D tile of pointers
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScalarType:
    """A number type: ``kind`` is ``"float"``, ``"int"`` (signed), ``"uint"`` (unsigned) or
    ``"bool"``, ``bits`` its width."""

    name: str
    kind: str
    bits: int

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        # Booleans are 1-bit integers, as in LLVM, so bit operations work on masks too.
        return self.kind in ("int", "uint", "bool")

    @property
    def is_signed(self) -> bool:
        """Signed integers compare, divide, widen and convert to float as signed numbers;
        unsigned ones and booleans as unsigned (``zext``, ``udiv``, ``icmp ult``)."""
        return self.kind == "int"

    @property
    def is_unsigned(self) -> bool:
        return self.kind == "uint"

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_pointer(self) -> bool:
        return False

    @property
    def size_bytes(self) -> int:
        return max(1, self.bits // 8)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class PointerType:
    """The address of an element of type ``pointee`` (pointer arithmetic counts elements)."""

    pointee: ScalarType

    kind = "pointer"
    bits = 64
    is_float = False
    is_int = False
    is_bool = False
    is_signed = False
    is_unsigned = False
    is_pointer = True

    @property
    def name(self) -> str:
        return f"!ptr<{self.pointee}>"

    def __str__(self) -> str:
        return self.name


ElementType = ScalarType | PointerType

i1 = ScalarType("i1", "bool", 1)
i8 = ScalarType("i8", "int", 8)
i16 = ScalarType("i16", "int", 16)
i32 = ScalarType("i32", "int", 32)
i64 = ScalarType("i64", "int", 64)
u8 = ScalarType("u8", "uint", 8)
u16 = ScalarType("u16", "uint", 16)
u32 = ScalarType("u32", "uint", 32)
u64 = ScalarType("u64", "uint", 64)
f16 = ScalarType("f16", "float", 16)
bf16 = ScalarType("bf16", "float", 16)
f32 = ScalarType("f32", "float", 32)
f64 = ScalarType("f64", "float", 64)

SCALAR_TYPES: dict[str, ScalarType] = {
    t.name: t for t in (i1, i8, i16, i32, i64, u8, u16, u32, u64, f16, bf16, f32, f64)
}


@dataclass(frozen=True)
class TileType:
    """The type of a value: ``shape == ()`` is a scalar, otherwise a tile of ``element``."""

    shape: tuple[int, ...]
    element: ElementType

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_shape(self, shape: tuple[int, ...]) -> TileType:
        return TileType(tuple(shape), self.element)

    def with_element(self, element: ElementType) -> TileType:
        return TileType(self.shape, element)

    def __str__(self) -> str:
        if self.is_scalar:
            return str(self.element)
        dims = "x".join(str(d) for d in self.shape)
        return f"tile<{dims}x{self.element}>"


def scalar(element: ElementType) -> TileType:
    """The scalar type of ``element``."""
    return TileType((), element)
