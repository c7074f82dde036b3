"""Calling compiled kernels: argument packing, worker threads, and bounds-check errors.

The kernel function runs program ids taken from a shared counter (see ``lowering.py``): each call
grabs a few ids at a time with an atomic add until the grid is done. A launch calls it from the
calling thread and from ``WORKERS - 1`` worker threads: ``ctypes`` releases the GIL during the
call, so they run in parallel. Because the work is taken, not assigned, the calling thread starts
at once and a worker that wakes up late (tens of microseconds on a busy or virtual machine) just
takes fewer programs; no thread waits for a fixed share given to a sleeping one.

Handing work to a thread is the expensive part of a small parallel launch, so it is kept minimal:
the workers block on a ``queue.SimpleQueue`` (one C-level lock; a ``ThreadPoolExecutor`` adds a
future, a condition variable and bookkeeping per job), and the calling thread, when it runs out of
work, waits in the compiled ``wait_all`` (a spin on the count of finished programs) instead of
sleeping on a lock and being woken up again.

Small launches run on the calling thread alone: handing work to another thread costs more than a
small kernel takes. :data:`PARALLEL_THRESHOLD` is that break-even point, in the units of
``CpuKernel``'s rough work estimate (element operations per program times programs).
"""

from __future__ import annotations

import ctypes
import os
import queue
import struct
import threading
import time

from ...errors import OutOfBoundsError
from ...ir.ops import Op
from ...runtime.specialization import TensorArg

KERNEL_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                    ctypes.c_void_p)
WAIT_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)
WORKERS = max(1, os.cpu_count() or 1)
ERROR_SLOTS = 6
# About a millisecond of single-threaded work; below it a launch stays on the calling thread.
PARALLEL_THRESHOLD = 1 << 21
WORK_SLOTS = 5  # next program id, ids per grab, programs done, failed, calls returned
GRABS_PER_THREAD = 8  # smaller batches balance better; each costs an atomic add on a shared line

_jobs: queue.SimpleQueue | None = None
_jobs_lock = threading.Lock()


def _worker(jobs: queue.SimpleQueue) -> None:
    while True:
        function, arguments, launcher = jobs.get()
        function(*arguments)
        # The launch may have returned long ago (it waits for the programs, not for the calls):
        # holding `launcher` until here kept its machine code mapped while this call ran.
        del function, arguments, launcher


def job_queue() -> queue.SimpleQueue:
    """The queue the ``WORKERS - 1`` daemon worker threads take kernel calls from."""
    global _jobs
    with _jobs_lock:
        if _jobs is None:
            _jobs = queue.SimpleQueue()
            for i in range(WORKERS - 1):
                threading.Thread(target=_worker, args=(_jobs,), daemon=True,
                                 name=f"mini_compiler-{i}").start()
    return _jobs


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
                 work_per_program: int, wait_address: int, owner: object = None):
        # `owner` holds the machine code `address` points into (the JIT module); every job handed
        # to a worker carries this launcher, so the code outlives the last call into it.
        self.owner = owner
        self.function = KERNEL_SIGNATURE(address)
        self.wait_all = WAIT_SIGNATURE(wait_address)
        self.kernel_name = kernel_name
        self.checked_ops = checked_ops
        self.work_per_program = work_per_program

    def __call__(self, runtime_args: list, grid: tuple[int, int, int]) -> None:
        args = pack_arguments(runtime_args, grid)
        total = grid[0] * grid[1] * grid[2]
        threads = 1 if total * self.work_per_program < PARALLEL_THRESHOLD else min(WORKERS, total)
        # See WORK_SLOTS for the slots; GRABS_PER_THREAD batches per thread balance the load.
        grab = max(1, total // (GRABS_PER_THREAD * threads))
        work = (ctypes.c_int64 * WORK_SLOTS)(0, grab, 0, 0, 0)
        if threads == 1:
            error = (ctypes.c_int64 * ERROR_SLOTS)()
            self.function(args, work, total, error)
            if error[0]:
                self.raise_out_of_bounds(list(error), grid)
            return
        errors = [(ctypes.c_int64 * ERROR_SLOTS)() for _ in range(threads)]
        jobs = job_queue()
        for err in errors[1:]:  # the job holds `args`, `work`, `err` and the code until it returns
            jobs.put((self.function, (args, work, total, err), self))
        self.function(args, work, total, errors[0])  # this thread works too, from the start
        self.wait_all(work, total)  # every program done, or a bounds check failed
        if not work[3]:
            return
        while work[4] < threads:  # a check failed: let every call return before reading errors
            time.sleep(0)
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
