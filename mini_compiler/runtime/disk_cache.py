"""The on-disk compile cache: a restarted notebook finds the kernels it compiled before.

A compiled kernel is stored under a key made of everything that decides the code:

* the **source** of the kernel and of every jit function it can call (the functions among its
  globals, and theirs, found once per kernel);
* the **specialisation** key (dtypes, alignments, constexpr values...) and the launch options;
* the **compiler version**: a hash of ``mini_compiler``'s own source files, so editing the
  compiler (say, a pass in an exercise) never reuses old code;
* the **target**: the back end and what it compiles for (the host CPU's name and features, or
  the GPU architecture) and the LLVM version.

What is stored: for the GPU, the whole compiled kernel (its PTX is all a launch needs); for the
CPU, the stages' text and the Tile IR, from which only the last step (machine code from the
already optimised LLVM IR) is redone. Nothing is cached while an exercise rule replaces one of the
compiler's own (the rule tables differ from their defaults), nor while ``MINI_COMPILER_DEBUG``
asks to see the stages as they are made. ``MINI_COMPILER_CACHE=0`` turns the
cache off; ``MINI_COMPILER_CACHE_DIR`` moves it (default ``~/.cache/mini_compiler``). A broken or
unreadable entry is ignored (and compiled again), never an error.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
import pickle
from pathlib import Path

import llvmlite

from ..frontend.source import python_function_of

FORMAT = 1  # bump when what is stored changes


def enabled() -> bool:
    return os.environ.get("MINI_COMPILER_CACHE", "1") not in ("0", "false", "False", "")


def cache_dir() -> Path:
    return Path(os.environ.get("MINI_COMPILER_CACHE_DIR")
                or Path.home() / ".cache" / "mini_compiler")


@functools.cache
def compiler_version() -> str:
    """A hash of mini_compiler's source files (computed once per process)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


@functools.cache
def target(backend: str) -> str:
    """What the machine code depends on besides the kernel: CPU model and features, or arch."""
    if backend == "cpu":
        import llvmlite.binding as llvm

        detail = f"{llvm.get_host_cpu_name()}:{llvm.get_host_cpu_features().flatten()}"
    elif backend == "cuda":
        from ..backends.gpu.ptx import DEFAULT_ARCH

        detail = DEFAULT_ARCH
    else:
        detail = ""
    return f"{backend}:{detail}:llvmlite {llvmlite.__version__}"


def source_fingerprint(fn) -> str:
    """A hash of ``fn``'s source and of every jit function reachable through its globals."""
    digest = hashlib.sha256()
    seen: set[int] = set()
    todo = [fn]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            digest.update(inspect.getsource(current).encode())
        except (OSError, TypeError):
            digest.update(repr(current).encode())
        for value in list(getattr(current, "__globals__", {}).values()):
            inner = python_function_of(value)
            if inner is not None and id(inner) not in seen:
                todo.append(inner)
    return digest.hexdigest()


def rules_are_defaults() -> bool:
    """True unless an exercise rule replaces one of the compiler's own (then nothing is cached:
    the stored code was made with other rules)."""
    from ..backends import llvm_core
    from ..backends.gpu import compiler as gpu_compiler
    from ..frontend import control_flow
    from ..passes import constant_fold
    from ..passes.gpu import axis_info, register_maps

    return (constant_fold.FOLDERS == constant_fold.DEFAULT_FOLDERS
            and llvm_core.ELEMENT_RULES == llvm_core.DEFAULT_ELEMENT_RULES
            and not llvm_core.LEARNER_RULES
            and gpu_compiler.RULES == gpu_compiler.DEFAULT_RULES
            and axis_info.RULES == axis_info.DEFAULT_RULES
            and control_flow.RULES == control_flow.DEFAULT_RULES
            and register_maps.RULES == register_maps.DEFAULT_RULES)


def key(fingerprint: str, spec_key: tuple, backend: str, options: tuple) -> str:
    text = repr((FORMAT, fingerprint, spec_key, backend, options, compiler_version(),
                 target(backend)))
    return hashlib.sha256(text.encode()).hexdigest()


def _path(entry: str) -> Path:
    return cache_dir() / entry[:2] / f"{entry}.pkl"


def load(entry: str):
    """The stored CompiledKernel, made ready to launch, or None."""
    path = _path(entry)
    try:
        with path.open("rb") as f:
            stored = pickle.load(f)
        return _revive(stored)
    except Exception:  # noqa: BLE001 - a bad entry is a miss, never an error
        return None


def store(entry: str, compiled) -> None:
    """Write ``compiled`` (quietly gives up if it cannot be written or pickled)."""
    try:
        stored = _freeze(compiled)
        if stored is None:
            return
        path = _path(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with temporary.open("wb") as f:
            pickle.dump(stored, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)  # atomic: a reader sees the old entry or the new one
    except Exception:  # noqa: BLE001
        return


def _freeze(compiled):
    """What to pickle: the kernel without its live parts (loaded modules, JIT engines)."""
    frozen = copy.copy(compiled)
    if compiled.backend == "cuda":
        artifact = copy.copy(compiled.artifact)
        artifact._loaded = {}
        artifact._packed = {}
        frozen.artifact = artifact
        return frozen
    if compiled.backend == "cpu":
        artifact = compiled.artifact
        frozen.artifact = ("cpu", dict(artifact.asm), artifact.launcher.checked_ops,
                           artifact.launcher.work_per_program)
        return frozen
    return None


def _revive(stored):
    if stored.backend == "cpu":
        from ..backends.cpu import from_optimised_ir

        _, asm, checked_ops, work = stored.artifact
        stored.artifact = from_optimised_ir(stored.name, asm, checked_ops, work)
    return stored
