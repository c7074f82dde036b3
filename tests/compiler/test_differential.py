"""Differential test: random kernels (``fuzz_kernels.py``) run by mini_compiler and by Triton's
interpreter must agree; on the GPU path they must compile to PTX that ptxas assembles.

CI runs a fixed set of seeds (``MINI_COMPILER_FUZZ_KERNELS``, default 40, from
``MINI_COMPILER_FUZZ_SEED``, default 0: about 20 s on two cores); a longer run, e.g. 500 kernels
from seed 1000 (about two minutes)::

    MINI_COMPILER_FUZZ_KERNELS=500 MINI_COMPILER_FUZZ_SEED=1000 \
        pytest tests/compiler/test_differential.py

A failure names the seed: ``fuzz_kernels.generate(seed).source`` is the kernel.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fuzz_kernels import generate, module_text

import mini_compiler
from mini_compiler.backends.gpu.ptxas import find_ptxas

COUNT = int(os.environ.get("MINI_COMPILER_FUZZ_KERNELS", "40"))
FIRST = int(os.environ.get("MINI_COMPILER_FUZZ_SEED", "0"))
ORACLE = Path(__file__).with_name("triton_oracle.py")


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    """(cases, imported module of kernels, Triton's results by kernel name)."""
    folder = tmp_path_factory.mktemp("fuzz")
    cases = [generate(seed) for seed in range(FIRST, FIRST + COUNT)]
    module_path = folder / "fuzz_module.py"
    module_path.write_text(module_text(cases))
    torch.save({c.name: (c.inputs, c.constexprs, c.grid, c.outputs) for c in cases},
               folder / "cases.pt")
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, str(ORACLE), str(module_path), str(folder / "cases.pt"),
                           str(folder / "results.pt")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    spec = importlib.util.spec_from_file_location(f"fuzz_module_{FIRST}", module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return cases, module, torch.load(folder / "results.pt")


def _launch(case, module, backend):
    args = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in case.inputs.items()}
    kernel = mini_compiler.jit(getattr(module, case.name))
    kernel[case.grid](**args, **case.constexprs, backend=backend)
    return [args[o] for o in case.outputs]


@pytest.mark.parametrize("backend", [None, "interpreter"], ids=["cpu", "interpreter"])
def test_random_kernels_agree_with_triton(fuzz, backend):
    cases, module, expected = fuzz
    rejected = [c.seed for c in cases if isinstance(expected[c.name], str)]
    assert len(rejected) <= len(cases) // 10, (
        f"Triton rejected too many generated kernels (seeds {rejected}): the generator is "
        f"broken; first error: {expected[cases[0].name] if rejected else ''}")
    failures = []
    for case in cases:
        want = expected[case.name]
        if isinstance(want, str):
            continue
        try:
            got = _launch(case, module, backend)
        except Exception as e:  # noqa: BLE001 - every failure is reported with its seed
            if os.environ.get("MINI_COMPILER_FUZZ_RAISE"):
                raise
            failures.append(f"seed {case.seed}: {type(e).__name__}: {str(e)[:300]}")
            continue
        rtol, atol = case.tolerance()
        for g, w in zip(got, want, strict=True):
            try:
                torch.testing.assert_close(g.double(), w.double(), rtol=rtol, atol=atol,
                                           equal_nan=True)
            except AssertionError as e:
                failures.append(f"seed {case.seed}: {str(e)[:300]}")
    assert not failures, "\n".join(failures) + "\n(replay: fuzz_kernels.generate(seed).source)"


@pytest.mark.skipif(find_ptxas() is None, reason="no ptxas (Triton's Linux wheel carries one)")
def test_random_kernels_assemble_for_the_gpu(fuzz):
    from mini_compiler.backends import gpu

    cases, module, expected = fuzz
    failures = []
    for case in cases:
        if isinstance(expected[case.name], str):
            continue
        args = [v for v in case.inputs.values()]
        try:
            compiled = gpu.compile_for_gpu(getattr(module, case.name), *args, **case.constexprs)
            gpu.ptxas_report(compiled).kernel()
        except Exception as e:  # noqa: BLE001
            failures.append(f"seed {case.seed}: {type(e).__name__}: {str(e)[:300]}")
    assert not failures, "\n".join(failures)
