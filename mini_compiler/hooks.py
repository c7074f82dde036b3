"""Exercise hooks: plug a learner's rule into the compiler, temporarily.

Two tables drive parts of the compiler, and a learner can replace entries in them:

* ``mini_compiler.passes.constant_fold.FOLDERS``: op name -> ``fold(*constants) -> value | None``
  (how the constant-folding pass evaluates an op whose operands are all constants);
* ``mini_compiler.backends.cpu.lowering.ELEMENTWISE_LOWERINGS``: op name ->
  ``lower(builder, operands) -> llvmlite value`` (how the CPU back end turns one element of an
  elementwise op into LLVM instructions).

:func:`override` installs rules for the duration of a ``with`` block and clears the compile cache
on the way in and out, so kernels launched inside the block are compiled with the learner's rule::

    from mini_compiler.hooks import override

    def my_mul(a, b):
        return a * b

    with override(folders={"tile.mul": my_mul}):
        kernel[grid](x, out, n, BLOCK=128)   # compiled with my_mul; check the result
"""

from __future__ import annotations

from contextlib import contextmanager

from .backends.cpu import lowering as cpu_lowering
from .passes import constant_fold
from .runtime.cache import clear_all


@contextmanager
def override(folders: dict | None = None, lowering: dict | None = None):
    """Use ``folders`` (constant-folding rules) and ``lowering`` (CPU elementwise lowering
    rules), each a dict from op name (e.g. ``"tile.add"``) to a rule, inside the block."""
    tables = [(constant_fold.FOLDERS, folders or {}),
              (cpu_lowering.ELEMENTWISE_LOWERINGS, lowering or {})]
    saved = [dict(table) for table, _ in tables]
    for table, rules in tables:
        unknown = [name for name in rules if not name.startswith("tile.")]
        if unknown:
            raise KeyError(f"rules are keyed by op name such as 'tile.add'; got {unknown}")
        table.update(rules)
    clear_all()
    try:
        yield
    finally:
        for (table, _), old in zip(tables, saved, strict=False):
            table.clear()
            table.update(old)
        clear_all()
