"""Integer arithmetic on LLVM values written with Python's operators.

The tensor-core layouts (``passes/gpu/mma_layouts.py``) say which lane holds which element, and
the swizzle says where an element lies in shared memory, as plain Python functions of integers:
``lane >> 2``, ``row * 64 + (chunk ^ row % 8) * 8``. Called with :class:`IRInt` values, the very
same functions emit the LLVM instructions that compute those numbers in each thread; called
with ints, they compute them in Python (for the interpreter, the checks and the pictures). One
definition, so what the pictures show is what the GPU code does.

All values are non-negative ``i32`` (coordinates and offsets): ``//`` and ``%`` by a power of
two become shifts and masks.
"""

from __future__ import annotations

from llvmlite import ir

I32 = ir.IntType(32)


class IRInt:
    """An ``i32`` LLVM value that Python operators extend with instructions at ``builder``."""

    def __init__(self, builder: ir.IRBuilder, value: ir.Value):
        self.builder = builder
        self.value = value

    def __bool__(self):
        raise TypeError("a value known only when the kernel runs has no truth value at compile "
                        "time: write the rule with arithmetic and bit operators, not `if`, "
                        "`and`/`or`, min() or max()")

    def _other(self, other) -> ir.Value:
        return other.value if isinstance(other, IRInt) else ir.Constant(I32, int(other))

    def _make(self, value: ir.Value) -> IRInt:
        return IRInt(self.builder, value)

    def __add__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._make(self.builder.add(self.value, self._other(other)))

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._make(self.builder.sub(self.value, self._other(other)))

    def __rsub__(self, other):
        return self._make(self.builder.sub(self._other(other), self.value))

    def __mul__(self, other):
        if isinstance(other, int):
            if other == 1:
                return self
            if other == 0:
                return 0
            if other & (other - 1) == 0:
                return self << other.bit_length() - 1
        return self._make(self.builder.mul(self.value, self._other(other)))

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, int) and other & (other - 1) == 0:
            return self >> other.bit_length() - 1
        return self._make(self.builder.udiv(self.value, self._other(other)))

    def __mod__(self, other):
        if isinstance(other, int) and other & (other - 1) == 0:
            return self & (other - 1)
        return self._make(self.builder.urem(self.value, self._other(other)))

    def __and__(self, other):
        if isinstance(other, int) and other == 0:
            return 0
        return self._make(self.builder.and_(self.value, self._other(other)))

    __rand__ = __and__

    def __or__(self, other):
        return self._make(self.builder.or_(self.value, self._other(other)))

    __ror__ = __or__

    def __xor__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._make(self.builder.xor(self.value, self._other(other)))

    __rxor__ = __xor__

    def __rshift__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._make(self.builder.lshr(self.value, self._other(other)))

    def __lshift__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._make(self.builder.shl(self.value, self._other(other)))


def as_value(x) -> ir.Value:
    """An :class:`IRInt` or a Python int as an ``i32`` LLVM value."""
    return x.value if isinstance(x, IRInt) else ir.Constant(I32, int(x))
