"""Kernels that once compiled to wrong code or crashed the process, each checked against torch.

Each test names the defect it guards against; all run on the CPU back end (and the interpreter
where that adds something). The GPU side of the same kernels is in
``tests/compiler_gpu/test_wrong_code_gpu.py``.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import triton
import triton.language as tl

import mini_compiler


# 1. range with a negative step ---------------------------------------------------------------
@triton.jit
def countdown_kernel(out_ptr, hi, lo, STEP: tl.constexpr):
    total = 0
    count = 0
    for i in range(hi, lo, -STEP):
        total += i
        count += 1
    tl.store(out_ptr, total)
    tl.store(out_ptr + 1, count)


@triton.jit
def runtime_step_kernel(out_ptr, hi, lo, step):
    total = 0
    for i in range(hi, lo, step):
        total += i
    tl.store(out_ptr, total)


@pytest.mark.parametrize("backend", [None, "interpreter"])
@pytest.mark.parametrize("hi,lo,step", [(10, 0, 1), (10, 0, 3), (7, -5, 2), (0, 10, 1)])
def test_negative_step_runs_like_python(backend, hi, lo, step):
    out = torch.full((2,), -1, dtype=torch.int32)
    mini_compiler.jit(countdown_kernel)[(1,)](out, hi, lo, STEP=step, backend=backend)
    expected = list(range(hi, lo, -step))
    assert out.tolist() == [sum(expected), len(expected)]


@pytest.mark.parametrize("hi,lo,step", [(10, 0, -1), (10, 0, -4), (0, 10, 3), (3, 3, -1)])
def test_runtime_step_of_either_sign(hi, lo, step):
    out = torch.full((1,), -1, dtype=torch.int32)
    mini_compiler.jit(runtime_step_kernel)[(1,)](out, hi, lo, step)
    assert out.item() == sum(range(hi, lo, step))


# 2. a load and a store on the same buffer -----------------------------------------------------
@triton.jit
def shift_left_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    values = tl.load(x_ptr + offs + 1, mask=offs + 1 < n)
    tl.store(x_ptr + offs, values, mask=offs + 1 < n)


@triton.jit
def shift_right_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = (offs >= 1) & (offs < n)
    values = tl.load(x_ptr + offs - 1, mask=mask)
    tl.store(x_ptr + offs, values, mask=mask)


@triton.jit
def reverse_in_place_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    values = tl.load(x_ptr + (n - 1 - offs), mask=mask)
    tl.store(x_ptr + offs, values * 2, mask=mask)


@pytest.mark.parametrize("n", [5, 64, 100])
def test_shift_in_place(n):
    x = torch.randn(n)
    expected = x.clone()
    expected[:-1] = x[1:]
    mini_compiler.jit(shift_left_kernel)[(1,)](x, n, BLOCK=triton.next_power_of_2(n))
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("n", [5, 64, 100])
def test_shift_right_in_place(n):
    x = torch.randn(n)
    expected = x.clone()
    expected[1:] = x[:-1]
    mini_compiler.jit(shift_right_kernel)[(1,)](x, n, BLOCK=triton.next_power_of_2(n))
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("n", [7, 128])
def test_reverse_in_place(n):
    x = torch.randn(n)
    expected = x.flip(0) * 2
    mini_compiler.jit(reverse_in_place_kernel)[(1,)](x, n, BLOCK=triton.next_power_of_2(n))
    torch.testing.assert_close(x, expected)


# 3. bitcast ------------------------------------------------------------------------------------
@triton.jit
def bitcast_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x.to(tl.int32, bitcast=True), mask=mask)


@triton.jit
def bad_bitcast_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs).to(tl.int16, bitcast=True))


@pytest.mark.parametrize("backend", [None, "interpreter"])
def test_bitcast_keeps_the_bits(backend):
    x = torch.randn(100) * 1000
    out = torch.zeros(100, dtype=torch.int32)
    mini_compiler.jit(bitcast_kernel)[(1,)](x, out, 100, BLOCK=128, backend=backend)
    assert torch.equal(out, x.view(torch.int32))


def test_bitcast_between_widths_is_an_error():
    with pytest.raises(mini_compiler.CompilationError, match="both types need one width"):
        mini_compiler.jit(bad_bitcast_kernel)[(1,)](
            torch.zeros(16), torch.zeros(16, dtype=torch.int16), BLOCK=16)


# 4. unsigned bytes -------------------------------------------------------------------------------
@triton.jit
def widen_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x.to(tl.float32) + (x > 100).to(tl.float32) + x // 3, mask=mask)


@pytest.mark.parametrize("backend", [None, "interpreter"])
def test_uint8_is_read_as_unsigned(backend):
    x = torch.arange(0, 256, dtype=torch.uint8)
    out = torch.full((256,), float("nan"))
    mini_compiler.jit(widen_kernel)[(1,)](x, out, 256, BLOCK=256, backend=backend)
    wide = x.to(torch.float32)
    expected = wide + (wide > 100).float() + torch.div(x, 3, rounding_mode="floor").float()
    torch.testing.assert_close(out, expected)


# 5. max / min of booleans ------------------------------------------------------------------------
@triton.jit
def any_all_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    flags = tl.load(x_ptr + offs) > 0
    tl.store(out_ptr, tl.max(flags, axis=0))
    tl.store(out_ptr + 1, tl.min(flags, axis=0))


@pytest.mark.parametrize("backend", [None, "interpreter"])
@pytest.mark.parametrize("values,expected", [([1.0] * 8, [1, 1]), ([-1.0] * 8, [0, 0]),
                                             ([1.0, -1.0] * 4, [1, 0])])
def test_max_min_of_booleans(backend, values, expected):
    out = torch.full((2,), -7, dtype=torch.int32)
    mini_compiler.jit(any_all_kernel)[(1,)](torch.tensor(values), out, BLOCK=8, backend=backend)
    assert out.tolist() == expected


# 6. Triton's promotion rules -------------------------------------------------------------------
@triton.jit
def promote_kernel(a_ptr, b_ptr, c_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    a = tl.load(a_ptr + offs)  # f16
    b = tl.load(b_ptr + offs)  # f16
    c = tl.load(c_ptr + offs)  # bf16
    tl.store(out_ptr + offs, a / b)
    tl.store(out_ptr + BLOCK + offs, a % b)
    tl.store(out_ptr + 2 * BLOCK + offs, tl.maximum(a, 0.1))
    tl.store(out_ptr + 3 * BLOCK + offs, a + c)
    tl.store(out_ptr + 4 * BLOCK + offs, a * 3.3)


def test_promotion_follows_triton():
    kernel = mini_compiler.jit(promote_kernel)
    a = torch.randn(16).half()
    b = (torch.rand(16) + 0.5).half()
    c = torch.randn(16).bfloat16()
    out = torch.zeros(5 * 16)
    tile_ir = kernel.stages(a, b, c, out, BLOCK=16)["tile"]
    assert "tile.div" in tile_ir
    kernel[(1,)](a, b, c, out, BLOCK=16)
    af, bf = a.float(), b.float()
    torch.testing.assert_close(out[:16], af / bf)                      # computed in f32
    torch.testing.assert_close(out[16:32], torch.fmod(af, bf))         # f32 as well
    torch.testing.assert_close(out[32:48], torch.maximum(af, torch.tensor(0.1)))  # f32 max
    torch.testing.assert_close(out[48:64], (a + c.half()).float())     # f16 + bf16 is f16
    torch.testing.assert_close(out[64:], (a * torch.tensor(3.3).half()).float())  # literal is f16
    lines = [line for line in tile_ir.splitlines() if "tile.div" in line or "tile.mod" in line]
    assert all("f32" in line for line in lines), lines


# 7. patterns that used to kill the process -----------------------------------------------------
CRASHERS = textwrap.dedent('''
    import torch, triton, triton.language as tl, mini_compiler

    @triton.jit
    def to_half(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask).to(tl.float16), mask=mask)

    @triton.jit
    def divide(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        a = tl.load(x_ptr + offs, mask=mask)
        b = tl.load(y_ptr + offs, mask=mask, other=0)
        tl.store(out_ptr + offs, a // b + a % b, mask=mask)

    x = torch.randn(1000, dtype=torch.float64) * 100
    x[:4] = torch.tensor([65520.0, 1e-8, 2.0 ** -25, 1.0 + 2.0 ** -11 + 2.0 ** -40],
                         dtype=torch.float64)
    y = torch.empty(1000, dtype=torch.float16)
    mini_compiler.jit(to_half)[(1,)](x, y, 1000, BLOCK=1024)
    # numpy rounds f64 to f16 correctly (torch goes through f32 and can round twice)
    assert (y.numpy() == x.numpy().astype("float16")).all()
    for dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        a = torch.randint(-100, 100, (1000,), dtype=dtype)
        b = torch.randint(1, 7, (1000,), dtype=dtype) * (1 - 2 * (torch.rand(1000) < 0.5))
        out = torch.empty_like(a)
        mini_compiler.jit(divide)[(8,)](a, b, out, 1000, BLOCK=128)
        q = torch.div(a, b, rounding_mode="trunc")
        assert torch.equal(out, q + (a - q * b)), dtype
    print("survived")
''')


def test_crashing_patterns_now_compile_and_are_right(tmp_path):
    script = tmp_path / "crashers.py"
    script.write_text(CRASHERS)
    # the child imports the mini_compiler this test process imported
    package_root = str(Path(mini_compiler.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "survived" in done.stdout
