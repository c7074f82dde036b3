"""The CPU back end: Tile IR -> LLVM IR (``lowering``) -> x86 machine code (``jit``) -> a call
per thread over ranges of program ids (``launcher``). ``compile`` is the back-end interface
described in ``mini_compiler/backends/__init__.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...debug import print_stage
from ...ir.ops import Function, walk_ops
from . import lowering
from .jit import compile_module
from .launcher import CpuLauncher


@dataclass
class CpuKernel:
    asm: dict[str, str] = field(default_factory=dict)
    launcher: CpuLauncher | None = None
    jit_module: object = None

    def launch(self, runtime_args: list, grid: tuple[int, int, int]) -> None:
        self.launcher(runtime_args, grid)


def _work_per_program(fn: Function) -> int:
    """A rough count of element operations per program (loops counted as 16 iterations)."""
    total = 0
    for op in walk_ops(fn.body):
        for r in op.results:
            total += r.type.numel
        if op.name == "tile.dot":
            m, k = op.operands[0].type.shape
            total += m * k * op.operands[1].type.shape[1]
        if op.name == "tile.for":
            total *= 16
    return max(total, 1)


def compile(fn: Function, options: dict) -> CpuKernel:  # noqa: A001 - the back-end interface
    name = options.get("kernel_name", fn.name)
    debug = options.get("debug") or set()
    module, checked_ops = lowering.lower_to_llvm(fn, name, bool(options.get("bounds_check")))
    llvm_text = str(module)
    if "llvm" in debug:
        print_stage("llvm", llvm_text)
    jitted = compile_module(llvm_text)
    if "llvm" in debug:
        print_stage("llvm.opt", jitted.optimised_ir)
    if "asm" in debug:
        print_stage("x86", jitted.assembly)
    launcher = CpuLauncher(jitted.address, name, checked_ops, _work_per_program(fn),
                           jitted.wait_address, owner=jitted)
    asm = {"llvm": llvm_text, "llvm.opt": jitted.optimised_ir, "x86": jitted.assembly}
    return CpuKernel(asm, launcher, jitted)


def from_optimised_ir(name: str, asm: dict, checked_ops: list, work_per_program: int
                      ) -> CpuKernel:
    """A kernel from a disk-cache entry: machine code from its already optimised LLVM IR (the
    front end, the passes, the lowering and LLVM's optimisation are not run again)."""
    jitted = compile_module(asm["llvm.opt"], want_assembly=False, optimise=False)
    launcher = CpuLauncher(jitted.address, name, checked_ops, work_per_program,
                           jitted.wait_address, owner=jitted)
    return CpuKernel(dict(asm), launcher, jitted)
