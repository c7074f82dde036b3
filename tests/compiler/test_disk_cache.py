"""The on-disk compile cache: a new process (a restarted notebook) reuses compiled kernels, the
result is still right, and the key changes with the source, the specialisation and the rules."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import sys, time, torch
    sys.path.insert(0, {kernels!r})
    import mini_compiler
    from mini_compiler.runtime import disk_cache
    import compiler_kernels_for_cache as K

    x, y = torch.randn(1000), torch.randn(1000)
    out = torch.full_like(x, float("nan"))
    calls = []
    original = mini_compiler.runtime.jit.compile_specialisation
    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    mini_compiler.runtime.jit.compile_specialisation = counting
    kernel = mini_compiler.jit(K.add_kernel)
    kernel[(8,)](x, y, out, 1000, BLOCK_SIZE={block})
    torch.testing.assert_close(out, x + y)
    print("compiled", len(calls))
''')

KERNEL = textwrap.dedent('''
    import triton
    import triton.language as tl

    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < n
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask)
                 + tl.load(y_ptr + offs, mask=mask){extra}, mask=mask)
''')


def _run(tmp_path, block=128, extra="", cache="1"):
    (tmp_path / "compiler_kernels_for_cache.py").write_text(KERNEL.format(extra=extra))
    env = dict(os.environ, MINI_COMPILER_CACHE_DIR=str(tmp_path / "cache"),
               MINI_COMPILER_CACHE=cache)
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(kernels=str(tmp_path),
                                                               block=block)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split("compiled")[-1])


def test_a_new_process_reuses_the_compiled_kernel(tmp_path):
    assert _run(tmp_path) == 1          # first process compiles
    assert _run(tmp_path) == 0          # a restart finds it on disk (and its result is right)
    assert _run(tmp_path, block=256) == 1   # another specialisation compiles
    assert _run(tmp_path, extra=" * 1") == 1  # edited source compiles again


def test_the_cache_can_be_turned_off(tmp_path):
    assert _run(tmp_path, cache="0") == 1
    assert _run(tmp_path, cache="0") == 1
    assert not (tmp_path / "cache").exists()


def test_no_disk_cache_while_an_exercise_rule_is_installed():
    import mini_compiler.hooks
    from mini_compiler.runtime import disk_cache

    assert disk_cache.rules_are_defaults()
    with mini_compiler.hooks.override(folders={"tile.mul": lambda a, b: a * b}):
        assert not disk_cache.rules_are_defaults()
    assert disk_cache.rules_are_defaults()


@pytest.mark.parametrize("table,rule", [
    ("folders", {"tile.mul": lambda a, b: a * b}),
    ("lowering", {"tile.add": lambda b, element, x, y: b.fadd(x, y)}),
    ("gpu", {"vector_width": lambda contiguity, divisibility, element_bytes: 1}),
    ("gpu", {"register_map": lambda source, target, shape: None}),
    ("axis_info", {"tile.mul": lambda a, b: a}),
    ("frontend", {"loop_carried_names": lambda loop, before: []}),
])
def test_every_kind_of_exercise_rule_turns_the_disk_cache_off(table, rule):
    """Each table ``override`` can fill: while a learner's rule stands there, a kernel compiled
    and stored with the compiler's own rules must not be loaded in its place."""
    import mini_compiler.hooks
    from mini_compiler.runtime import disk_cache

    with mini_compiler.hooks.override(**{table: rule}):
        assert not disk_cache.rules_are_defaults()
    assert disk_cache.rules_are_defaults()


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_key_names_compiler_version_and_target(backend):
    from mini_compiler.runtime import disk_cache

    a = disk_cache.key("src", ("spec",), backend, (False, None))
    assert a != disk_cache.key("src", ("spec",), backend, (True, None))
    assert a != disk_cache.key("other", ("spec",), backend, (False, None))
    assert disk_cache.compiler_version() and backend in disk_cache.target(backend)
