"""Axis-info analysis: what is known about the *values* of integer and pointer tiles.

Input: Tile IR after ``infer_shapes`` (explicit splats and broadcasts), with ``fn.arg_attrs``
saying which pointer and integer arguments the runtime found divisible by 16.
Output: nothing is rewritten; the result is a map from each value to an :class:`AxisInfo`.

Idea (as Triton's AxisInfo): to load 4 floats with one 128-bit instruction, the compiler must know
at compile time that the 4 addresses a thread touches are *consecutive* and that the first is
*aligned* to 16 bytes; to keep a masked access vectorised, that the mask is *the same* over those
4 elements. Three facts per dimension ``d`` of a tile, all powers of two, answer that:

* ``contiguity[d]``: values come in runs of this length along ``d`` that increase by 1 (for
  pointers: by one element);
* ``divisibility[d]``: the first value of each such run is a multiple of this (for pointers: in
  bytes); with contiguity 1 every value is;
* ``constancy[d]``: values come in runs of this length along ``d`` that are all equal.

They start from what specialisation tells (a pointer argument divisible by 16; ``tl.arange(0,
1024)`` is one run of 1024 starting at 0) and flow through arithmetic with simple rules (a
contiguous run plus a constant is a contiguous run; ``offsets < n`` is constant over aligned
windows when ``n`` is a multiple of 16...). Unknown values get the safe answer 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...ir.ops import Function, Op, Value

MAX_DIVISIBILITY = 1 << 30  # what we say about 0, which every power of two divides


@dataclass(frozen=True)
class AxisInfo:
    """Facts about one value; per-dimension tuples are empty for scalars, which use
    ``scalar_divisibility``."""

    contiguity: tuple[int, ...]
    divisibility: tuple[int, ...]
    constancy: tuple[int, ...]
    scalar_divisibility: int = 1

    @property
    def rank(self) -> int:
        return len(self.contiguity)

    def element_divisibility(self) -> int:
        """A power of two that divides *every* value (not only the first of each run)."""
        if self.rank == 0:
            return self.scalar_divisibility
        return min(div if contig == 1 else 1
                   for div, contig in zip(self.divisibility, self.contiguity, strict=False))

    def __str__(self) -> str:
        if self.rank == 0:
            return f"{{divisibility = {self.scalar_divisibility}}}"
        return (f"{{contiguity = {list(self.contiguity)}, divisibility = {list(self.divisibility)}"
                f", constancy = {list(self.constancy)}}}")


def largest_power_of_two_dividing(value: int) -> int:
    """The largest power of two that divides ``value`` (capped; 0 gives the cap)."""
    if value == 0:
        return MAX_DIVISIBILITY
    return min(value & -value, MAX_DIVISIBILITY)


def unknown(shape: tuple[int, ...]) -> AxisInfo:
    """Nothing known: runs of length 1, divisible by 1."""
    ones = (1,) * len(shape)
    return AxisInfo(ones, ones, ones)


def _scalar(divisibility: int) -> AxisInfo:
    return AxisInfo((), (), (), min(divisibility, MAX_DIVISIBILITY))


def _elementwise_divisibility(a: AxisInfo, b: AxisInfo, d: int, contiguous: bool) -> int:
    if contiguous:  # one side is a run, the other constant over it: the run starts stay aligned
        return min(a.divisibility[d], b.divisibility[d])
    ea = a.divisibility[d] if a.contiguity[d] == 1 else 1
    eb = b.divisibility[d] if b.contiguity[d] == 1 else 1
    return min(ea, eb)


def _add_like(a: AxisInfo, b: AxisInfo, scale_b: int = 1, subtract: bool = False) -> AxisInfo:
    """``a + b * scale_b`` (``scale_b`` is the element size of a pointer offset, in bytes)."""
    if a.rank == 0:
        div = min(a.scalar_divisibility, b.scalar_divisibility * scale_b)
        return _scalar(div)
    contiguity, divisibility, constancy = [], [], []
    for d in range(a.rank):
        runs = min(a.contiguity[d], b.constancy[d])
        if not subtract:
            runs = max(runs, min(b.contiguity[d], a.constancy[d]) if scale_b == 1 else 1)
        contiguity.append(runs)
        b_scaled = AxisInfo(b.contiguity, tuple(x * scale_b for x in b.divisibility), b.constancy)
        divisibility.append(min(MAX_DIVISIBILITY,
                                _elementwise_divisibility(a, b_scaled, d, runs > 1)))
        constancy.append(min(a.constancy[d], b.constancy[d]))
    return AxisInfo(tuple(contiguity), tuple(divisibility), tuple(constancy))


def _addptr(p: AxisInfo, o: AxisInfo, element_bytes: int) -> AxisInfo:
    if p.rank == 0:
        return _scalar(min(p.scalar_divisibility, o.scalar_divisibility * element_bytes))
    contiguity, divisibility, constancy = [], [], []
    for d in range(p.rank):
        # The pointer moves by one element per step when the offsets are a run over a constant
        # pointer (the usual `base + offsets`), or the pointers are a run and the offsets are
        # constant (`(base + offsets) + shift`).
        runs = max(min(o.contiguity[d], p.constancy[d]), min(p.contiguity[d], o.constancy[d]))
        contiguity.append(runs)
        # Divisibility (in bytes) of the first address of each run: a sum is divisible by what
        # divides both terms.
        div = min(p.divisibility[d], o.divisibility[d] * element_bytes)
        divisibility.append(min(div, MAX_DIVISIBILITY))
        constancy.append(min(p.constancy[d], o.constancy[d]))
    return AxisInfo(tuple(contiguity), tuple(divisibility), tuple(constancy))


def _multiply(a: AxisInfo, b: AxisInfo) -> AxisInfo:
    if a.rank == 0:
        return _scalar(a.scalar_divisibility * b.scalar_divisibility)
    div = min(MAX_DIVISIBILITY, a.element_divisibility() * b.element_divisibility())
    return AxisInfo((1,) * a.rank, (div,) * a.rank,
                    tuple(min(x, y) for x, y in zip(a.constancy, b.constancy, strict=False)))


def _modulo(a: AxisInfo, n: AxisInfo, shape: tuple[int, ...]) -> AxisInfo:
    """``a % n`` with ``n`` the same across the tile (offsets wrapped around, as lesson 3's
    ``(pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N``): a run of ``a`` cut into aligned pieces
    of ``L`` = the largest power of two dividing ``n`` (and no longer than the run) contains no
    multiple of ``n`` past its start, so each piece stays a run. As Triton, this assumes the
    values are not negative (C's ``%`` of a negative value keeps its sign)."""
    if a.rank == 0:
        return _scalar(min(a.scalar_divisibility, n.element_divisibility()))
    div_n = n.element_divisibility()
    contiguity, divisibility = [], []
    for d in range(a.rank):
        uniform = n.rank == 0 or n.constancy[d] >= shape[d]
        piece = min(a.contiguity[d], div_n, a.divisibility[d]) if uniform else 1
        contiguity.append(piece)
        every = a.divisibility[d] if a.contiguity[d] == 1 else 1  # divides every value
        divisibility.append(piece if piece > 1 else min(every, div_n))
    return AxisInfo(tuple(contiguity), tuple(divisibility), a.constancy)


def _compare(a: AxisInfo, b: AxisInfo, ordered: bool) -> AxisInfo:
    """Comparisons are constant where both sides are, and (for <, <=, >, >=) over aligned
    windows of a run compared with a constant multiple of the window size."""
    if a.rank == 0:
        return _scalar(1)
    constancy = []
    for d in range(a.rank):
        runs = min(a.constancy[d], b.constancy[d])
        if ordered:
            window_a = min(a.contiguity[d], a.divisibility[d], b.constancy[d],
                           b.divisibility[d] if b.contiguity[d] == 1 else 1)
            window_b = min(b.contiguity[d], b.divisibility[d], a.constancy[d],
                           a.divisibility[d] if a.contiguity[d] == 1 else 1)
            runs = max(runs, window_a, window_b)
        constancy.append(runs)
    ones = (1,) * a.rank
    return AxisInfo(ones, ones, tuple(constancy))


def _constancy_only(*infos: AxisInfo) -> AxisInfo:
    rank = infos[0].rank
    if rank == 0:
        return _scalar(1)
    constancy = tuple(min(info.constancy[d] for info in infos) for d in range(rank))
    return AxisInfo((1,) * rank, (1,) * rank, constancy)


# Exercise hook: transfer functions a learner may replace (``mini_compiler.hooks.override(
# axis_info={"tile.mul": rule})``). A rule takes the operands' AxisInfo and returns the result's.
RULES: dict[str, Callable[..., AxisInfo]] = {"tile.mul": _multiply}
DEFAULT_RULES = dict(RULES)


class _Analysis:
    def __init__(self, fn: Function):
        self.info: dict[Value, AxisInfo] = {}
        for arg, attrs in zip(fn.args, fn.arg_attrs, strict=False):
            self.info[arg] = _scalar(16 if attrs.get("divisible_by_16") else 1)

    def of(self, value: Value) -> AxisInfo:
        return self.info.get(value) or (unknown(value.type.shape) if value.type.shape
                                        else _scalar(1))

    def visit(self, op: Op) -> None:
        if not op.results:
            return
        result = op.results[0]
        shape = result.type.shape
        operands = [self.of(v) for v in op.operands]
        name = op.name
        if name == "tile.constant":
            value = op.attrs.get("value")
            is_int = isinstance(value, int) and not isinstance(value, bool)
            info = _scalar(largest_power_of_two_dividing(value) if is_int else 1)
        elif name == "tile.arange":
            start, end = op.attrs["start"], op.attrs["end"]
            info = AxisInfo((end - start,), (largest_power_of_two_dividing(start),), (1,))
        elif name in ("tile.splat", "tile.full"):
            div = operands[0].element_divisibility() if operands else (
                largest_power_of_two_dividing(op.attrs["value"])
                if isinstance(op.attrs.get("value"), int) else 1)
            info = AxisInfo((1,) * len(shape), (div,) * len(shape), tuple(shape))
        elif name == "tile.expand_dims":
            source = operands[0]
            axis = op.attrs["axis"]
            div = source.element_divisibility()

            def insert(values: tuple[int, ...], item: int) -> tuple[int, ...]:
                return values[:axis] + (item,) + values[axis:]

            info = AxisInfo(insert(source.contiguity, 1), insert(source.divisibility, div),
                            insert(source.constancy, 1))
        elif name == "tile.broadcast":
            source = operands[0]
            old_shape = op.operands[0].type.shape
            contiguity, constancy = list(source.contiguity), list(source.constancy)
            for d, (old, new) in enumerate(zip(old_shape, shape, strict=False)):
                if old == 1 and new != 1:
                    contiguity[d], constancy[d] = 1, new
            info = AxisInfo(tuple(contiguity), source.divisibility, tuple(constancy))
        elif name == "tile.add":
            info = _add_like(operands[0], operands[1])
        elif name == "tile.sub":
            info = _add_like(operands[0], operands[1], subtract=True)
        elif name == "tile.mul":
            info = RULES["tile.mul"](operands[0], operands[1])
        elif name == "tile.mod" and result.type.element.is_int:
            info = _modulo(operands[0], operands[1], shape)
        elif name == "tile.addptr":
            element_bytes = op.operands[0].type.element.pointee.size_bytes
            info = _addptr(operands[0], operands[1], element_bytes)
        elif name in ("tile.lt", "tile.le", "tile.gt", "tile.ge"):
            info = _compare(operands[0], operands[1], ordered=True)
        elif name in ("tile.eq", "tile.ne"):
            info = _compare(operands[0], operands[1], ordered=False)
        elif name in ("tile.and", "tile.or", "tile.xor", "tile.where", "tile.not"):
            info = _constancy_only(*operands)
        elif name == "tile.cast" and _widens_an_integer(op):
            # i32 -> i64 (``.to(tl.int64)`` before an offset is scaled): every value is kept,
            # so runs, alignment and constancy are those of the operand
            info = operands[0]
        else:
            info = unknown(shape) if shape else _scalar(1)
        self.info[result] = info


def _widens_an_integer(op: Op) -> bool:
    source, target = op.operands[0].type.element, op.result.type.element
    return (source.is_int and target.is_int and not source.is_bool and not target.is_bool
            and target.bits >= source.bits)


def meet(a: AxisInfo, b: AxisInfo) -> AxisInfo:
    """What holds of a value that is sometimes ``a``'s and sometimes ``b``'s (a loop-carried
    value: its initial value, or what the previous iteration yielded)."""
    if a.rank == 0 or a.rank != b.rank:
        return _scalar(min(a.element_divisibility(), b.element_divisibility()))
    contiguity, divisibility = [], []
    for d in range(a.rank):
        contiguity.append(min(a.contiguity[d], b.contiguity[d]))
        # run starts are known to be aligned only where both sides have the same runs
        same_runs = a.contiguity[d] == b.contiguity[d]
        divisibility.append(min(a.divisibility[d], b.divisibility[d]) if same_runs else 1)
    constancy = tuple(min(x, y) for x, y in zip(a.constancy, b.constancy, strict=True))
    return AxisInfo(tuple(contiguity), tuple(divisibility), constancy)


MAX_LOOP_VISITS = 8


def _visit_block(analysis: _Analysis, block) -> None:
    for op in block.ops:
        if op.name == "tile.for":
            _visit_for(analysis, op)
            continue
        analysis.visit(op)
        for region in op.regions:
            _visit_block(analysis, region)


def _visit_for(analysis: _Analysis, op: Op) -> None:
    """A loop-carried value is known by what holds of its initial value *and* of every value
    the body yields: start from the initial value's facts, analyse the body, weaken them by
    what the body yields, and repeat until nothing changes (facts only weaken, so this ends)."""
    body = op.regions[0]
    inits = [analysis.of(v) for v in op.operands[3:]]
    carried = list(inits)
    for _ in range(MAX_LOOP_VISITS):
        for arg, info in zip(body.args[1:], carried, strict=False):
            analysis.info[arg] = info
        _visit_block(analysis, body)
        yielded = [analysis.of(v) for v in body.ops[-1].operands]
        weakened = [meet(c, y) for c, y in zip(carried, yielded, strict=True)]
        if weakened == carried:
            break
        carried = weakened
    else:  # pragma: no cover - the lattice is shallow; give up safely if it ever is not
        carried = [unknown(v.type.shape) if v.type.shape else _scalar(1)
                   for v in op.operands[3:]]
        for arg, info in zip(body.args[1:], carried, strict=False):
            analysis.info[arg] = info
        _visit_block(analysis, body)
    for result, info in zip(op.results, carried, strict=False):
        analysis.info[result] = info


def analyse_axis_info(fn: Function) -> dict[Value, AxisInfo]:
    """The :class:`AxisInfo` of every value of ``fn`` (missing entries: nothing known)."""
    analysis = _Analysis(fn)
    _visit_block(analysis, fn.body)
    return analysis.info
