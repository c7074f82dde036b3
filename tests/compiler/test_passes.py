"""Unit tests per pass (printed-IR expectations) and the interpret-after-every-pass harness."""

import textwrap

import compiler_helpers as H
import pytest
import torch

import mini_compiler
import mini_compiler.language as tl
from mini_compiler.frontend.codegen import ParamSpec, build_tile_ir
from mini_compiler.ir.printer import print_function
from mini_compiler.ir.types import PointerType, f32, i32
from mini_compiler.passes import (
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
    infer_shapes,
)
from mini_compiler.passes.infer_shapes import verify_explicit_shapes


def ir_of(fn, **constexprs):
    """Tile IR of a kernel whose runtime parameters are all f32 pointers or i32 ints."""
    import inspect

    params = []
    for name in inspect.signature(fn).parameters:
        if name in constexprs:
            params.append(ParamSpec(name, "constexpr", value=constexprs[name]))
        elif name.endswith("_ptr"):
            params.append(ParamSpec(name, "pointer", PointerType(f32)))
        else:
            params.append(ParamSpec(name, "int", i32))
    return build_tile_ir(fn, params)


def scale_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(x_ptr + offs, x * 2.0, mask=offs < n)


def test_front_end_prints_stable_ir():
    text = print_function(ir_of(scale_kernel, BLOCK=128))
    assert text == textwrap.dedent("""\
        tile.func @scale_kernel(%x_ptr: !ptr<f32>, %n: i32) constexprs {BLOCK = 128} {
          %0 = tile.program_id {axis = 0} : i32
          %1 = tile.constant 128 : i32
          %2 = tile.mul %0, %1 : i32
          %3 = tile.arange {start = 0, end = 128} : tile<128xi32>
          %4 = tile.add %2, %3 : tile<128xi32>
          %5 = tile.addptr %x_ptr, %4 : tile<128x!ptr<f32>>
          %6 = tile.lt %4, %n : tile<128xi1>
          %7 = tile.constant 0.0 : f32
          %8 = tile.load %5, mask %6, other %7 : tile<128xf32>
          %9 = tile.addptr %x_ptr, %4 : tile<128x!ptr<f32>>
          %10 = tile.constant 2.0 : f32
          %11 = tile.mul %8, %10 : tile<128xf32>
          %12 = tile.lt %4, %n : tile<128xi1>
          tile.store %9, %11, mask %12 : tile<128x!ptr<f32>>
        }
        """)


def test_infer_shapes_makes_broadcasts_explicit():
    fn = infer_shapes(ir_of(scale_kernel, BLOCK=128))
    text = print_function(fn)
    assert "%4 = tile.splat %2 : i32 -> tile<128xi32>" in text
    assert "tile.splat %n : i32 -> tile<128xi32>" in text
    assert "tile.splat %x_ptr : !ptr<f32> -> tile<128x!ptr<f32>>" in text
    verify_explicit_shapes(fn)


def test_infer_shapes_inserts_casts_and_2d_broadcasts():
    def outer(x_ptr, BLOCK: tl.constexpr):
        a = tl.arange(0, BLOCK)
        grid = a[:, None] + a[None, :].to(tl.float16)
        tl.store(x_ptr + a[:, None] * BLOCK + a[None, :], grid)

    fn = infer_shapes(ir_of(outer, BLOCK=16))
    text = print_function(fn)
    assert "tile.cast" in text and "tile<16x1xi32> -> tile<16x1xf16>" in text
    assert "tile.broadcast" in text and "-> tile<16x16xf16>" in text
    verify_explicit_shapes(fn)
    with pytest.raises(AssertionError):
        verify_explicit_shapes(ir_of(outer, BLOCK=16))  # the raw IR is not in that form


