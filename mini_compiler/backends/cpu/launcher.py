"""Calling compiled kernels: argument packing, the thread pool, and bounds-check errors.

The kernel function runs a contiguous range of program ids. A launch splits the grid into one
range per CPU core and calls the function from a thread pool: ``ctypes`` releases the GIL during
the call, so the ranges run in parallel. Small launches run on the calling thread, where the
pool's overhead would cost more than it saves.
"""

from __future__ import annotations

import ctypes
import os
import struct
from concurrent.futures import ThreadPoolExecutor

from ...errors import OutOfBoundsError
from ...ir.ops import Op
from ...runtime.specialization import TensorArg

KERNEL_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_void_p)
WORKERS = max(1, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
ERROR_SLOTS = 6


def thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mini_compiler")
    return _pool


def pack_arguments(runtime_args: list, grid: tuple[int, int, int]) -> ctypes.Array:
    """One int64 slot per parameter, then the grid, then each tensor's size in bytes."""
    slots = []
    extents = []
    for a in runtime_args:
        if isinstance(a, TensorArg):
            slots.append(a.address)
            extents.append(a.nbytes)
        elif isinstance(a, float):
            slots.append(struct.unpack("<q", struct.pack("<d", a))[0])
        else:
            slots.append(int(a))
    values = slots + list(grid) + extents
    return (ctypes.c_int64 * len(values))(*values)


class CpuLauncher:
    def __init__(self, address: int, kernel_name: str, checked_ops: list[Op],
                 work_per_program: int):
        self.function = KERNEL_SIGNATURE(address)
        self.kernel_name = kernel_name
        self.checked_ops = checked_ops
        self.work_per_program = work_per_program

    def __call__(self, runtime_args: list, grid: tuple[int, int, int]) -> None:
        args = pack_arguments(runtime_args, grid)
        total = grid[0] * grid[1] * grid[2]
        # Below about a million element operations a thread hand-off costs more than it saves.
        chunks = 1 if total * self.work_per_program < (1 << 20) else min(WORKERS, total)
        bounds = [(total * i // chunks, total * (i + 1) // chunks) for i in range(chunks)]
        errors = [(ctypes.c_int64 * ERROR_SLOTS)() for _ in bounds]
        if chunks == 1:
            self.function(args, 0, total, errors[0])
        else:
            futures = [thread_pool().submit(self.function, args, lo, hi, err)
                       for (lo, hi), err in zip(bounds, errors, strict=False)]
            for f in futures:
                f.result()
        for err in errors:
            if err[0]:
                self.raise_out_of_bounds(list(err), grid)

    def raise_out_of_bounds(self, record: list[int], grid) -> None:
        _, x, y, z, op_number, offset = record
        op = self.checked_ops[op_number]
        pid = (x,) if grid[1] == grid[2] == 1 else ((x, y) if grid[2] == 1 else (x, y, z))
        verb = "load" if op.name == "tile.load" else "store"
        try:
            import linecache

            source = linecache.getline(op.loc.file, op.loc.line).strip()
        except Exception:
            source = ""
        raise OutOfBoundsError(
            f"kernel `{self.kernel_name}`, program id {pid}: {verb} out of bounds at "
            f"{op.loc.file}:{op.loc.line} (element offset {offset} is outside the tensor)"
            + (f"\n    {source}" if source else "")
            + "\nDid you forget a mask (e.g. mask=offsets < n)?"
        )
