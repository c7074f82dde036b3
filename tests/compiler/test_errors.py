"""Bad input gives a CompilationError naming file:line, showing the line with a caret, and saying
what is supported; launch mistakes give a LaunchError; a missing mask gives an OutOfBoundsError."""

import inspect

import pytest
import torch

import mini_compiler
import mini_compiler.language as tl
from mini_compiler import CompilationError, LaunchError, OutOfBoundsError

X = torch.zeros(64)


def compile_error(kernel, *args, **constexprs) -> CompilationError:
    with pytest.raises(CompilationError) as info:
        kernel.compile(*args, **constexprs)
    return info.value


def check_location(error: CompilationError, kernel, needle: str) -> None:
    """The message starts with file:line:col of the line containing ``needle`` and shows that
    line with a caret under the column."""
    lines, first = inspect.getsourcelines(kernel.fn)
    offset = next(i for i, line in enumerate(lines) if needle in line and i >= 2)
    line_no = first + offset
    text = str(error)
    assert text.startswith(f"{__file__}:{line_no}:"), text
    assert f"in kernel `{kernel.__name__}`" in text
    source_line, caret_line = text.splitlines()[1:3]
    assert needle in source_line
    assert caret_line.strip() == "^"
    assert caret_line.index("^") == len("    ") + error.loc.col


@mini_compiler.jit
def runtime_block(x_ptr, n):
    offs = tl.arange(0, n)
    tl.store(x_ptr + offs, 1.0)


def test_arange_with_runtime_bound():
    e = compile_error(runtime_block, X, 64)
    check_location(e, runtime_block, "tl.arange(0, n)")
    assert "tl.arange needs compile-time bounds, but `end` is a runtime value" in str(e)
    assert "tl.constexpr" in str(e)


@mini_compiler.jit
def odd_block(x_ptr, BLOCK: tl.constexpr):
    tl.store(x_ptr + tl.arange(0, BLOCK), 1.0)


def test_arange_not_power_of_two():
    e = compile_error(odd_block, X, BLOCK=100)
    check_location(e, odd_block, "tl.arange(0, BLOCK)")
    assert "tl.arange(0, 100) has 100 elements; the size of a tile must be a power of two" \
        in str(e)


