"""GPU passes, in the order they run: axis info (an analysis), coalescing, layout assignment,
shared-memory allocation, barrier insertion. Each module's docstring gives its input form,
output form and idea; ``mini_compiler.backends.gpu.compiler.run_gpu_passes`` runs them."""

from .allocate_shared_memory import allocate_shared_memory
from .assign_layouts import assign_layouts
from .axis_info import AxisInfo, analyse_axis_info
from .coalesce import coalesce, vector_width
from .insert_barriers import insert_barriers

__all__ = ["AxisInfo", "allocate_shared_memory", "analyse_axis_info", "assign_layouts",
           "coalesce", "insert_barriers", "vector_width"]
