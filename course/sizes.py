"""Problem sizes per device, in one place.

On a GPU the lessons use sizes that fill the chip, so that timings mean something. On the CPU,
Triton's interpreter runs every program of the grid one after another in numpy, so the cost grows
with the number of programs: the CPU sizes below keep each notebook to seconds per cell while still
covering the awkward cases (sizes that are not multiples of the block). The CPU *benchmark* sizes
(``sweep``...) are for the kernels compiled to x86 by ``mini_compiler``, which run at CPU speed:
they reach past the CPU's caches (tens of MB), so that memory-bound kernels meet main memory.

Change a size here and every notebook, test and benchmark picks it up.
"""

from __future__ import annotations

from .env import configure

SIZES: dict[str, dict[str, dict]] = {
    "vector_add": {
        "cpu": {"n": 98_432, "sweep": [2**p for p in range(12, 25, 2)]},
        "cuda": {"n": 2**28, "sweep": [2**p for p in range(12, 29)]},
    },
    "softmax": {
        "cpu": {"rows": 4096, "cols": 4096, "elements": 2**24, "sweep_cols": [256, 1024, 4096]},
        "cuda": {
            "rows": 2**27 // 4096,
            "cols": 4096,
            "elements": 2**27,
            "sweep_cols": [256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
        },
    },
    "matmul": {
        "cpu": {"m": 256, "n": 256, "k": 256, "sweep": [128, 256, 512]},
        "cuda": {"m": 4096, "n": 4096, "k": 4096, "sweep": [512, 1024, 2048, 4096, 8192]},
    },
    "attention": {
        "cpu": {"batch": 1, "heads": 4, "seq": 256, "head_dim": 64, "sweep_seq": [128, 256, 512]},
        "cuda": {
            "batch": 4,
            "heads": 32,
            "seq": 4096,
            "head_dim": 128,
            "sweep_seq": [512, 1024, 2048, 4096, 8192, 16384],
        },
    },
}


def sizes(lesson: str) -> dict:
    """The problem sizes of ``lesson`` for the device this process runs on."""
    if lesson not in SIZES:
        raise KeyError(f"no sizes for {lesson!r}; known lessons: {', '.join(SIZES)}")
    return dict(SIZES[lesson][configure().device])
