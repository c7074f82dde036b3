"""A parallel CPU launch returns when every program is done, not when every worker's call has
returned: a worker may enter the kernel's machine code after the launch returned (it took its job
late and finds no work left). The job must therefore keep that code mapped, even when the
compiled kernel itself is gone by then."""

from __future__ import annotations

import gc

import compiler_helpers as H
import torch

import mini_compiler
from mini_compiler.backends.cpu import launcher as cpu_launcher
from mini_compiler.backends.cpu.jit import JitModule


class HeldQueue(list):
    """Stands in for the workers' queue: keeps the jobs, runs them only when told to."""

    def put(self, job):
        self.append(job)


def test_a_late_worker_call_runs_after_its_kernel_was_freed(monkeypatch):
    held = HeldQueue()
    monkeypatch.setattr(cpu_launcher, "job_queue", lambda: held)
    monkeypatch.setattr(cpu_launcher, "WORKERS", 4)
    monkeypatch.setattr(cpu_launcher, "PARALLEL_THRESHOLD", 1)  # make even this launch parallel
    n = 1 << 16
    x = torch.randn(n)
    out = torch.full((n,), float("nan"))
    kernel = mini_compiler.jit(H.K.add_kernel)
    kernel[(n // 1024,)](x, x, out, n, BLOCK_SIZE=1024)  # the calling thread does every program
    torch.testing.assert_close(out, 2 * x)
    assert len(held) == 3, "the launch handed no work to the (stand-in) workers"
    for job in held:
        assert len(job) == 3, "a job must carry its launcher (and so the machine code)"
        launcher = job[2]
        assert isinstance(launcher, cpu_launcher.CpuLauncher)
        assert isinstance(launcher.owner, JitModule) and launcher.owner.engine is not None
    del kernel, launcher
    mini_compiler.runtime.cache.clear_all()
    gc.collect()
    for function, arguments, _ in held:  # the late calls: they find no work and return
        function(*arguments)
    torch.testing.assert_close(out, 2 * x)
