"""Differential test, property-based: for every random kernel Hypothesis makes
(``fuzz_kernels.py``), mini_compiler's CPU back end and its interpreter compute what Triton's
interpreter computes, and (where ptxas is installed) the GPU back end compiles it to PTX that
ptxas assembles.

Hypothesis draws each kernel's random choices; when a kernel fails, it shrinks the choices to a
smaller kernel that still fails and reports that one, with its source. CI runs
``MINI_COMPILER_FUZZ_KERNELS`` kernels (default 100: about 20 s on two cores) from the
fixed Hypothesis seed ``MINI_COMPILER_FUZZ_SEED`` (default 0), so every run of the suite tries
the same kernels. A longer run, e.g. 500 kernels from another seed::

    MINI_COMPILER_FUZZ_KERNELS=500 MINI_COMPILER_FUZZ_SEED=1000 \\
        pytest tests/compiler/test_differential.py

A failure is replayed by running the same command with the same two variables (the message
names them); ``MINI_COMPILER_FUZZ_RAISE=1`` lets the first exception through with its traceback.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fuzz_kernels import FAMILIES, FuzzCase, generate, module_text
from hypothesis import HealthCheck, event, given, note, reject, seed, settings
from hypothesis import strategies as st

import mini_compiler
from mini_compiler.backends.gpu.ptxas import find_ptxas

COUNT = int(os.environ.get("MINI_COMPILER_FUZZ_KERNELS", "100"))
FIRST = int(os.environ.get("MINI_COMPILER_FUZZ_SEED", "0"))
ORACLE = Path(__file__).with_name("triton_oracle.py")
REPLAY = (f"replay: MINI_COMPILER_FUZZ_SEED={FIRST} MINI_COMPILER_FUZZ_KERNELS={COUNT} "
          "pytest tests/compiler/test_differential.py")


class TritonOracle:
    """Triton's interpreter in a process of its own, kept running: one request per kernel."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.numbers = itertools.count()
        env = dict(os.environ, TRITON_INTERPRET="1")
        self.process = subprocess.Popen([sys.executable, str(ORACLE), "--serve"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, case: FuzzCase) -> tuple[list[torch.Tensor] | str, Path]:
        """Triton's outputs for ``case`` (a list of tensors) or the text of its error, and the
        folder of the request (its ``kernels.py`` holds the kernel)."""
        request = self.folder / f"request{next(self.numbers)}"
        request.mkdir()
        (request / "kernels.py").write_text(module_text([case]))
        torch.save({case.name: (case.inputs, case.constexprs, case.grid, case.outputs)},
                   request / "cases.pt")
        self.process.stdin.write(f"{request}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer == "done\n", f"the Triton oracle stopped (exit {self.process.poll()})"
        return torch.load(request / "results.pt")[case.name], request

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    triton = TritonOracle(tmp_path_factory.mktemp("fuzz"))
    yield triton
    triton.close()


def _import(case: FuzzCase, folder: Path):
    """The module holding ``case``'s kernel (written by the oracle's request)."""
    spec = importlib.util.spec_from_file_location(f"fuzz_{folder.name}_{id(case)}",
                                                  folder / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _launch(case: FuzzCase, kernel, backend: str | None) -> list[torch.Tensor]:
    args = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in case.inputs.items()}
    mini_compiler.jit(kernel)[case.grid](**args, **case.constexprs, backend=backend)
    return [args[o] for o in case.outputs]


def _differences(case: FuzzCase, kernel, want: list[torch.Tensor]) -> list[str]:
    """What each of mini_compiler's CPU paths got wrong on ``case`` (empty when all agree)."""
    failures = []
    rtol, atol = case.tolerance()
    for backend in (None, "interpreter"):
        where = "CPU back end" if backend is None else "interpreter"
        try:
            got = _launch(case, kernel, backend)
        except Exception as e:  # noqa: BLE001 - reported with the kernel's source
            if os.environ.get("MINI_COMPILER_FUZZ_RAISE"):
                raise
            failures.append(f"{where}: {type(e).__name__}: {str(e)[:400]}")
            continue
        for g, w in zip(got, want, strict=True):
            try:
                torch.testing.assert_close(g.double(), w.double(), rtol=rtol, atol=atol,
                                           equal_nan=True)
            except AssertionError as e:
                failures.append(f"{where}: {str(e)[:400]}")
    return failures


def _ptxas_failure(case: FuzzCase, kernel) -> str | None:
    from mini_compiler.backends import gpu

    try:
        compiled = gpu.compile_for_gpu(kernel, *case.inputs.values(), **case.constexprs)
        gpu.ptxas_report(compiled).kernel()
    except Exception as e:  # noqa: BLE001
        if os.environ.get("MINI_COMPILER_FUZZ_RAISE"):
            raise
        return f"GPU back end (PTX, ptxas): {type(e).__name__}: {str(e)[:400]}"
    return None


HAVE_PTXAS = find_ptxas() is not None


@seed(FIRST)
@settings(max_examples=COUNT, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(family=st.sampled_from(FAMILIES), choices=st.randoms(use_true_random=False))
def test_random_kernels_agree_with_triton(oracle, family, choices):
    case = generate(0, choices, family)
    event(f"{family} kernel, dtypes {'/'.join(sorted(set(case.dtypes)))}")
    want, folder = oracle.run(case)
    if isinstance(want, str):  # Triton rejects the kernel: no reference to compare with
        event(f"Triton rejects: {want[:60]}")
        note(f"Triton rejected it: {want}")
        reject()
    kernel = getattr(_import(case, folder), case.name)
    failures = _differences(case, kernel, want)
    if HAVE_PTXAS:
        failure = _ptxas_failure(case, kernel)
        failures += [failure] if failure else []
    assert not failures, (
        "mini_compiler disagrees with Triton on this kernel:\n" + case.source
        + f"\ninputs: { {k: getattr(v, 'dtype', v) for k, v in case.inputs.items()} }"
        + f", constexprs {case.constexprs}, grid {case.grid}\n" + "\n".join(failures)
        + f"\n({REPLAY})")



def test_a_planted_bug_is_found(oracle):
    """The comparison can fail: with ``+`` lowered as ``-`` the CPU back end disagrees with
    Triton on an in-place kernel that computes ``v * 2 + 1``, and the interpreter does not."""
    from mini_compiler.hooks import override

    def add_as_sub(builder, element, x, y):
        return builder.fsub(x, y) if element.is_float else builder.sub(x, y)

    case = generate(1, family="aliasing")
    want, folder = oracle.run(case)
    kernel = getattr(_import(case, folder), case.name)
    assert _differences(case, kernel, want) == []
    with override(lowering={"tile.add": add_as_sub}):
        failures = _differences(case, kernel, want)
    assert len(failures) == 1 and failures[0].startswith("CPU back end: Tensor-likes are not close")
