"""The ``tl`` surface of mini_compiler: the names and meanings of ``triton.language``.

Write kernels with ``import mini_compiler.language as tl`` exactly as with Triton. The functions
here are markers: the front end (``frontend/``) recognises them by name and emits Tile IR;
calling one outside a kernel raises. ``triton.language`` names found in an ``@triton.jit`` kernel's
globals are mapped to the same builtins by name, so both spellings compile identically.
"""

from __future__ import annotations

from .ir import types as ir_types


class constexpr:  # noqa: N801 - the name is Triton's
    """Annotation marking a compile-time parameter (``BLOCK: tl.constexpr``), or a wrapped value."""

    def __init__(self, value=None):
        self.value = value.value if isinstance(value, constexpr) else value

    def __repr__(self) -> str:
        return f"constexpr({self.value!r})"


class dtype:  # noqa: N801 - the name is Triton's
    """An element type, named as Triton names it (``fp32``), wrapping the IR's element type."""

    def __init__(self, name: str, ir_type):
        self.name = name
        self.ir = ir_type

    @property
    def element_ty(self) -> dtype:
        """A pointer type's pointee (``x_ptr.dtype.element_ty``); a number type is its own."""
        if isinstance(self.ir, ir_types.PointerType):
            return from_ir(self.ir.pointee)
        return self

    def is_floating(self) -> bool:
        return bool(self.ir.is_float)

    def is_int(self) -> bool:
        return bool(self.ir.is_int)

    def __eq__(self, other) -> bool:
        return isinstance(other, dtype) and other.ir == self.ir

    def __hash__(self) -> int:
        return hash(self.ir)

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


class pointer_type(dtype):  # noqa: N801 - the name is Triton's
    def __init__(self, element: dtype):
        super().__init__(f"pointer<{element.name}>", ir_types.PointerType(element.ir))


int1 = dtype("int1", ir_types.i1)
int8 = dtype("int8", ir_types.i8)
int16 = dtype("int16", ir_types.i16)
int32 = dtype("int32", ir_types.i32)
int64 = dtype("int64", ir_types.i64)
uint8 = dtype("uint8", ir_types.u8)
uint16 = dtype("uint16", ir_types.u16)
uint32 = dtype("uint32", ir_types.u32)
uint64 = dtype("uint64", ir_types.u64)
float16 = dtype("fp16", ir_types.f16)
bfloat16 = dtype("bf16", ir_types.bf16)
float32 = dtype("fp32", ir_types.f32)
float64 = dtype("fp64", ir_types.f64)

ALL_DTYPES = (int1, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, bfloat16,
              float32, float64)
DTYPES_BY_NAME = {d.name: d for d in ALL_DTYPES}
DTYPES_BY_NAME.update({"fp16": float16, "bf16": bfloat16, "fp32": float32, "fp64": float64})


def from_ir(element) -> dtype:
    if isinstance(element, ir_types.PointerType):
        return pointer_type(from_ir(element.pointee))
    for d in ALL_DTYPES:
        if d.ir == element:
            return d
    raise ValueError(f"no tl dtype for {element}")


# The builtin functions. Each is a marker; its meaning is in frontend/builtins/ (the method
# ``builtin_<name>`` of the family's module).
BUILTINS = (
    "program_id", "num_programs", "arange", "zeros", "full", "load", "store", "where",
    "maximum", "minimum", "exp", "exp2", "log", "log2", "sqrt", "abs", "sin", "cos",
    "sum", "max", "min", "dot", "trans", "cdiv", "cast", "static_assert", "multiple_of",
    "max_contiguous", "range", "static_range", "zeros_like", "full_like",
    "sigmoid", "rsqrt", "erf", "clamp", "floor", "ceil", "argmax", "argmin", "reshape", "view",
    "cumsum", "atomic_add", "broadcast_to", "expand_dims", "debug_barrier",
)


def _marker(name: str):
    def builtin(*args, **kwargs):
        raise RuntimeError(
            f"tl.{name} can only be used inside a kernel decorated with @mini_compiler.jit"
        )

    builtin.__name__ = name
    builtin.__qualname__ = name
    builtin._mini_compiler_builtin = name
    return builtin


for _name in BUILTINS:
    globals()[_name] = _marker(_name)
del _name
