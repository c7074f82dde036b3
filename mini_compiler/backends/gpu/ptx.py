"""LLVM IR -> PTX through LLVM's NVPTX back end (llvmlite), with no CUDA toolkit.

PTX is the virtual instruction set of NVIDIA GPUs: the CUDA driver compiles it to the machine code
of the GPU it runs on (SASS) when the module is loaded. LLVM can write PTX from LLVM IR, exactly as
Triton does after its own lowering. Two details matter:

* a function that the host can launch must use the ``ptx_kernel`` calling convention (it becomes a
  PTX ``.entry``); any other function becomes a ``.func`` that only device code can call;
* the target is ``sm_90`` (Hopper) with PTX ISA 8.0 (``+ptx80``), which the H100's driver accepts.
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm

NVPTX_TRIPLE = "nvptx64-nvidia-cuda"
# The data layout of 64-bit NVPTX: generic and global pointers are 64-bit, shared (addrspace 3)
# pointers too unless --nvptx-short-ptr is given.
NVPTX_DATA_LAYOUT = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
DEFAULT_ARCH = "sm_90"
DEFAULT_PTX_FEATURES = "+ptx80"


@functools.cache
def _initialise_llvm() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@functools.cache
def nvptx_target_machine(arch: str = DEFAULT_ARCH, features: str = DEFAULT_PTX_FEATURES,
                         opt: int = 3) -> llvm.TargetMachine:
    """The (cached) LLVM target machine that writes PTX for ``arch``."""
    _initialise_llvm()
    target = llvm.Target.from_triple(NVPTX_TRIPLE)
    return target.create_target_machine(cpu=arch, features=features, opt=opt)


def optimise(module: llvm.ModuleRef, arch: str = DEFAULT_ARCH, level: int = 3) -> None:
    """Run LLVM's standard -O``level`` pipeline on ``module`` in place (for the NVPTX target)."""
    machine = nvptx_target_machine(arch)
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    builder = llvm.create_pass_builder(machine, options)
    builder.getModulePassManager().run(module, builder)


def parse_llvm_ir(llvm_ir: str) -> llvm.ModuleRef:
    """Parse and verify textual LLVM IR (raises RuntimeError with LLVM's message if invalid)."""
    _initialise_llvm()
    module = llvm.parse_assembly(llvm_ir)
    module.verify()
    return module


def llvm_ir_to_ptx(llvm_ir: str, arch: str = DEFAULT_ARCH, *, optimise_first: bool = True) -> str:
    """Compile textual LLVM IR for the NVPTX triple to PTX text for ``arch``.

    ``llvm_ir`` should set ``target triple = "nvptx64-nvidia-cuda"`` (the llvmlite.ir modules built
    by :mod:`.nvvm` do). The result is plain text that ``ptxas`` or the CUDA driver accept.
    """
    module = parse_llvm_ir(llvm_ir)
    if optimise_first:
        optimise(module, arch)
    return nvptx_target_machine(arch).emit_assembly(module)


def optimised_llvm_ir(llvm_ir: str, arch: str = DEFAULT_ARCH) -> str:
    """The LLVM IR after -O3 (what LLVM's NVPTX back end actually turns into PTX)."""
    module = parse_llvm_ir(llvm_ir)
    optimise(module, arch)
    return str(module)
