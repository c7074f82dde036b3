"""Triton's own GPU IR for a kernel, without a GPU, to set beside mini_compiler's.

``triton.compile`` with a CUDA target runs Triton's whole pipeline on a machine without a GPU
(it needs no driver until a launch). Its stages: ``ttir`` (Triton IR, like our ``tile``),
``ttgir`` (TritonGPU IR: every tensor with a layout, like our ``tile.gpu``), ``llir`` and
``ptx``. It runs in a separate process because a process that runs Triton's interpreter
(``TRITON_INTERPRET=1``, the course's CPU mode) cannot also use Triton's GPU compiler.

:func:`triton_stages` returns those texts; :func:`ideas_in_ttgir` finds in TritonGPU IR the
ideas mini_compiler implements, under Triton's names.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys

_COMPILE = r"""
import importlib, json, os, sys
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

job = json.loads(sys.stdin.read())
sys.path[:0] = job["path"]
try:
    import course.env
    course.env._chosen = course.env.Environment("cuda", "sm_%d" % job["arch"], "compiling only")
except ImportError:
    pass
kernel = getattr(importlib.import_module(job["module"]), job["name"])
attrs = {(i,): [["tt.divisibility", 16]] for i in job["divisible"]}
source = ASTSource(fn=kernel, signature=job["signature"], constexprs=job["constexprs"],
                   attrs=attrs)
compiled = triton.compile(source, target=GPUTarget("cuda", job["arch"], 32),
                          options={"num_warps": job["num_warps"],
                                   "num_stages": job["num_stages"]})
print(json.dumps({k: v for k, v in compiled.asm.items() if isinstance(v, str)}))
"""


def triton_stages(kernel, signature: dict[str, str], constexprs: dict, *, num_warps: int = 4,
                  num_stages: int = 2, arch: int = 80,
                  divisible: tuple[str, ...] = ()) -> dict[str, str]:
    """Triton's stages (``ttir``, ``ttgir``, ``llir``, ``ptx``) of ``kernel`` (a ``@triton.jit``
    function defined in an importable module) for ``sm_<arch>``.

    ``signature`` maps every parameter to a Triton type (``"*fp16"``, ``"i32"``, or
    ``"constexpr"`` with its value in ``constexprs``); ``divisible`` names the parameters to
    treat as multiples of 16, as Triton's launcher does for aligned tensors and sizes.
    ``arch=80`` gives the ``mma.sync`` path that mini_compiler also takes (on ``90`` Triton uses
    Hopper's ``wgmma``).
    """
    fn = getattr(kernel, "fn", kernel)
    params = list(signature)
    job = {"module": fn.__module__, "name": fn.__name__, "signature": signature,
           "constexprs": constexprs, "num_warps": num_warps, "num_stages": num_stages,
           "arch": arch, "divisible": [params.index(p) for p in divisible],
           "path": [p for p in sys.path if p]}
    if inspect.getmodule(fn) is None or fn.__module__ == "__main__":
        raise ValueError(f"triton_stages: {fn.__name__} must be defined in an importable module")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", _COMPILE], input=json.dumps(job),
                            capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"Triton could not compile {fn.__name__} for sm_{arch}:\n"
                           f"{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# Triton's name for an idea -> mini_compiler's name for it.
TRITON_NAMES = {
    "#ttg.blocked": "#blocked (layouts.py)",
    "#ttg.nvidia_mma": "#mma (mma_layouts.py)",
    "#ttg.dot_op": "#dot_op",
    "#ttg.swizzled_shared": "#shared with a swizzle",
    "ttg.local_alloc": "gpu.local_alloc",
    "ttg.local_load": "gpu.local_load",
    "ttg.convert_layout": "gpu.convert_layout",
    "ttg.async_copy_global_to_local": "(not in mini_compiler: cp.async pipelining)",
    "ttg.async_wait": "(not in mini_compiler: cp.async pipelining)",
    "tt.dot": "tile.dot",
    "tt.trans": "tile.trans",
}


def ideas_in_ttgir(ttgir: str) -> list[tuple[str, int, str]]:
    """(Triton's name, how often it occurs in ``ttgir``, mini_compiler's name) for each idea in
    :data:`TRITON_NAMES` that occurs."""
    found = []
    for name, ours in TRITON_NAMES.items():
        count = len(re.findall(re.escape(name) + r"\b", ttgir))
        if count:
            found.append((name, count, ours))
    return found
