"""Tile IR -> Tile IR passes, one module each, run in order by ``pipeline.PassManager``."""

from .constant_fold import fold_constants
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .infer_shapes import infer_shapes
from .pipeline import DEFAULT_PASSES, PassManager

__all__ = ["DEFAULT_PASSES", "PassManager", "eliminate_common_subexpressions",
           "eliminate_dead_code", "fold_constants", "infer_shapes"]
