"""What a Triton kernel asks of an SM, read from the compiled kernel itself, without a GPU.

Triton can compile for a GPU that is not there: give ``triton.compile`` a target (``sm_90``, the
Hopper SM of the H100 and H200) and it produces the PTX it would load. The ``ptxas`` that ships in
Triton's wheel assembles that PTX and, with ``-v``, says how many registers each thread needs and
whether any values *spill* to local memory. From the registers and the shared memory per program
follows the **occupancy**: how many warps an SM can keep resident at once, out of the 64 it can
hold. More resident warps give the SM more independent work to switch to while others wait for
memory; a kernel limited to a few warps per SM hides latency less well.

The compilation runs in a separate Python process, because a process that uses Triton's
interpreter (every notebook on a machine without a GPU) cannot also use Triton's GPU compiler.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

# The Hopper SM (compute capability 9.0), from NVIDIA's CUDA C++ Programming Guide, "Compute
# Capabilities" table, and the Hopper tuning guide.
SM90 = {
    "registers": 65_536,  # 32-bit registers per SM
    "max_warps": 64,  # resident warps per SM (2048 threads)
    "max_programs": 32,  # resident thread blocks per SM
    "shared_bytes": 228 * 1024,  # shared memory per SM (of 256 KB combined with L1)
    "register_unit": 256,  # registers are allocated per warp in units of 256
    "reserved_shared_bytes": 1024,  # shared memory the system keeps per thread block
}

_COMPILE = r"""
import importlib.util, json, os, sys, tempfile
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

job = json.loads(sys.stdin.read())
with tempfile.TemporaryDirectory() as folder:  # Triton reads a kernel's source from its file
    if job["module"]:  # a course module: import it as on a GPU, with the jit helpers it calls
        import course.env
        course.env._chosen = course.env.Environment("cuda", "sm_90", "compiling for sm_90 only")
        module = importlib.import_module(job["module"])
    else:  # a kernel defined in a notebook: its own source, using only tl
        path = os.path.join(folder, "kernel_source.py")
        with open(path, "w") as f:
            f.write("import triton\nimport triton.language as tl\n\n" + job["source"])
        spec = importlib.util.spec_from_file_location("kernel_source", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    source = ASTSource(fn=getattr(module, job["name"]), signature=job["signature"],
                       constexprs=job["constexprs"])
    compiled = triton.compile(
        source, target=GPUTarget("cuda", 90, 64),
        options={"num_warps": job["num_warps"], "num_stages": job["num_stages"]})
# Assemble with the ptxas Triton chose for sm_90: it reads the PTX version Triton wrote
# (Triton 3.9 moved sm_90 to its newer ptxas and a newer PTX version).
# (Triton 3.9 moved sm_90 to its newer ptxas and a newer PTX version). Older Triton releases
# name it differently, or have a single ptxas: then the default one is right.
try:
    from triton.backends.nvidia.compiler import get_ptxas
    try:
        chosen = get_ptxas(90).path
    except TypeError:  # releases whose get_ptxas takes no architecture
        chosen = get_ptxas().path
except Exception:  # noqa: BLE001 - no such helper: mini_compiler finds Triton's ptxas itself
    chosen = None
print(json.dumps({"ptx": compiled.asm["ptx"], "shared": compiled.metadata.shared,
                  "ptxas": chosen}))
"""


@dataclass(frozen=True)
class CompiledResources:
    """Per-program resources of a kernel compiled for ``sm_90``, and the occupancy they allow."""

    name: str
    num_warps: int
    registers: int  # per thread
    spill_bytes: int  # spill stores per thread (0: nothing spilled)
    shared_bytes: int  # per program

    @property
    def programs_per_sm(self) -> int:
        unit = SM90["register_unit"]
        per_warp = -(-self.registers * 32 // unit) * unit
        by_registers = (SM90["registers"] // per_warp) // self.num_warps
        by_warps = SM90["max_warps"] // self.num_warps
        # CUDA reserves 1 KB of shared memory per resident program for itself
        by_shared = SM90["shared_bytes"] // (self.shared_bytes + SM90["reserved_shared_bytes"])
        return min(by_registers, by_warps, by_shared, SM90["max_programs"])

    @property
    def occupancy(self) -> float:
        """Resident warps per SM over the 64 an SM can hold."""
        return self.programs_per_sm * self.num_warps / SM90["max_warps"]

    def __str__(self) -> str:
        spills = f"{self.spill_bytes} bytes of spills" if self.spill_bytes else "no spills"
        return (
            f"{self.num_warps:>2} warps: {self.registers:>3} registers per thread, {spills}, "
            f"{self.programs_per_sm} program(s) per SM = {self.programs_per_sm * self.num_warps} "
            f"of 64 warps ({100 * self.occupancy:.1f}% occupancy)"
        )


def _kernel_source(kernel) -> tuple[str, str, str | None]:
    """Name, source, and the importable module (a ``course.`` module) the kernel comes from."""
    fn = getattr(kernel, "fn", kernel)
    module = fn.__module__ if fn.__module__.startswith("course.") else None
    return fn.__name__, textwrap.dedent(inspect.getsource(fn)), module


def compile_for_sm90(
    kernel, signature: dict[str, str], constexprs: dict, *, num_warps: int, num_stages: int = 3
) -> CompiledResources:
    """Compile ``kernel`` for ``sm_90`` with Triton's compiler and read its resources with
    ``ptxas -v``. ``kernel`` is a ``@triton.jit`` function of a ``course.`` module (imported as on
    a GPU, so the jit functions it calls come along) or one whose body uses only ``tl``.

    ``signature`` maps every parameter to a Triton type (``"*fp32"``, ``"i32"``, ``"constexpr"``);
    ``constexprs`` gives the constexpr values.
    """
    from mini_compiler.backends.gpu import ptxas

    name, source, module = _kernel_source(kernel)
    job = {
        "name": name,
        "source": source,
        "module": module,
        "signature": signature,
        "constexprs": constexprs,
        "num_warps": num_warps,
        "num_stages": num_stages,
    }
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Triton could not compile {name} for sm_90:\n{result.stderr[-2000:]}")
    compiled = json.loads(result.stdout.strip().splitlines()[-1])
    report = ptxas.assemble(  # Triton targets sm_90a
        compiled["ptx"], arch="sm_90a", ptxas=Path(compiled["ptxas"]) if compiled["ptxas"] else None
    ).kernel()
    return CompiledResources(
        name=name,
        num_warps=num_warps,
        registers=report.registers,
        spill_bytes=report.spill_store_bytes,
        shared_bytes=int(compiled["shared"]),
    )
