"""The pass manager: runs passes in order and can record the IR after each one.

``PassManager(DEFAULT_PASSES).run(fn)`` transforms ``fn`` in place. (The GPU back end runs its
own passes, ``passes/gpu``, through a second manager: their stages are ``tile.gpu.<pass>``.)
With ``record=True`` the text
of the IR before any pass (``"tile"``) and after each pass (``"tile.<pass name>"``) is kept in
``manager.stages``; ``snapshots=True`` also keeps a deep copy of the IR itself after each pass,
which is how the test harness interprets every intermediate form.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..ir.ops import Function
from ..ir.printer import print_function
from .constant_fold import fold_constants
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .infer_shapes import infer_shapes

Pass = Callable[[Function], Function]

DEFAULT_PASSES: list[tuple[str, Pass]] = [
    ("infer_shapes", infer_shapes),
    ("constant_fold", fold_constants),
    ("cse", eliminate_common_subexpressions),
    ("dce", eliminate_dead_code),
]


class PassManager:
    def __init__(self, passes: list[tuple[str, Pass]] | None = None, record: bool = True,
                 snapshots: bool = False, on_stage: Callable[[str, str], None] | None = None,
                 first_stage: str | None = "tile"):
        self.passes = list(DEFAULT_PASSES if passes is None else passes)
        self.record = record
        self.keep_snapshots = snapshots
        self.on_stage = on_stage
        self.first_stage = first_stage  # the name of the input's stage, or None: not recorded
        self.stages: dict[str, str] = {}
        self.snapshots: list[tuple[str, Function]] = []

    def _stage(self, name: str, fn: Function) -> None:
        if self.record or self.on_stage:
            text = print_function(fn)
            if self.record:
                self.stages[name] = text
            if self.on_stage:
                self.on_stage(name, text)
        if self.keep_snapshots:
            self.snapshots.append((name, copy.deepcopy(fn)))

    def run(self, fn: Function) -> Function:
        if self.first_stage:
            self._stage(self.first_stage, fn)
        for name, run_pass in self.passes:
            fn = run_pass(fn)
            self._stage(f"tile.{name}", fn)
        return fn
