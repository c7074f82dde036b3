"""What both back ends share on the way to LLVM IR: element types, conversions and the rule that
turns one element of each elementwise op into LLVM instructions.

A *rule* is ``rule(builder, element, *operands) -> llvmlite value``: ``element`` is the Tile IR
element type the op computes in (after ``infer_shapes`` every operand has it), so a rule can pick
signed or unsigned integer instructions. :data:`ELEMENT_RULES` holds the portable rules (plain
LLVM instructions and ``llvm.*`` intrinsics); a back end copies the table and overrides the
entries it does better (the GPU computes ``exp`` with ``ex2.approx``), the way a renderer in a
compiler with several targets overrides a few entries of a shared table.

Registers and memory: booleans are ``i1`` in registers and one byte in memory; bf16 is computed in
``float`` registers and stored as its 16 raw bits (rounded to nearest even); unsigned integers use
the LLVM integer type of their width (LLVM integers carry no sign: the instruction decides).

Two patterns would make LLVM crash or the program trap, and are never emitted:

* ``fptrunc double -> half`` becomes a call to a runtime function that the JIT cannot resolve on
  x86 (the process dies): f64 -> f16 goes through f32 with round-to-odd, which rounds correctly;
* integer division by zero (or of the smallest signed value by -1) traps on x86, and a masked-off
  lane may hold exactly that: the divisor is replaced by 1 in those lanes (the result there is
  undefined in Triton anyway).
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ..ir.types import ElementType, PointerType, ScalarType

I1, I8, I16, I32, I64 = (ir.IntType(b) for b in (1, 8, 16, 32, 64))
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
FLOAT_BITS = {F16: 16, F32: 32, F64: 64}

Rule = Callable[..., ir.Value]


def is_float(value: ir.Value) -> bool:
    """True for half, float and double values (the rest are integers or booleans)."""
    return isinstance(value.type, (ir.HalfType, ir.FloatType, ir.DoubleType))


def register_type(element: ElementType, pointer: ir.Type | None = None) -> ir.Type:
    """The LLVM type an element is computed in (bf16 in ``float``); ``pointer`` for pointers."""
    if isinstance(element, PointerType):
        return pointer if pointer is not None else ir.PointerType()
    if element.is_float:
        return {16: F16, 32: F32, 64: F64}[element.bits] if element.name != "bf16" else F32
    return ir.IntType(element.bits)


def memory_type(element: ScalarType) -> ir.Type:
    """How an element lies in memory: booleans as bytes, bf16 as 16 raw bits."""
    if element.is_bool:
        return I8
    if element.name == "bf16":
        return I16
    return register_type(element)


def constant(element: ElementType, value) -> ir.Constant:
    t = register_type(element)
    if isinstance(t, ir.IntType):
        return ir.Constant(t, int(value) & ((1 << t.width) - 1) if value is not None else 0)
    return ir.Constant(t, float(value))


# ---------------------------------------------------------------------------- bf16 and memory
def bf16_bits(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The 16 bits of the bfloat16 nearest to float ``x`` (round to nearest even)."""
    bits = b.bitcast(x, I32)
    lsb = b.and_(b.lshr(bits, ir.Constant(I32, 16)), ir.Constant(I32, 1))
    rounded = b.add(bits, b.add(ir.Constant(I32, 0x7FFF), lsb))
    quiet_nan = ir.Constant(I32, 0x7FC00000)
    rounded = b.select(b.fcmp_unordered("uno", x, x), quiet_nan, rounded)
    return b.trunc(b.lshr(rounded, ir.Constant(I32, 16)), I16)


def bf16_to_float(b: ir.IRBuilder, bits16: ir.Value) -> ir.Value:
    return b.bitcast(b.shl(b.zext(bits16, I32), ir.Constant(I32, 16)), F32)