@mini_compiler.jit
def unsupported_builtin(x_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(x_ptr + tl.arange(0, BLOCK), tl.sort(x, 0))


def test_unsupported_tl_function_lists_what_is_supported():
    e = compile_error(unsupported_builtin, X, BLOCK=64)
    check_location(e, unsupported_builtin, "tl.sort")
    assert "tl.sort is not supported by mini_compiler" in str(e)
    assert "Supported: tl.program_id" in str(e) and "tl.dot" in str(e)


@mini_compiler.jit
def bad_dot(x_ptr):
    a = tl.zeros((32, 16), tl.float32)
    b = tl.zeros((32, 16), tl.float32)
    tl.store(x_ptr + tl.arange(0, 32)[:, None] * 16 + tl.arange(0, 16)[None, :], tl.dot(a, b))


def test_dot_shape_mismatch():
    e = compile_error(bad_dot, X)
    check_location(e, bad_dot, "tl.dot(a, b)")
    assert "tl.dot shapes do not match: [32, 16] @ [32, 16] (the inner dimensions 16 and 32 " \
           "must be equal)" in str(e)


@mini_compiler.jit
def bad_broadcast(x_ptr):
    a = tl.arange(0, 32)
    b = tl.arange(0, 16)
    tl.store(x_ptr + a, a + b)


def test_broadcast_mismatch():
    e = compile_error(bad_broadcast, X)
    check_location(e, bad_broadcast, "a + b")
    assert "shapes [32] and [16] cannot be broadcast together" in str(e)


@mini_compiler.jit
def while_constant(x_ptr, n):
    i = 0
    while True:
        i += 1
    tl.store(x_ptr, i)


def test_while_loop_needs_a_runtime_condition():
    e = compile_error(while_constant, X, 3)
    check_location(e, while_constant, "True")
    assert "the condition of a while-loop must depend on values the loop changes" in str(e)


@mini_compiler.jit
def returns_a_value(x_ptr, n):
    tl.store(x_ptr, n)
    return n + 1


def test_returning_a_value_points_at_the_return():
    e = compile_error(returns_a_value, X, 3)
    check_location(e, returns_a_value, "return n + 1")
    assert "a kernel cannot return a value" in str(e)


@mini_compiler.jit
def float_bitwise(x_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(x_ptr + tl.arange(0, BLOCK), x & 1)


def test_bitwise_on_floats_is_a_type_error():
    e = compile_error(float_bitwise, X, BLOCK=64)
    check_location(e, float_bitwise, "x & 1")
    assert "bitwise operators need integers or booleans, got f32 and i32" in str(e)


@mini_compiler.jit
def carried_type_change(x_ptr, n, BLOCK: tl.constexpr):
    acc = 0
    for _i in range(n):
        acc = acc + tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(x_ptr + tl.arange(0, BLOCK), acc)


def test_loop_carried_value_changing_type():
    e = compile_error(carried_type_change, X, 3, BLOCK=64)
    check_location(e, carried_type_change, "in range(n)")
    assert "loop-carried variable `acc` enters the loop as a i32 but the body makes it a " \
           "tile<64xf32>" in str(e)


@mini_compiler.jit
def if_on_tile(x_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    if x > 0:
        x = -x
    tl.store(x_ptr + tl.arange(0, BLOCK), x)


def test_if_on_a_tile_suggests_where():
    e = compile_error(if_on_tile, X, BLOCK=64)
    check_location(e, if_on_tile, "x > 0")
    assert "`if` needs a scalar condition, got a tile<64xi1>" in str(e)
    assert "tl.where(cond, a, b)" in str(e)


@mini_compiler.jit
def load_non_pointer(x_ptr, n):
    tl.store(x_ptr, tl.load(n))


def test_load_needs_a_pointer():
    e = compile_error(load_non_pointer, X, 5)
    check_location(e, load_non_pointer, "tl.load(n)")
    assert "tl.load needs a pointer or a tile of pointers" in str(e)
    assert "got a i32" in str(e)


def plain_python_helper(x):
    return x + 1


@mini_compiler.jit
def calls_plain_python(x_ptr, n):
    tl.store(x_ptr, plain_python_helper(n))


def test_calling_a_plain_python_function():
    e = compile_error(calls_plain_python, X, 5)
    check_location(e, calls_plain_python, "plain_python_helper(n)")
    assert "cannot call `plain_python_helper` in a kernel" in str(e)
    assert "@triton.jit / @mini_compiler.jit" in str(e)


@mini_compiler.jit
def uses_break(x_ptr, n):
    for _i in range(n):
        break
    tl.store(x_ptr, 1.0)


def test_break_is_unsupported():
    e = compile_error(uses_break, X, 3)
    check_location(e, uses_break, "break")
    assert "`break` and `continue` are not supported in kernels" in str(e)


@mini_compiler.jit
def integer_index(x_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(x_ptr, x[3])


def test_indexing_a_tile_with_an_integer():
    e = compile_error(integer_index, X, BLOCK=64)
    check_location(e, integer_index, "x[3]")
    assert "tiles can only be indexed with `:` and `None`" in str(e)


@mini_compiler.jit
def static_assert_fails(x_ptr, BLOCK: tl.constexpr):
    tl.static_assert(BLOCK >= 128, "BLOCK must be at least 128")
    tl.store(x_ptr + tl.arange(0, BLOCK), 1.0)


def test_static_assert():
    e = compile_error(static_assert_fails, X, BLOCK=64)
    check_location(e, static_assert_fails, "tl.static_assert")
    assert "static assertion failed: BLOCK must be at least 128" in str(e)


@mini_compiler.jit
def float_floordiv(x_ptr, BLOCK: tl.constexpr):
    x = tl.load(x_ptr + tl.arange(0, BLOCK))
    tl.store(x_ptr + tl.arange(0, BLOCK), x // 2)


def test_floor_division_of_floats():
    e = compile_error(float_floordiv, X, BLOCK=64)
    check_location(e, float_floordiv, "x // 2")
    assert "`//` needs integer operands, got f32 and i32" in str(e)


# ---- launch errors ---------------------------------------------------------------------------
def test_wrong_number_of_arguments():
    with pytest.raises(LaunchError, match=r"kernel `odd_block` takes \(x_ptr, BLOCK\); "
                                          r"missing a required argument: 'BLOCK'"):
        odd_block[(1,)](X)


def test_unsupported_argument_type():
    with pytest.raises(LaunchError, match="argument `n` of kernel `runtime_block` is a str"):
        runtime_block[(1,)](X, "64")


def test_tensors_on_an_unsupported_device():
    with pytest.raises(LaunchError, match="tensors on device `meta` are not supported"):
        odd_block[(1,)](torch.empty(64, device="meta"), BLOCK=64)


def test_cuda_tensors_without_gpu_back_end_give_a_clear_error():
    from mini_compiler.backends import backend_for_device

    try:
        import mini_compiler.backends.gpu as gpu  # noqa: F401

        if hasattr(gpu, "compile"):
            pytest.skip("the GPU back end exists")
    except ImportError:
        pass
    with pytest.raises(LaunchError, match="GPU back end .* is not available yet"):
        backend_for_device("cuda")


def test_calling_a_kernel_directly():
    with pytest.raises(LaunchError, match=r"launch a kernel with odd_block\[grid\]\(\.\.\.\)"):
        odd_block(X, BLOCK=64)


# ---- bounds checking -------------------------------------------------------------------------
@mini_compiler.jit
def forgot_mask(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    tl.store(out_ptr + offs, x, mask=offs < n)


@pytest.mark.parametrize("backend", [None, "interpreter"])
def test_bounds_check_names_kernel_program_line_and_offset(backend):
    x, out = torch.randn(100), torch.empty(100)
    lines, first = inspect.getsourcelines(forgot_mask.fn)
    line = first + next(i for i, text in enumerate(lines) if "tl.load(x_ptr + offs)" in text)
    with pytest.raises(OutOfBoundsError) as info:
        forgot_mask[(2,)](x, out, 100, BLOCK=64, bounds_check=True, backend=backend)
    text = str(info.value)
    assert "kernel `forgot_mask`, program id (1,): load out of bounds" in text
    assert f"{__file__}:{line}" in text
    assert "element offset 100" in text


def test_bounds_check_from_environment(monkeypatch):
    monkeypatch.setenv("MINI_COMPILER_BOUNDS_CHECK", "1")
    with pytest.raises(OutOfBoundsError):
        forgot_mask[(2,)](torch.randn(100), torch.empty(100), 100, BLOCK=64)


def test_masked_kernel_passes_the_bounds_check():
    x, out = torch.randn(100), torch.empty(100)
    # Only the second program goes past the end; with one program of 64 all is in bounds.
    forgot_mask[(1,)](x, out, 100, BLOCK=64, bounds_check=True)
    torch.testing.assert_close(out[:64], x[:64])
