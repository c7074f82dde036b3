"""The op registry is the one place an op is described: the reference is generated from it, the
interpreter and the folder use it, both back ends lower what it lists, and a new op added by the
README's checklist works end to end (front end, passes, interpreter, CPU, GPU PTX)."""

from pathlib import Path

import pytest
import torch

import mini_compiler
import mini_compiler.language as tl
from mini_compiler.backends import llvm_core
from mini_compiler.backends.gpu import lowering as gpu_lowering
from mini_compiler.backends.gpu.ptxas import find_ptxas
from mini_compiler.frontend.builtins.math import MathBuiltins
from mini_compiler.ir import registry
from mini_compiler.ir import semantics as S

README = Path(mini_compiler.__file__).with_name("README.md")
REFERENCE = Path(mini_compiler.__file__).with_name("IR_REFERENCE.md")


def test_reference_is_generated_from_the_registry():
    text = REFERENCE.read_text()
    assert registry.reference() in text, (
        "IR_REFERENCE.md is out of date: python -m mini_compiler.ir.registry > "
        "mini_compiler/IR_REFERENCE.md")


def test_every_computing_op_has_a_meaning_and_a_lowering():
    for name, op in registry.OPS.items():
        if op.pure:
            assert op.semantics is not None, f"{name} has no interpreter semantics"
        if op.family in ("binary", "comparison", "unary"):
            assert name in llvm_core.ELEMENT_RULES, f"{name} has no LLVM rule"
            assert name in gpu_lowering.ELEMENTWISE, f"{name} has no GPU rule"
    assert registry.OPS["gpu.convert_layout"].semantics is not None


def test_adding_an_op_by_the_checklist(monkeypatch):
    """README, "Adding an op": a cube op, x * x * x, through every step."""
    # 1. the record: family, meaning for the interpreter, constant folder, doc
    monkeypatch.setitem(registry.OPS, "tile.cube", registry.OpDef(
        "tile.cube", "unary", "x", "type(x)", "x * x * x",
        semantics=S._unary(lambda v: v * v * v), fold=lambda a: a * a * a))
    # 2. the LLVM rule, shared by both back ends
    monkeypatch.setitem(llvm_core.ELEMENT_RULES, "tile.cube", lambda b, element, x: (
        b.fmul(b.fmul(x, x), x) if element.is_float else b.mul(b.mul(x, x), x)))
    # 3. the front end: tl.cube(x) in the math family
    monkeypatch.setattr(tl, "BUILTINS", tl.BUILTINS + ("cube",), raising=True)
    monkeypatch.setattr(MathBuiltins, "builtin_cube", lambda self, node, args, kwargs: (
        self.builder.create_value("tile.cube", [args[0]], args[0].type)), raising=False)

    @mini_compiler.jit
    def cube_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask)
        three = tl.cube(tl.full((BLOCK,), 3, tl.int32))
        tl.store(out_ptr + offs, tl.cube(x) + three.to(tl.float32), mask=mask)

    x = torch.randn(50)
    expected = x ** 3 + 27
    for backend in (None, "interpreter"):
        out = torch.full((50,), float("nan"))
        cube_kernel[(1,)](x, out, 50, BLOCK=64, backend=backend)
        torch.testing.assert_close(out, expected)
    stages = cube_kernel.stages(x, out, 50, BLOCK=64)
    assert stages["tile"].count("tile.cube") == 2
    assert stages["tile.constant_fold"].count("tile.cube") == 1  # 3**3 was folded
    if find_ptxas() is not None:
        from mini_compiler.backends.gpu import compile_for_gpu, ptxas_report

        compiled = compile_for_gpu(cube_kernel, x, out, 50, BLOCK=64)
        assert "tile.cube" in compiled.asm["tile.gpu"]
        ptxas_report(compiled).kernel()


def test_readme_has_the_checklist():
    text = README.read_text()
    assert "## Adding an op" in text
    for step in ("ir/registry.py", "llvm_core.py", "builtins/", "IR_REFERENCE.md"):
        assert step in text, step


@pytest.mark.parametrize("name", ["tile.add", "tile.reduce", "tile.load"])
def test_registry_purity(name):
    assert registry.is_pure(name) == (name != "tile.load")
