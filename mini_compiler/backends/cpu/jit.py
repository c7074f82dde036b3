"""LLVM module -> optimised machine code in this process (llvmlite's MCJIT).

``compile_module`` parses the module text, runs LLVM's ``O3`` pipeline (the new pass manager:
``create_pass_builder`` with ``PipelineTuningOptions(speed_level=3)``) for the host CPU with all its
vector features, and hands it to MCJIT. It returns the addresses of ``kernel`` and ``wait_all``
and the texts of the optimised IR and of the x86 assembly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import llvmlite.binding as llvm

_INIT_LOCK = threading.Lock()
_initialised = False


def target_machine():
    """A new target machine for the host CPU (LLVM's native target, all host CPU features).

    A new one per compilation because an MCJIT engine takes ownership of the machine it is given.
    """
    global _initialised
    with _INIT_LOCK:
        if not _initialised:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialised = True
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, jit=True)


@dataclass
class JitModule:
    engine: object  # keeps the machine code alive
    address: int
    optimised_ir: str
    assembly: str
    wait_address: int = 0


def run_o3(module: llvm.ModuleRef, tm, speed_level: int = 3) -> None:
    options = llvm.PipelineTuningOptions(speed_level=speed_level)
    options.loop_vectorization = True
    options.slp_vectorization = True
    pass_builder = llvm.create_pass_builder(tm, options)
    manager = pass_builder.getModulePassManager()
    manager.run(module, pass_builder)


def compile_module(llvm_ir: str, want_assembly: bool = True, optimise: bool = True
                   ) -> JitModule:
    """Parse, optimise (unless ``optimise`` is False: the IR is already optimised) and JIT."""
    tm = target_machine()
    module = llvm.parse_assembly(llvm_ir)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    if optimise:
        run_o3(module, tm)
    optimised = str(module)
    assembly = tm.emit_assembly(module) if want_assembly else ""
    engine = llvm.create_mcjit_compiler(module, tm)
    engine.finalize_object()
    engine.run_static_constructors()
    address = engine.get_function_address("kernel")
    wait_address = engine.get_function_address("wait_all")
    return JitModule(engine, address, optimised, assembly, wait_address)
