"""Moving a tile between layouts without moving data: register permutations.

A layout conversion normally goes through shared memory (every thread writes its elements,
waits, reads the ones it needs). It is not needed when every thread *already holds* every
element it needs in the new layout: then the conversion is a renumbering of the thread's own
registers, which costs no instruction at all. :func:`register_map` finds out, by asking the
fragment maps of both layouts, for every thread, and checking that the renumbering is the same
in every thread (the code is generated once for all of them).

Three places use it:

* **P of flash attention.** The accumulator fragment of ``mma.sync.m16n8k16`` holds, in lane
  ``(g, t)``, row ``g`` and ``g + 8`` at columns ``2t, 2t+1`` of each 16x8 tile. Two
  neighbouring 16x8 tiles (columns ``16k .. 16k+15``) therefore hold exactly what the A operand
  fragment of the k-th 16x16 piece asks of the lane: rows ``g`` and ``g + 8``, columns
  ``16k + 2t (+1)`` and ``16k + 8 + 2t (+1)``. So the probabilities ``P = exp2(S - m)``,
  computed in the accumulator layout of ``Q K^T``, *are* the A operand of ``P V`` once packed
  to fp16 pairs: no shared memory (as long as the warps split only the rows, ``wn = 1``, and
  both dots spread the same warps over the rows).
* **Row statistics.** ``m[:, None]`` (``expand_dims`` of a ``#slice<dim=1, parent=#mma>``)
  and its ``broadcast`` to the whole tile only repeat registers the thread holds.
* **Reductions over #mma** (:func:`mma_reduction`): a row lives in the four lanes of a quad,
  so a row maximum is a fold over the thread's registers and two ``shfl.xor`` (lanes ``^1``,
  ``^2``): no shared memory when no other warp holds part of the row.
"""

from __future__ import annotations

from functools import cache

from .layouts import WARP_SIZE, Layout, SliceLayout, element_coordinates
from .mma_layouts import MmaLayout


def register_map(source: Layout, source_shape: tuple[int, ...], target: Layout,
                 target_shape: tuple[int, ...],
                 expand_axis: int | None = None) -> tuple[int, ...] | None:
    """For each register of a tile in ``target``, the register of the same thread holding that
    element in ``source`` (see :func:`derive_register_map`). A conversion between two layouts
    of one shape asks ``RULES["same_shape"]`` (a learner's function can stand there, through
    ``mini_compiler.hooks.override(gpu={"register_map": ...})``)."""
    if expand_axis is None and source_shape == target_shape:
        rule = RULES["same_shape"]
        if rule is not _same_shape:
            found = rule(source, target, tuple(source_shape))
            return None if found is None else tuple(found)
    return derive_register_map(source, source_shape, target, target_shape, expand_axis)


def _same_shape(source: Layout, target: Layout, shape: tuple[int, ...]):
    return derive_register_map(source, shape, target, shape)


# The renumbering of a conversion between two layouts of one shape: the compiler's own, or a
# learner's rule ``(source, target, shape) -> tuple | None`` installed for an exercise.
RULES = {"same_shape": _same_shape}
DEFAULT_RULES = dict(RULES)


@cache
def derive_register_map(source: Layout, source_shape: tuple[int, ...], target: Layout,
                        target_shape: tuple[int, ...],
                        expand_axis: int | None = None) -> tuple[int, ...] | None:
    """For each register of a tile in ``target``, the register of the *same thread* holding
    that element in ``source``; ``None`` when some thread lacks an element it needs, or when
    the renumbering differs between threads.

    ``expand_axis``: the target has one more dimension (``expand_dims``), of size 1, there.
    A source dimension of size 1 that the target has longer is broadcast (coordinate 0)."""
    if source.num_warps != target.num_warps:
        return None
    broadcast = [d for d, (s, t) in enumerate(zip(source_shape, target_shape
                 if expand_axis is None else
                 target_shape[:expand_axis] + target_shape[expand_axis + 1:], strict=True))
                 if s == 1 and t > 1]
    first = None
    for warp in range(target.num_warps):
        for lane in range(WARP_SIZE):
            held: dict[tuple[int, ...], int] = {}
            for index, coordinate in enumerate(element_coordinates(source, source_shape,
                                                                   lane, warp)):
                held.setdefault(coordinate, index)
            renumbering = []
            for coordinate in element_coordinates(target, target_shape, lane, warp):
                if expand_axis is not None:
                    coordinate = coordinate[:expand_axis] + coordinate[expand_axis + 1:]
                coordinate = tuple(0 if d in broadcast else c for d, c in enumerate(coordinate))
                if coordinate not in held:
                    return None
                renumbering.append(held[coordinate])
            if first is None:
                first = renumbering
            elif renumbering != first:
                return None
    return tuple(first) if first is not None else None


@cache
def mma_reduction(layout: MmaLayout, shape: tuple[int, ...],
                  axis: int) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]] | None:
    """How to reduce a ``#mma`` tile along ``axis`` in registers and shuffles.

    Returns ``(groups, lane_offsets)``: ``groups[i]`` are the thread's registers that fold into
    its ``i``-th element of ``#slice<dim=axis, parent=layout>``, and the partial results are
    then combined across the lanes ``lane ^ offset`` (along a row: the quad's ``t``, lanes
    ``^1, ^2``; along a column: the groups ``g``, lanes ``^4, ^8, ^16``). ``None`` when warps
    split ``axis`` (their partials would need shared memory: the caller converts instead)."""
    if layout.warps_per_block[axis] != 1:
        return None
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, coordinate in enumerate(element_coordinates(layout, shape, 0, 0)):
        groups.setdefault(coordinate[:axis] + coordinate[axis + 1:], []).append(index)
    expected = element_coordinates(SliceLayout(axis, layout), shape[:axis] + shape[axis + 1:],
                                   0, 0)
    assert list(groups) == expected, "slice registers and reduction groups disagree"
    offsets = (1, 2) if axis == 1 else (4, 8, 16)
    return tuple(tuple(g) for g in groups.values()), offsets
