"""Layouts: which thread of a block holds which element of a tile.

A tile of Tile IR is one value for the whole *program*; on a GPU the program is a block of
``num_warps * 32`` threads, and each thread keeps a few of the tile's elements in its registers.
A layout is the rule that distributes the elements.

**Blocked layout** (``#blocked``), per dimension ``d``:

* ``size_per_thread[d]``: consecutive elements one thread holds (4 floats = one 128-bit access);
* ``threads_per_warp[d]``: how the 32 lanes of a warp are spread (product 32);
* ``warps_per_block[d]``: how the warps are spread (product ``num_warps``);
* ``order``: dimensions from fastest- to slowest-varying when numbering lanes and warps
  (``(1, 0)``: lane ``l`` is at column ``l % threads_per_warp[1]``, like row-major memory).

Together they cover ``size_per_thread * threads_per_warp * warps_per_block`` elements per
dimension, the *layout tile*. A bigger tile repeats it (each thread holds several *repetitions*);
a smaller tile wraps around (several threads hold copies of the same element).

Element coordinate along ``d`` of a thread's ``k``-th element (``k`` counts along ``d``)::

    coordinate = (k // spt) * layout_tile + warp_d * threads_per_warp[d] * spt
                 + lane_d * spt + k % spt                      (modulo the tile size)

**Slice layout** (``#slice<dim, parent>``): the layout of a tile with dimension ``dim`` of the
parent removed, what a reduction along ``dim`` leaves. Threads that differed only along ``dim``
now hold the same elements. ``expand_dims`` at ``dim`` turns it back into the parent, and
broadcasting inside one blocked layout moves no data: this is why reductions and broadcasts are
free of shared memory when their layouts match.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import prod

from .mma_layouts import (
    INSTR_M,
    INSTR_N,
    DotOperandLayout,
    MmaLayout,
    accumulator_coordinates,
    accumulator_counts,
    operand_coordinates,
)

WARP_SIZE = 32


def _fmt(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


@dataclass(frozen=True)
class BlockedLayout:
    """See the module docstring. All sizes are powers of two."""

    size_per_thread: tuple[int, ...]
    threads_per_warp: tuple[int, ...]
    warps_per_block: tuple[int, ...]
    order: tuple[int, ...]

    def __post_init__(self) -> None:
        rank = len(self.size_per_thread)
        if not (len(self.threads_per_warp) == len(self.warps_per_block) == len(self.order) == rank):
            raise ValueError(f"blocked layout fields disagree on the rank: {self}")
        if prod(self.threads_per_warp) != WARP_SIZE:
            raise ValueError(f"threads_per_warp {self.threads_per_warp} must multiply to 32")
        if sorted(self.order) != list(range(rank)):
            raise ValueError(f"order {self.order} must be a permutation of the dimensions")

    @property
    def rank(self) -> int:
        return len(self.size_per_thread)

    @property
    def num_warps(self) -> int:
        return prod(self.warps_per_block)

    def layout_tile(self, dim: int) -> int:
        """Elements along ``dim`` covered once by all threads (before repetition)."""
        return (self.size_per_thread[dim] * self.threads_per_warp[dim]
                * self.warps_per_block[dim])

    def __str__(self) -> str:
        return (f"#blocked<spt={_fmt(self.size_per_thread)}, tpw={_fmt(self.threads_per_warp)}, "
                f"wpb={_fmt(self.warps_per_block)}, order={_fmt(self.order)}>")

    __repr__ = __str__


@dataclass(frozen=True)
class SliceLayout:
    """The layout of ``parent`` with dimension ``dim`` removed (a reduction's result).

    The parent is a blocked layout, or the tensor cores' accumulator layout: the row maximum of
    a ``tl.dot`` result is ``#slice<dim=1, parent=#mma>``, held by the four lanes of each quad
    that hold the row (see :func:`slice_registers`)."""

    dim: int
    parent: BlockedLayout | MmaLayout

    @property
    def rank(self) -> int:
        return self.parent.rank - 1

    @property
    def num_warps(self) -> int:
        return self.parent.num_warps

    def parent_dim(self, dim: int) -> int:
        """The parent dimension that this layout's dimension ``dim`` is."""
        return dim if dim < self.dim else dim + 1

    def __str__(self) -> str:
        return f"#slice<dim={self.dim}, parent={self.parent}>"

    __repr__ = __str__


Layout = BlockedLayout | SliceLayout | MmaLayout | DotOperandLayout


def _blocked_and_dims(layout: Layout) -> tuple[BlockedLayout, list[int]]:
    """The blocked layout that distributes ``layout`` and which of its dims the tile's dims are."""
    if isinstance(layout, SliceLayout):
        return layout.parent, [layout.parent_dim(d) for d in range(layout.rank)]
    return layout, list(range(layout.rank))


def elements_per_thread(layout: Layout, shape: tuple[int, ...]) -> tuple[int, ...]:
    """How many elements along each dimension one thread holds for a tile of ``shape``.

    ``min(size_per_thread, size)`` per repetition (a thread never holds one element twice),
    times the number of repetitions of the layout tile.
    """
    if isinstance(layout, MmaLayout):
        return accumulator_counts(layout, shape)
    if isinstance(layout, DotOperandLayout):
        return (len(operand_coordinates(layout, shape, 0, 0)),)
    if isinstance(layout, SliceLayout) and isinstance(layout.parent, MmaLayout):
        return (len(slice_registers(layout, shape)),)
    blocked, dims = _blocked_and_dims(layout)
    counts = []
    for size, d in zip(shape, dims, strict=False):
        spt = min(blocked.size_per_thread[d], size)
        counts.append(spt * max(1, size // blocked.layout_tile(d)))
    return tuple(counts)


def register_offset(layout: Layout, shape: tuple[int, ...], dim: int, k: int) -> int:
    """The part of the ``k``-th element's coordinate along ``dim`` that is the same in every
    thread: ``(k // spt) * layout_tile + k % spt``."""
    blocked, dims = _blocked_and_dims(layout)
    d = dims[dim]
    spt = min(blocked.size_per_thread[d], shape[dim])
    return (k // spt) * blocked.layout_tile(d) + k % spt


def split_index(index: int, sizes: tuple[int, ...], order: tuple[int, ...]) -> list[int]:
    """Split a lane (or warp) number into per-dimension positions, fastest dimension first."""
    position = [0] * len(sizes)
    for d in order:
        position[d] = index % sizes[d]
        index //= sizes[d]
    return position


def lane_stride(layout: BlockedLayout, dim: int) -> int:
    """The distance in lane numbers between neighbouring lanes along ``dim``."""
    stride = 1
    for d in layout.order:
        if d == dim:
            return stride
        stride *= layout.threads_per_warp[d]
    raise ValueError(dim)


def thread_base(layout: Layout, shape: tuple[int, ...], lane: int, warp: int) -> list[int]:
    """Per dimension, the coordinate of this thread's first element (before the modulo)."""
    blocked, dims = _blocked_and_dims(layout)
    lanes = split_index(lane, blocked.threads_per_warp, blocked.order)
    warps = split_index(warp, blocked.warps_per_block, blocked.order)
    base = []
    for d in dims:
        spt = blocked.size_per_thread[d]
        base.append(warps[d] * blocked.threads_per_warp[d] * spt + lanes[d] * spt)
    return base


def element_coordinates(layout: Layout, shape: tuple[int, ...], lane: int,
                        warp: int) -> list[tuple[int, ...]]:
    """The coordinates of the elements thread (``warp``, ``lane``) holds, in register order
    (row-major over :func:`elements_per_thread`; the tensor-core layouts in the order of
    :mod:`.mma_layouts`)."""
    if isinstance(layout, MmaLayout):
        return accumulator_coordinates(layout, shape, lane, warp)
    if isinstance(layout, DotOperandLayout):
        return operand_coordinates(layout, shape, lane, warp)
    if isinstance(layout, SliceLayout) and isinstance(layout.parent, MmaLayout):
        parent = accumulator_coordinates(layout.parent, slice_parent_shape(layout, shape),
                                         lane, warp)
        return [parent[i][:layout.dim] + parent[i][layout.dim + 1:]
                for i in slice_registers(layout, shape)]
    counts = elements_per_thread(layout, shape)
    base = thread_base(layout, shape, lane, warp)
    coordinates = []
    for flat in range(prod(counts)):
        ks = []
        for count in reversed(counts):
            ks.append(flat % count)
            flat //= count
        ks.reverse()
        coordinates.append(tuple(
            (base[dim] + register_offset(layout, shape, dim, k)) % shape[dim]
            for dim, k in enumerate(ks)
        ))
    return coordinates


def slice_parent_shape(layout: SliceLayout, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The parent tile whose registers a slice of ``#mma`` keeps: the removed dimension as
    long as one instruction tile of all the warps along it (16 rows or 8 columns per warp)."""
    wm, wn = layout.parent.warps_per_block
    size = INSTR_M * wm if layout.dim == 0 else INSTR_N * wn
    return tuple(shape[:layout.dim]) + (size,) + tuple(shape[layout.dim:])


@cache
def slice_registers(layout: SliceLayout, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Which registers of the parent ``#mma`` tile a thread keeps for a slice of it: the first
    one holding each coordinate (with the removed dimension dropped).

    A row of the accumulator is held by the four lanes ``t = 0..3`` of a quad, two values
    each (``c0, c1`` of row ``g``; ``c2, c3`` of row ``g + 8``), so a row statistic keeps
    ``c0`` and ``c2`` of every repetition: two rows per 16-row instruction tile. Which
    registers is the same in every thread (only the base coordinate depends on the lane), so
    lane 0 of warp 0 decides."""
    parent = accumulator_coordinates(layout.parent, slice_parent_shape(layout, shape), 0, 0)
    seen, kept = set(), []
    for index, coordinate in enumerate(parent):
        key = coordinate[:layout.dim] + coordinate[layout.dim + 1:]
        if key not in seen:
            seen.add(key)
            kept.append(index)
    return tuple(kept)


Owners = dict[tuple[int, ...], list[tuple[int, int, int]]]


def owners(layout: Layout, shape: tuple[int, ...]) -> Owners:
    """For every element, the ``(warp, lane, register)`` triples that hold it."""
    table: dict[tuple[int, ...], list[tuple[int, int, int]]] = {}
    for warp in range(layout.num_warps):
        for lane in range(WARP_SIZE):
            for register, coordinate in enumerate(element_coordinates(layout, shape, lane, warp)):
                table.setdefault(coordinate, []).append((warp, lane, register))
    return table


def render_layout(layout: Layout, shape: tuple[int, ...], *, cell: str = "w{warp}:t{lane}") -> str:
    """A text grid of a 1-D or 2-D tile: each element shows the first thread that holds it.

    ``cell`` formats ``warp``, ``lane``, ``thread`` (= warp * 32 + lane) and ``register``; a ``*``
    marks elements held by several threads (copies).
    """
    if len(shape) not in (1, 2):
        raise ValueError("render_layout draws 1-D and 2-D tiles")
    table = owners(layout, shape)
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    texts = []
    for r in range(rows):
        row = []
        for c in range(cols):
            coordinate = (c,) if len(shape) == 1 else (r, c)
            warp, lane, register = table[coordinate][0]
            text = cell.format(warp=warp, lane=lane, thread=warp * WARP_SIZE + lane,
                               register=register)
            row.append(text + ("*" if len(table[coordinate]) > 1 else ""))
        texts.append(row)
    width = max(len(t) for row in texts for t in row)
    return "\n".join(" ".join(t.rjust(width) for t in row) for row in texts)


def thread_map(layout: Layout, shape: tuple[int, ...]) -> dict[str, list]:
    """Nested lists (of ``shape``) of the warp, lane and register that first hold each element,
    and how many threads hold it: the data behind a colour-coded view of a layout."""
    table = owners(layout, shape)

    def build(field_index: int | None) -> list:
        def at(prefix: tuple[int, ...]):
            if len(prefix) == len(shape):
                holders = table[prefix]
                return len(holders) if field_index is None else holders[0][field_index]
            return [at(prefix + (i,)) for i in range(shape[len(prefix)])]
        return at(())

    return {"warp": build(0), "lane": build(1), "register": build(2), "copies": build(None)}


def choose_blocked_layout(shape: tuple[int, ...], num_warps: int,
                          vector: int = 1) -> BlockedLayout:
    """A blocked layout for a tile of ``shape`` on ``num_warps`` warps.

    The last dimension is the fastest (row-major tensors); each thread holds ``vector``
    consecutive elements along it (the width of one memory access). Lanes, then warps, are laid
    along the fastest dimensions first, as far as the tile is long enough; what is left over
    goes to the slowest dimension (there the layout tile may exceed the tile: copies).
    """
    rank = len(shape)
    order = tuple(range(rank - 1, -1, -1))
    size_per_thread = [1] * rank
    size_per_thread[order[0]] = max(1, min(vector, shape[order[0]]))
    threads = [1] * rank
    remaining = WARP_SIZE
    for d in order:
        fit = max(1, shape[d] // size_per_thread[d])
        threads[d] = min(remaining, fit)
        remaining //= threads[d]
    threads[order[-1]] *= remaining
    warps = [1] * rank
    remaining = num_warps
    for d in order:
        fit = max(1, shape[d] // (size_per_thread[d] * threads[d]))
        warps[d] = min(remaining, fit)
        remaining //= warps[d]
    warps[order[-1]] *= remaining
    return BlockedLayout(tuple(size_per_thread), tuple(threads), tuple(warps), order)


def warp_stride(layout: BlockedLayout, dim: int) -> int:
    """The distance in warp numbers between neighbouring warps along ``dim``."""
    stride = 1
    for d in layout.order:
        if d == dim:
            return stride
        stride *= layout.warps_per_block[d]
    raise ValueError(dim)


def distinct_lanes(layout: BlockedLayout, shape: tuple[int, ...], dim: int) -> int:
    """How many lanes along ``dim`` hold *different* elements (the rest hold copies)."""
    return min(layout.threads_per_warp[dim], max(1, shape[dim] // layout.size_per_thread[dim]))


def distinct_warps(layout: BlockedLayout, shape: tuple[int, ...], dim: int) -> int:
    """How many warps along ``dim`` hold *different* elements (the rest hold copies)."""
    per_warp = layout.size_per_thread[dim] * layout.threads_per_warp[dim]
    return min(layout.warps_per_block[dim], max(1, shape[dim] // per_warp))
