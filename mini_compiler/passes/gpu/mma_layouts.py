"""Layouts for ``tl.dot`` on tensor cores: the accumulator, the operands, and shared memory.

A tensor core instruction is issued by a whole warp. ``mma.sync.aligned.m16n8k16`` multiplies a
16x16 tile of A by a 16x8 tile of B and adds a 16x8 accumulator, and each of the 32 lanes
supplies a fixed part of every operand. With ``g = lane >> 2`` (the lane's *group*, 0..7) and
``t = lane & 3`` (its place in the group, 0..3), the fragment map (PTX ISA, "Matrix fragments
for mma.m16n8k16"; checked numerically on a GPU) is:

* accumulator (16x8, fp32): ``c0, c1`` at row ``g``, columns ``2t, 2t+1``; ``c2, c3`` the same
  columns of row ``g + 8``;
* A (16x16, fp16/bf16, four 32-bit registers of two halves): register ``r`` holds row
  ``g + 8 * (r & 1)``, columns ``2t + 8 * (r >> 1)`` and the next one;
* B (16x8, two registers): register ``r`` holds rows (k) ``2t + 8 * r`` and the next one, of
  column ``g``.

**Accumulator layout** (``#mma``): the warps of a program tile the output in a ``wm x wn`` grid
of 16x8 instruction tiles, repeated over the whole ``BLOCK_M x BLOCK_N`` tile (warp ``w`` is at
row ``w // wn`` and column ``w % wn`` of the grid; repetition ``mr`` of it starts at row
``mr * 16 * wm``). A thread holds four accumulator values per repetition.

**Operand layouts** (``#dot_op<idx, parent>``): what each lane must hold of A (``idx = 0``) and
B (``idx = 1``) for the same warps to multiply. Nothing in global memory is laid out that way,
so operands travel through **shared memory**: written there in the layout they were loaded in,
and read back into fragments with ``ldmatrix``, which gives each lane exactly its part: eight
lanes each point at one 16-byte row of an 8x8 matrix, and every lane receives two elements of
it (``.trans`` gives two elements of a *column*, for an operand whose K dimension is not the
contiguous one).

**Shared layout** (``#shared``): a tile in shared memory, row-major along ``order`` (its first
entry is the contiguous dimension), in 16-byte *chunks* that are **swizzled**: chunk ``c`` of
memory row ``r`` is stored at chunk ``c ^ phase(r)``. Shared memory has 32 banks of 4 bytes;
``ldmatrix`` reads eight 16-byte rows at the same column, and without the swizzle rows 128 bytes
apart would fall in the same banks and be served one after the other (a *bank conflict*). The
xor spreads the eight rows over all eight 16-byte slots of a 128-byte line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WARP_SIZE = 32
INSTR_M, INSTR_N, INSTR_K = 16, 8, 16  # mma.sync.aligned.m16n8k16
CHUNK_BYTES = 16  # one ldmatrix row, one 128-bit access
LINE_BYTES = 128  # 32 banks of 4 bytes

SwizzleRule = Callable[[int, int, int], int]


def _fmt(values) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


@dataclass(frozen=True)
class MmaLayout:
    """The accumulator layout of ``mma.sync.m16n8k16`` (see the module docstring)."""

    warps_per_block: tuple[int, int]  # (wm, wn)

    @property
    def rank(self) -> int:
        return 2

    @property
    def num_warps(self) -> int:
        return self.warps_per_block[0] * self.warps_per_block[1]

    def repetitions(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """Instruction tiles per warp along M and N (at least one: a dimension of size 1, as
        ``expand_dims`` of a row statistic makes, is held by every thread of the row)."""
        wm, wn = self.warps_per_block
        return max(1, shape[0] // (INSTR_M * wm)), max(1, shape[1] // (INSTR_N * wn))

    def __str__(self) -> str:
        return f"#mma<m16n8k16, wpb={_fmt(self.warps_per_block)}>"

    __repr__ = __str__


@dataclass(frozen=True)
class DotOperandLayout:
    """What each lane holds of operand ``index`` (0: A, 1: B) of a dot with accumulator
    layout ``parent``."""

    index: int
    parent: MmaLayout

    @property
    def rank(self) -> int:
        return 2

    @property
    def num_warps(self) -> int:
        return self.parent.num_warps

    def __str__(self) -> str:
        return f"#dot_op<{'ab'[self.index]}, parent={self.parent}>"

    __repr__ = __str__


def swizzle(row: int, chunk: int, chunks_per_row: int) -> int:
    """Where chunk ``chunk`` of memory row ``row`` is stored (a chunk is 16 bytes).

    Rows shorter than a 128-byte line share one: ``rows_per_line`` of them. Eight consecutive
    rows read at the same chunk must land in eight different 16-byte slots of a line, so the
    chunk is xor-ed with the row's line number (modulo the chunks a row has): rows in the same
    line already differ by their place in it, rows in different lines now differ by chunk.
    A permutation of each row's chunks, so nothing is overwritten.
    """
    rows_per_line = max(1, LINE_BYTES // (chunks_per_row * CHUNK_BYTES))
    phases = min(chunks_per_row, 8 // rows_per_line) or 1
    return chunk ^ ((row // rows_per_line) % phases)


def no_swizzle(row: int, chunk: int, chunks_per_row: int) -> int:
    """The plain row-major placement (for comparison: ``ldmatrix`` then meets bank conflicts)."""
    return chunk


@dataclass(frozen=True)
class SharedLayout:
    """A tile in shared memory: ``order[0]`` is the contiguous dimension; chunks of
    ``vec`` elements are placed by ``rule`` (a :func:`swizzle`)."""

    order: tuple[int, int]
    vec: int  # elements per 16-byte chunk
    rule: SwizzleRule = field(default=swizzle, compare=False)

    @property
    def rank(self) -> int:
        return 2

    def element_offset(self, shape: tuple[int, ...], coordinate: tuple[int, int]) -> int:
        """Element offset of tile element ``coordinate`` from the start of the buffer."""
        row_elems = shape[self.order[0]]
        row, col = coordinate[self.order[1]], coordinate[self.order[0]]
        chunks = max(1, row_elems // self.vec)
        chunk = self.rule(row, col // self.vec, chunks) if row_elems >= self.vec else 0
        return row * row_elems + chunk * self.vec + col % self.vec

    def __str__(self) -> str:
        name = getattr(self.rule, "__name__", "rule")
        return f"#shared<order={_fmt(self.order)}, vec={self.vec}, {name}>"

    __repr__ = __str__


def choose_mma_layout(m: int, n: int, num_warps: int) -> MmaLayout | None:
    """Spread ``num_warps`` warps over an ``m x n`` accumulator; ``None`` if the tile is too
    small for that many (each warp needs whole 16x16 pieces, for ``ldmatrix.x4`` of B)."""
    wm, wn = 1, 1
    while wm * wn < num_warps:
        can_m = m % (INSTR_M * wm * 2) == 0
        can_n = n % (16 * wn * 2) == 0
        if can_m and (not can_n or m // wm >= n // wn):
            wm *= 2
        elif can_n:
            wn *= 2
        else:
            return None
    if m % (INSTR_M * wm) or n % (16 * wn):
        return None
    return MmaLayout((wm, wn))


def shared_layout_for(order: tuple[int, ...], element_bytes: int,
                      rule: SwizzleRule = swizzle) -> SharedLayout:
    return SharedLayout((order[0], order[1]), CHUNK_BYTES // element_bytes, rule)


# ----- which lane holds which element (the fragment maps, in Python) ---------------------------
def _warp_position(layout: MmaLayout, warp: int) -> tuple[int, int]:
    wm, wn = layout.warps_per_block
    return warp // wn, warp % wn


def accumulator_coordinates(layout: MmaLayout, shape, lane: int, warp: int) -> list[tuple]:
    """The (row, column) of each accumulator value thread (warp, lane) holds, in register
    order: repetition ``mr``, repetition ``nr``, then ``c0..c3``."""
    wm, wn = layout.warps_per_block
    wi, wj = _warp_position(layout, warp)
    g, t = lane >> 2, lane & 3
    reps_m, reps_n = layout.repetitions(shape)
    out = []
    for mr in range(reps_m):
        for nr in range(reps_n):
            for j in range(4):
                row = mr * INSTR_M * wm + wi * INSTR_M + g + 8 * (j >> 1)
                col = nr * INSTR_N * wn + wj * INSTR_N + 2 * t + (j & 1)
                # a dimension of size 1 (``m[:, None]``): every thread holds its element 0
                out.append((row if shape[0] > 1 else 0, col if shape[1] > 1 else 0))
    return out


def operand_coordinates(layout: DotOperandLayout, shape, lane: int, warp: int) -> list[tuple]:
    """The coordinates of each element of A (``M x K``) or B (``K x N``) that thread (warp,
    lane) holds for the tensor cores, in register order (repetition, k step, register, half)."""
    parent = layout.parent
    wm, wn = parent.warps_per_block
    wi, wj = _warp_position(parent, warp)
    g, t = lane >> 2, lane & 3
    out = []
    if layout.index == 0:
        for mr in range(shape[0] // (INSTR_M * wm)):
            for kr in range(shape[1] // INSTR_K):
                for r in range(4):
                    for h in range(2):
                        out.append((mr * INSTR_M * wm + wi * INSTR_M + g + 8 * (r & 1),
                                    kr * INSTR_K + 2 * t + h + 8 * (r >> 1)))
    else:
        for nr in range(shape[1] // (INSTR_N * wn)):
            for kr in range(shape[0] // INSTR_K):
                for r in range(2):
                    for h in range(2):
                        out.append((kr * INSTR_K + 2 * t + h + 8 * r,
                                    nr * INSTR_N * wn + wj * INSTR_N + g))
    return out


def accumulator_counts(layout: MmaLayout, shape) -> tuple[int, int]:
    """Per thread, accumulator values along each dimension (2 rows x 2 columns per tile)."""
    reps_m, reps_n = layout.repetitions(shape)
    return 2 * reps_m, 2 * reps_n


def ldmatrix_rows(operand: int, trans: bool, outer_start, outer_step, k_start, lane):
    """The tile coordinate whose 16-byte memory row lane ``lane`` points ``ldmatrix.x4`` at.

    Lanes ``8i..8i+7`` address matrix ``i``. For A (``operand = 0``) the four 8x8 matrices are
    the quarters of a 16x16 piece (rows ``+8*(i & 1)``, k ``+8*(i >> 1)``): registers r0..r3 of
    the A fragment. For B, matrices 0 and 1 are k ``+0`` and ``+8`` of the 8 columns at
    ``outer_start``, matrices 2 and 3 the same at ``outer_start + outer_step``: the two B
    registers of two instruction tiles. Without ``.trans`` memory rows run along the outer
    dimension (K contiguous: lane ``8i + r`` points at outer row ``+r``); with it, along K.
    Works on ints and on :class:`~mini_compiler.backends.gpu.ir_int.IRInt` values alike.
    """
    i, r = lane >> 3, lane & 7
    if operand == 0:
        outer, k = outer_start + 8 * (i & 1), k_start + 8 * (i >> 1)
    else:
        outer, k = outer_start + outer_step * (i >> 1), k_start + 8 * (i & 1)
    if trans:
        k = k + r
    else:
        outer = outer + r
    return (outer, k) if operand == 0 else (k, outer)
