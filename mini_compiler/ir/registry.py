"""The op registry: one record per Tile IR op, from which every per-op table is derived.

An :class:`OpDef` says what an op takes and gives (for people: the IR reference is printed from
these records by :func:`reference`), which *family* it belongs to (the passes treat a family
alike: ``infer_shapes`` makes the operands of every ``binary`` op one type), whether it is
*pure* (no memory, no effect: it may be folded, deduplicated and deleted), what it computes
(``semantics``, the reference interpreter's numpy meaning) and how it folds when its operands
are constants (``fold``, on Python numbers; ``None`` leaves it alone).

Derived here: :data:`ELEMENTWISE_BINARY`, :data:`COMPARISONS`, :data:`ELEMENTWISE_UNARY`,
:data:`PURE_OPS`, :data:`SIDE_EFFECT_OPS`; the interpreter's ``SEMANTICS`` and the folding pass's
``FOLDERS`` are built from :data:`OPS`. How an op becomes LLVM IR is the back ends' business
(``backends/llvm_core.py`` for elementwise ops, shared by both); ``tests/compiler/test_registry.py``
checks that every op is lowered by the CPU back end and lowered or refused with a message by the
GPU back end. GPU-only ops (layout conversions, barriers) are declared here too, with their
interpreter meaning, so the interpreter can run the IR after every GPU pass.

Adding an op: see "Adding an op" in ``mini_compiler/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import semantics as S


@dataclass(frozen=True)
class OpDef:
    name: str
    family: str  # binary comparison unary constant shape memory reduction control gpu
    operands: str  # as the reference prints them
    result: str
    doc: str
    pure: bool = True
    semantics: Callable | None = None  # (interp, op, values) -> numpy array
    fold: Callable | None = None  # (*constants) -> value | None


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    """Add (or replace) an op's record. The passes, the interpreter and the folder look ops up
    in :data:`OPS` when they run, so a registered op is seen at once; the tuples below are
    snapshots taken at import, for reading."""
    OPS[op.name] = op
    return op


def _binary(name, symbol, numpy_fn, fold, doc, family="binary", result="type(a)"):
    register(OpDef(name, family, "a, b", result, doc, semantics=S._binary(numpy_fn), fold=fold))


for _name, _np, _fold, _doc in (
    ("add", np.add, lambda a, b: a + b, "a + b"),
    ("sub", np.subtract, lambda a, b: a - b, "a - b"),
    ("mul", np.multiply, lambda a, b: a * b, "a * b"),
    ("div", np.divide, lambda a, b: a / b if b != 0 else None,
     "a / b, a float division (integers divide as f32)"),
    ("floordiv", S._c_floordiv, lambda a, b: int(a / b) if b != 0 else None,
     "a // b on integers, truncating toward zero (C, PTX and Triton)"),
    ("mod", S._c_mod, lambda a, b: a - int(a / b) * b if b != 0 else None,
     "a % b with the dividend's sign (C's % and fmod)"),
    ("and", np.bitwise_and, lambda a, b: a & b, "bitwise and (logical on i1)"),
    ("or", np.bitwise_or, lambda a, b: a | b, "bitwise or"),
    ("xor", np.bitwise_xor, lambda a, b: a ^ b, "bitwise exclusive or"),
    ("maximum", np.maximum, max, "the larger of a and b"),
    ("minimum", np.minimum, min, "the smaller of a and b"),
):
    _binary(f"tile.{_name}", _name, _np, _fold, _doc)

for _name, _np, _fold in (
    ("lt", np.less, lambda a, b: a < b), ("le", np.less_equal, lambda a, b: a <= b),
    ("gt", np.greater, lambda a, b: a > b), ("ge", np.greater_equal, lambda a, b: a >= b),
    ("eq", np.equal, lambda a, b: a == b), ("ne", np.not_equal, lambda a, b: a != b),
):
    _binary(f"tile.{_name}", _name, _np, _fold, f"a {_name} b, elementwise",
            family="comparison", result="a's shape of i1")


def _float_fold(fn):
    def fold(a):
        try:
            return fn(a)
        except (ValueError, OverflowError):
            return None
    return fold


for _name, _sem, _fold, _doc in (
    ("neg", S._unary(np.negative), lambda a: -a, "-x"),
    ("not", S._unary(np.invert), None, "~x (bitwise; logical on i1)"),
    ("abs", S._unary(np.abs), abs, "|x|"),
    ("exp", S._float_unary(np.exp), _float_fold(math.exp), "e to the x"),
    ("exp2", S._float_unary(np.exp2), _float_fold(lambda a: 2.0 ** a), "2 to the x"),
    ("log", S._float_unary(np.log), None, "natural logarithm"),
    ("log2", S._float_unary(np.log2), None, "base-2 logarithm"),
    ("sqrt", S._float_unary(np.sqrt), lambda a: math.sqrt(a) if a >= 0 else None,
     "square root"),
    ("sin", S._float_unary(np.sin), None, "sine"),
    ("cos", S._float_unary(np.cos), None, "cosine"),
    ("floor", S._float_unary(np.floor), None, "largest integer value not above x"),
    ("ceil", S._float_unary(np.ceil), None, "smallest integer value not below x"),
):
    register(OpDef(f"tile.{_name}", "unary", "x", "type(x) (floats for the math functions)",
                   _doc, semantics=_sem, fold=_fold))

for _op in (
    OpDef("tile.constant", "constant", "{value}", "scalar S", "a compile-time number",
          semantics=S._constant),
    OpDef("tile.program_id", "constant", "{axis: 0|1|2}", "i32",
          "this program's index along a grid axis", semantics=S._program_id),
    OpDef("tile.num_programs", "constant", "{axis: 0|1|2}", "i32",
          "the grid's size along an axis", semantics=S._num_programs),
    OpDef("tile.arange", "constant", "{start, end} (end - start a power of 2)",
          "tile<(end-start) x i32>", "start, start + 1, ..., end - 1", semantics=S._arange),
    OpDef("tile.full", "constant", "{value}", "tile<shape x S>", "a tile of one value",
          semantics=S._full),
    OpDef("tile.splat", "shape", "scalar x", "tile<shape x type(x)>", "x in every element",
          semantics=S._broadcast),
    OpDef("tile.broadcast", "shape", "tile x", "tile<shape x E>",
          "dimensions of size 1 stretched", semantics=S._broadcast),
    OpDef("tile.expand_dims", "shape", "x {axis}", "x's shape with a 1 inserted at axis",
          "a new dimension of size 1", semantics=S._expand_dims),
    OpDef("tile.trans", "shape", "2-D tile x", "the transposed tile", "rows become columns",
          semantics=S._trans),
    OpDef("tile.reshape", "shape", "x", "x's elements (row-major) in another shape",
          "tl.reshape / tl.view", semantics=S._reshape),
    OpDef("tile.cast", "shape", "x", "x's shape with another element type",
          "a value conversion (x.to(dtype)): floats to integers truncate", semantics=S._cast,
          fold=lambda a: a),
    OpDef("tile.bitcast", "shape", "x", "x's shape, an element type of the same width",
          "the same bits read as another type (x.to(dtype, bitcast=True))",
          semantics=S._bitcast),
    OpDef("tile.addptr", "shape", "pointers p, integer offsets o", "p's type",
          "p moved by o elements", semantics=S._addptr),
    OpDef("tile.where", "shape", "condition c (i1), a, b", "type(a)",
          "a where c holds, else b", semantics=S._where),
    OpDef("tile.reduce", "reduction", "x {axis, kind: sum|max|min}", "x's shape without axis",
          "combine the elements along an axis", semantics=S._reduce),
    OpDef("tile.scan", "reduction", "x {axis, kind: sum, reverse}", "type(x)",
          "running sums along an axis (tl.cumsum)", semantics=S._scan),
    OpDef("tile.dot", "reduction", "a (MxK), b (KxN) [, acc (MxN)]",
          "tile<MxN x f32> (or acc's type)", "matrix product", semantics=S._dot),
    OpDef("tile.load", "memory", "pointers p [, mask m [, other o]]",
          "tile<shape x pointee> (or scalar)", "read memory where the mask holds",
          pure=False),
    OpDef("tile.store", "memory", "pointers p, value v [, mask m]", "none",
          "write memory where the mask holds", pure=False),
    OpDef("tile.atomic_add", "memory", "pointers p, values v [, mask m]", "the old values",
          "add to memory atomically (tl.atomic_add)", pure=False),
    OpDef("tile.debug_barrier", "memory", "", "none",
          "wait for every thread of the program (tl.debug_barrier)", pure=False),
    OpDef("tile.for", "control", "lower, upper, step, inits...; region (iv, carried...)",
          "one result per init", "a counted loop (range, either sign of step)", pure=False),
    OpDef("tile.while", "control", "inits...; regions condition, body (carried...)",
          "one result per init", "a loop while the condition region yields true",
          pure=False),
    OpDef("tile.if", "control", "condition (i1 scalar); regions then, else",
          "one result per yielded value", "a runtime branch", pure=False),
    OpDef("tile.yield", "control", "values", "none", "ends a region", pure=False),
    OpDef("gpu.convert_layout", "gpu", "tile x", "type(x), another layout",
          "move a tile between layouts (through shared memory)", semantics=S._convert_layout),
    OpDef("gpu.local_alloc", "gpu", "tile x", "x, kept in shared memory (#shared layout)",
          "write a tile into a shared-memory buffer (a tl.dot operand)", pure=False,
          semantics=S._local_alloc),
    OpDef("gpu.local_load", "gpu", "shared tile x", "type(x) in a #dot_op layout",
          "read a shared buffer into tensor-core fragments (ldmatrix)", pure=False,
          semantics=S._local_load),
    OpDef("gpu.barrier", "gpu", "", "none", "bar.sync: every thread of the block waits",
          pure=False),
    OpDef("gpu.alloc_ring", "gpu", "{num_stages}", "tile<num_stages x M x K>, a #shared ring",
          "num_stages shared-memory slots for one tl.dot operand", pure=False,
          semantics=S._alloc_ring),
    OpDef("gpu.async_copy", "gpu", "ring r, slot s (i32), pointers p, mask m", "none",
          "cp.async: global memory straight into slot s (zeros where m is off)", pure=False,
          semantics=S._async_copy),
    OpDef("gpu.async_commit", "gpu", "", "none",
          "cp.async.commit_group: the copies issued since form one group", pure=False,
          semantics=S._nothing),
    OpDef("gpu.async_wait", "gpu", "{pending}", "none",
          "cp.async.wait_group pending, then bar.sync: all but the newest groups have landed",
          pure=False, semantics=S._nothing),
    OpDef("gpu.ring_load", "gpu", "ring r, slot s (i32)", "tile<M x K> in a #dot_op layout",
          "read slot s into tensor-core fragments (ldmatrix)", pure=False,
          semantics=S._ring_load),
):
    register(_op)


def family_of(name: str) -> str | None:
    op = OPS.get(name)
    return op.family if op is not None else None


def is_pure(name: str) -> bool:
    op = OPS.get(name)
    return op is not None and op.pure


def names_in(family: str) -> tuple[str, ...]:
    return tuple(name for name, op in OPS.items() if op.family == family)


ELEMENTWISE_BINARY = names_in("binary")
COMPARISONS = names_in("comparison")
ELEMENTWISE_UNARY = names_in("unary")
PURE_OPS = frozenset(name for name, op in OPS.items() if op.pure)
SIDE_EFFECT_OPS = frozenset(name for name, op in OPS.items() if not op.pure)


def reference() -> str:
    """The IR reference as a Markdown table, from the records (``docs: IR_REFERENCE.md``)."""
    rows = ["| op | family | operands {attributes} | result | meaning |",
            "| --- | --- | --- | --- | --- |"]
    for op in OPS.values():
        rows.append(f"| `{op.name}` | {op.family}{'' if op.pure else ' (effect)'} | "
                    f"{op.operands} | {op.result} | {op.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m mini_compiler.ir.registry > mini_compiler/IR_REFERENCE.md
    print("# Tile IR reference\n\nGenerated from `mini_compiler/ir/registry.py` "
          "(`python -m mini_compiler.ir.registry`).\n")
    print(reference(), end="")
