"""The launch grid: a tuple of 1 to 3 program counts, or a callable of the launch's arguments."""

from __future__ import annotations

from ..errors import LaunchError


def normalise_grid(grid, meta: dict) -> tuple[int, int, int]:
    if callable(grid):
        grid = grid(meta)
    if isinstance(grid, int):
        grid = (grid,)
    try:
        dims = tuple(int(g) for g in grid)
    except TypeError:
        raise LaunchError(f"grid must be a tuple of ints or a callable returning one, got "
                          f"{grid!r}") from None
    if not 1 <= len(dims) <= 3 or any(d < 0 for d in dims):
        raise LaunchError(f"grid must have 1 to 3 non-negative sizes, got {dims}")
    return dims + (1,) * (3 - len(dims))
