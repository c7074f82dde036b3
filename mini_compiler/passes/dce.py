"""Dead-code elimination.

Input: any Tile IR. Output: the same IR without the ops whose results nobody reads and that have
no effect: pure ops and loads (a load has no effect except a possible fault, which a correct
kernel does not have). Stores, loops and ifs are kept.

Idea: count the uses of every value; walk the ops backwards (so that removing a user can make its
operands dead in the same sweep) and drop dead ops; repeat until nothing changes.
"""

from __future__ import annotations

from ..ir.ops import Block, Function, count_uses
from ..ir.registry import is_pure


def removable(name: str) -> bool:
    """Pure ops, and loads (reading memory has no effect), may go when nothing reads them."""
    return is_pure(name) or name == "tile.load"


def _sweep(block: Block, uses: dict) -> int:
    removed = 0
    kept = []
    for op in reversed(block.ops):
        for region in op.regions:
            removed += _sweep(region, uses)
        dead = removable(op.name) and not op.regions and \
            all(uses.get(r, 0) == 0 for r in op.results)
        if dead:
            for v in op.operands:
                uses[v] -= 1
            removed += 1
        else:
            kept.append(op)
    block.ops = kept[::-1]
    return removed


def eliminate_dead_code(fn: Function) -> Function:
    """Remove unused pure ops (in place; returns ``fn``)."""
    while _sweep(fn.body, count_uses(fn.body)):
        pass
    return fn