def round_to_bf16(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return bf16_to_float(b, bf16_bits(b, x))


def from_memory(b: ir.IRBuilder, raw: ir.Value, element: ScalarType) -> ir.Value:
    """A loaded memory value as a register value."""
    if element.is_bool:
        return b.icmp_unsigned("!=", raw, ir.Constant(raw.type, 0))
    if element.name == "bf16":
        return bf16_to_float(b, raw)
    return raw


def to_memory(b: ir.IRBuilder, value: ir.Value, element: ScalarType) -> ir.Value:
    """A register value as it is stored."""
    if element.is_bool:
        return b.zext(value, I8)
    if element.name == "bf16":
        return bf16_bits(b, value)
    return value


# ---------------------------------------------------------------------------- conversions
def _f64_to_f32_round_to_odd(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """f64 -> f32 rounded toward zero, with the last bit set when inexact ("round to odd"):
    rounding that to f16 afterwards gives the correctly rounded f16 (no double rounding)."""
    nearest = b.fptrunc(x, F32)
    back = b.fpext(nearest, F64)
    fabs = ir.FunctionType(F64, [F64])
    abs_fn = b.module.declare_intrinsic("llvm.fabs", [F64], fabs)
    went_up = b.fcmp_ordered(">", b.call(abs_fn, [back]), b.call(abs_fn, [x]))
    inexact = b.fcmp_ordered("!=", back, x)
    bits = b.bitcast(nearest, I32)
    bits = b.select(went_up, b.sub(bits, ir.Constant(I32, 1)), bits)
    bits = b.select(inexact, b.or_(bits, ir.Constant(I32, 1)), bits)
    return b.bitcast(bits, F32)


def convert(b: ir.IRBuilder, x: ir.Value, source: ScalarType, target: ScalarType) -> ir.Value:
    """Convert a register value from ``source`` to ``target`` (a value conversion, as Triton's
    ``x.to(dtype)``: floats to integers truncate toward zero, integers widen by their sign)."""
    if source == target:
        return x
    to = register_type(target)
    if target.is_bool:
        zero = ir.Constant(x.type, 0)
        return b.fcmp_unordered("!=", x, zero) if is_float(x) else b.icmp_unsigned("!=", x, zero)
    if source.is_float and target.is_float:
        if source.bits == 64 and target.bits == 16:
            x = _f64_to_f32_round_to_odd(b, x)
        if to != x.type:
            x = b.fpext(x, to) if FLOAT_BITS[to] > FLOAT_BITS[x.type] else b.fptrunc(x, to)
        return round_to_bf16(b, x) if target.name == "bf16" else x
    if source.is_float:
        return b.fptoui(x, to) if target.is_unsigned else b.fptosi(x, to)
    if target.is_float:
        if source.bits == 64 and target.bits == 16:  # through f32, as above, for the same reason
            wide = b.uitofp(x, F64) if not source.is_signed else b.sitofp(x, F64)
            return convert(b, wide, _F64, target)
        x = b.sitofp(x, to) if source.is_signed else b.uitofp(x, to)
        return round_to_bf16(b, x) if target.name == "bf16" else x
    if to.width > x.type.width:
        return b.sext(x, to) if source.is_signed else b.zext(x, to)
    return b.trunc(x, to) if to.width < x.type.width else x


_F64 = ScalarType("f64", "float", 64)


def bitcast(b: ir.IRBuilder, x: ir.Value, source: ScalarType, target: ScalarType) -> ir.Value:
    """Reinterpret the bits of ``x`` (same width) as ``target`` (``x.to(t, bitcast=True)``)."""
    if source == target:
        return x
    bits = to_memory(b, x, source) if source.name == "bf16" else x
    if is_float(bits):
        bits = b.bitcast(bits, ir.IntType(source.bits))
    if target.name == "bf16":
        return bf16_to_float(b, bits)
    if target.is_float:
        return b.bitcast(bits, register_type(target))
    return bits


# ---------------------------------------------------------------------------- elementwise rules
def _intrinsic(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    t = args[0].type
    fn = b.module.declare_intrinsic(name, [t], ir.FunctionType(t, [t] * len(args)))
    return b.call(fn, list(args))


def _arith(float_op: str, signed_op: str, unsigned_op: str | None = None):
    def rule(b, element, x, y):
        if element.is_float:
            return getattr(b, float_op)(x, y)
        return getattr(b, signed_op if element.is_signed or unsigned_op is None
                       else unsigned_op)(x, y)
    return rule


def _safe_divisor(b: ir.IRBuilder, element, x: ir.Value, y: ir.Value) -> ir.Value:
    """``y`` with 1 where dividing would trap (by zero; smallest signed value by -1)."""
    one = ir.Constant(y.type, 1)
    bad = b.icmp_unsigned("==", y, ir.Constant(y.type, 0))
    if element.is_signed:
        smallest = ir.Constant(x.type, 1 << (x.type.width - 1))
        overflow = b.and_(b.icmp_signed("==", y, ir.Constant(y.type, -1)),
                          b.icmp_unsigned("==", x, smallest))
        bad = b.or_(bad, overflow)
    return b.select(bad, one, y)


def _divide(float_op: str, signed_op: str, unsigned_op: str):
    def rule(b, element, x, y):
        if element.is_float:
            return getattr(b, float_op)(x, y)
        y = _safe_divisor(b, element, x, y)
        return getattr(b, signed_op if element.is_signed else unsigned_op)(x, y)
    return rule


def _compare(predicate: str):
    def rule(b, element, x, y):
        if element.is_float:
            if predicate == "!=":
                return b.fcmp_unordered(predicate, x, y)
            return b.fcmp_ordered(predicate, x, y)
        if element.is_signed:
            return b.icmp_signed(predicate, x, y)
        return b.icmp_unsigned(predicate, x, y)
    return rule


def _select_by(predicate: str, float_intrinsic: str):
    def rule(b, element, x, y):
        if element.is_float:
            return _intrinsic(b, float_intrinsic, x, y)
        return b.select(_compare(predicate)(b, element, x, y), x, y)
    return rule


def _math(intrinsic: str):
    return lambda b, element, x: _intrinsic(b, intrinsic, x)


def _neg(b, element, x):
    return b.fneg(x) if element.is_float else b.neg(x)


def _abs(b, element, x):
    if element.is_float:
        return _intrinsic(b, "llvm.fabs", x)
    if not element.is_signed:
        return x
    return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.neg(x), x)


ELEMENT_RULES: dict[str, Rule] = {
    "tile.add": _arith("fadd", "add"),
    "tile.sub": _arith("fsub", "sub"),
    "tile.mul": _arith("fmul", "mul"),
    "tile.div": _divide("fdiv", "sdiv", "udiv"),
    "tile.floordiv": _divide("fdiv", "sdiv", "udiv"),  # C semantics: truncate toward zero
    "tile.mod": _divide("frem", "srem", "urem"),  # C fmod for floats: the dividend's sign
    "tile.and": lambda b, e, x, y: b.and_(x, y),
    "tile.or": lambda b, e, x, y: b.or_(x, y),
    "tile.xor": lambda b, e, x, y: b.xor(x, y),
    "tile.maximum": _select_by(">", "llvm.maxnum"),
    "tile.minimum": _select_by("<", "llvm.minnum"),
    "tile.lt": _compare("<"),
    "tile.le": _compare("<="),
    "tile.gt": _compare(">"),
    "tile.ge": _compare(">="),
    "tile.eq": _compare("=="),
    "tile.ne": _compare("!="),
    "tile.neg": _neg,
    "tile.not": lambda b, e, x: b.not_(x),
    "tile.exp": _math("llvm.exp"),
    "tile.exp2": _math("llvm.exp2"),
    "tile.log": _math("llvm.log"),
    "tile.log2": _math("llvm.log2"),
    "tile.sqrt": _math("llvm.sqrt"),
    "tile.sin": _math("llvm.sin"),
    "tile.cos": _math("llvm.cos"),
    "tile.floor": _math("llvm.floor"),
    "tile.ceil": _math("llvm.ceil"),
    "tile.abs": _abs,
}


DEFAULT_ELEMENT_RULES = dict(ELEMENT_RULES)
# Exercise rules installed by ``mini_compiler.hooks.override(lowering=...)``, in the same form
# ``rule(builder, element, *operands)``; both back ends use one in place of their own rule.
LEARNER_RULES: dict[str, Rule] = {}


def rule_for(name: str, target_rules: dict[str, Rule]) -> Rule | None:
    """The rule a back end uses for op ``name``: an installed exercise rule if there is one,
    else the back end's own table ``target_rules`` (a copy of :data:`ELEMENT_RULES` with its
    overrides), else the shared rule (an op added to the shared table later); None if no rule."""
    return LEARNER_RULES.get(name) or target_rules.get(name) or ELEMENT_RULES.get(name)


# ---------------------------------------------------------------------------- reductions
def reduce_identity(kind: str, element: ScalarType):
    """The value a reduction starts from (a Python number for :func:`constant`)."""
    if element.is_float:
        return {"sum": 0.0, "max": float("-inf"), "min": float("inf")}[kind]
    if element.is_signed:
        low, high = -(2 ** (element.bits - 1)), 2 ** (element.bits - 1) - 1
    else:
        low, high = 0, 2 ** element.bits - 1
    return {"sum": 0, "max": low, "min": high}[kind]


# A target's reduction may allow LLVM to reorder it ("fast math"): adding in another order
# (``reassoc``, ``nsz``) lets a loop over a row be split across vector lanes, and ``nnan`` /
# ``ninf`` let a max or min be a plain compare-and-select. The CPU back end asks for this, since
# its reductions are loops LLVM vectorises; the GPU back end fixes the order itself (a tree of
# shuffles, then shared memory), so it uses the ops' own rules.
FAST_MATH_FLAGS = ("reassoc", "nsz", "nnan", "ninf")


def reduce_combine(b: ir.IRBuilder, kind: str, element: ScalarType, acc: ir.Value,
                   x: ir.Value, fast_math: bool = False) -> ir.Value:
    """One step of a ``sum`` / ``max`` / ``min`` reduction: ``acc`` combined with ``x``.

    Without ``fast_math``, the same rule as the ops ``tile.add`` / ``tile.maximum`` /
    ``tile.minimum``. With it, float steps carry :data:`FAST_MATH_FLAGS`, and a max or min is
    ``x if x > acc else acc`` (``<`` for min), which LLVM turns into vector max/min
    instructions."""
    if kind == "sum":
        if element.is_float:
            return b.fadd(acc, x, flags=FAST_MATH_FLAGS if fast_math else ())
        return b.add(acc, x)
    if kind not in ("max", "min"):
        raise ValueError(f"no reduction {kind!r}: it is 'sum', 'max' or 'min'")
    if fast_math:
        predicate = ">" if kind == "max" else "<"
        if element.is_float:
            better = b.fcmp_ordered(predicate, x, acc, flags=FAST_MATH_FLAGS)
        else:
            better = ELEMENT_RULES["tile.gt" if kind == "max" else "tile.lt"](b, element, x, acc)
        return b.select(better, x, acc)
    return ELEMENT_RULES["tile.maximum" if kind == "max" else "tile.minimum"](b, element, acc, x)


def loop_condition(b: ir.IRBuilder, iv: ir.Value, upper: ir.Value, step: ir.Value) -> ir.Value:
    """``range``'s test: ``iv < upper`` for a positive step, ``iv > upper`` for a negative one."""
    if isinstance(step, ir.Constant):
        return b.icmp_signed("<" if step.constant > 0 else ">", iv, upper)
    up = b.icmp_signed("<", iv, upper)
    down = b.icmp_signed(">", iv, upper)
    return b.select(b.icmp_signed(">", step, ir.Constant(step.type, 0)), up, down)


def row_major_strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]
