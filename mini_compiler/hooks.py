"""Exercise hooks: plug a learner's rule into the compiler, temporarily.

Tables drive parts of the compiler, and a learner can replace entries in them:

* ``mini_compiler.passes.constant_fold.FOLDERS``: op name -> ``fold(*constants) -> value | None``
  (how the constant-folding pass evaluates an op whose operands are all constants);
* ``mini_compiler.passes.gpu.axis_info.RULES``: op name -> ``transfer(*operand_infos) ->
  AxisInfo`` (what the axis-info analysis concludes about an op's result; ``"tile.mul"``);
* ``mini_compiler.frontend.control_flow.RULES``: ``"loop_carried_names"``, the function that
  says which names a ``for`` or ``while`` loop carries from one iteration to the next;
* ``mini_compiler.backends.llvm_core.LEARNER_RULES``: op name ->
  ``rule(builder, element, *operands) -> llvmlite value``, the form of every elementwise rule of
  the shared LLVM core (``element`` is the Tile IR element type the op computes in, so a rule
  can tell floats, signed and unsigned integers apart). Both back ends use an installed rule in
  place of their own.

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

from .backends import llvm_core
from .backends.gpu import compiler as gpu_compiler
from .frontend import control_flow
from .passes import constant_fold
from .passes.gpu import axis_info as axis_info_pass
from .passes.gpu import register_maps
from .runtime.cache import clear_all


@contextmanager
def override(folders: dict | None = None, lowering: dict | None = None,
             gpu: dict | None = None, axis_info: dict | None = None,
             frontend: dict | None = None):
    """Use, inside the block:

    * ``folders``: constant-folding rules, op name (e.g. ``"tile.add"``) -> ``fold(*constants)``;
    * ``lowering``: elementwise lowering rules, op name -> ``rule(builder, element, *operands)``
      (the shared core's form, see ``backends/llvm_core.py``), used by both back ends;
    * ``gpu``: the GPU back end's exercise rules, ``"vector_width"`` and/or
      ``"butterfly_offsets"`` (the same functions ``gpu.compile_for_gpu(...)`` takes), and
      ``"register_map"``: ``rule(source, target, shape) -> tuple | None``, which says whether a
      layout conversion can stay in registers (``passes/gpu/register_maps.py``);
    * ``axis_info``: transfer functions of the axis-info analysis, op name -> ``rule(*infos)``;
    * ``frontend``: ``{"loop_carried_names": rule(loop, defined_before) -> [names]}``.
    """
    lowering = lowering or {}
    tables = [(constant_fold.FOLDERS, folders or {}),
              (llvm_core.LEARNER_RULES, lowering)]
    for rules in (folders or {}, lowering):
        unknown = [name for name in rules if not name.startswith("tile.")]
        if unknown:
            raise KeyError(f"rules are keyed by op name such as 'tile.add'; got {unknown}")
    unknown = sorted(set(lowering) - set(llvm_core.ELEMENT_RULES))
    if unknown:
        raise KeyError(f"{unknown} are not elementwise ops; a lowering rule replaces one of "
                       f"{sorted(llvm_core.ELEMENT_RULES)}")
    gpu = dict(gpu or {})
    maps = {"same_shape": gpu.pop("register_map")} if "register_map" in gpu else {}
    unknown = sorted(set(gpu) - set(gpu_compiler.RULES))
    if unknown:
        raise KeyError(f"GPU rules are {sorted(gpu_compiler.RULES) + ['register_map']}; "
                       f"got {unknown}")
    tables.append((gpu_compiler.RULES, gpu))
    tables.append((register_maps.RULES, maps))
    unknown = sorted(set(axis_info or {}) - set(axis_info_pass.RULES))
    if unknown:
        raise KeyError(f"axis-info rules are {sorted(axis_info_pass.RULES)}; got {unknown}")
    tables.append((axis_info_pass.RULES, axis_info or {}))
    unknown = sorted(set(frontend or {}) - set(control_flow.RULES))
    if unknown:
        raise KeyError(f"front-end rules are {sorted(control_flow.RULES)}; got {unknown}")
    tables.append((control_flow.RULES, frontend or {}))
    saved = [dict(table) for table, _ in tables]
    for table, rules in tables:
        table.update(rules)
    clear_all()
    try:
        yield
    finally:
        for (table, _), old in zip(tables, saved, strict=False):
            table.clear()
            table.update(old)
        clear_all()