def test_constant_folding_folds_tiles_and_identities():
    def k(x_ptr, stride, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        three = tl.full((BLOCK,), 3, tl.int32) * 2
        tl.store(x_ptr + offs * 1 + three, offs.to(tl.float32))

    fn = fold_constants(infer_shapes(ir_of(k, BLOCK=32)))
    text = print_function(eliminate_dead_code(fn))
    assert "tile.full 6 : tile<32xi32>" in text
    assert "tile.mul" not in text  # offs * 1 became offs, 3 * 2 became 6


def test_cse_merges_repeated_expressions():
    fn = eliminate_common_subexpressions(infer_shapes(ir_of(scale_kernel, BLOCK=64)))
    text = print_function(eliminate_dead_code(fn))
    assert text.count("tile.lt") == 1  # `offs < n` was written twice
    assert text.count("tile.addptr") == 1


def test_dce_removes_unused_values_but_keeps_stores():
    def k(x_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        unused = tl.exp(offs.to(tl.float32))  # noqa: F841 - dead on purpose
        tl.store(x_ptr + offs, 1.0)

    fn = eliminate_dead_code(infer_shapes(ir_of(k, BLOCK=16)))
    text = print_function(fn)
    assert "tile.exp" not in text and "tile.store" in text


def test_loops_and_ifs_print_with_regions():
    def k(x_ptr, n, BLOCK: tl.constexpr):
        acc = tl.zeros((BLOCK,), tl.float32)
        for _i in range(0, n):
            acc += 1.0
        if n > 3:
            acc = acc * 2.0
        tl.store(x_ptr + tl.arange(0, BLOCK), acc)

    text = print_function(ir_of(k, BLOCK=16))
    assert "tile.for %" in text and "iter_args(" in text and "tile.yield" in text
    assert "tile.if" in text and "} else {" in text


def test_locations_are_recorded():
    fn = ir_of(scale_kernel, BLOCK=16)
    text = print_function(fn, locations=True)
    import inspect

    first = inspect.getsourcelines(scale_kernel)[1]
    assert f'loc("test_passes.py":{first + 1}:' in text


@pytest.mark.parametrize("kernel", ["add", "softmax", "matmul", "attention"])
def test_every_pass_preserves_meaning(kernel):
    """Interpret the IR after every pass; all stages must agree with the un-optimised IR."""
    if kernel == "add":
        x, y = torch.randn(300), torch.randn(300)
        out = torch.empty(300)
        results = H.interpret_after_every_pass(H.add, (3,), (x, y, out, 300),
                                               {"BLOCK_SIZE": 128}, [out])
        reference = x + y
    elif kernel == "softmax":
        x = torch.randn(5, 100)
        out = torch.empty_like(x)
        grid, args, meta = H.softmax_call(x, out)
        results = H.interpret_after_every_pass(H.softmax, grid, args, meta, [out])
        reference = torch.softmax(x, 1)
    elif kernel == "matmul":
        a, b = torch.randn(40, 20), torch.randn(20, 36)
        c = torch.empty(40, 36)
        grid, args, meta = H.matmul_call(a, b, c, 16)
        results = H.interpret_after_every_pass(H.matmul, grid, args, meta, [c])
        reference = a @ b
    else:
        q, k, v = (torch.randn(1, 1, 40, 16) for _ in range(3))
        o = torch.empty_like(q)
        grid, args, meta = H.attention_call(q, k, v, o, True, 16)
        results = H.interpret_after_every_pass(H.attention, grid, args, meta, [o])
        reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert list(results) == ["tile", "tile.infer_shapes", "tile.constant_fold", "tile.cse",
                             "tile.dce"]
    first = results["tile"][0]
    torch.testing.assert_close(first, reference, atol=1e-4, rtol=1e-4)
    for name, (out,) in results.items():
        torch.testing.assert_close(out, first, atol=1e-6, rtol=1e-6, msg=name)


def test_stages_are_available_for_given_arguments():
    x = torch.randn(100)
    stages = H.add.stages(x, x, x, 100, BLOCK_SIZE=64)
    assert set(stages) >= {"tile", "tile.infer_shapes", "tile.constant_fold", "tile.cse",
                           "tile.dce", "llvm", "llvm.opt", "x86"}
    assert "define void @\"kernel\"" in stages["llvm"] or "define void @kernel" in stages["llvm"]
    assert "ret" in stages["x86"]
    compiled = H.add.compile(x, x, x, 100, BLOCK_SIZE=64)
    assert compiled.asm["tile"].startswith("tile.func @add_kernel(")
    assert mini_compiler.CompiledKernel is type(compiled)
