"""The lessons' Triton kernels and their wrappers, importable by benchmarks and tests.

Importing this package chooses the device first (see :mod:`course.env`), so that on a machine
without a GPU Triton loads in interpreter mode.
"""

from ..env import configure

configure()
