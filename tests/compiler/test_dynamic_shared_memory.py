"""Shared memory beyond 48 KB is *dynamic*: the kernel declares it with no size and every launch
gives the size (``sharedMemBytes`` of ``cuLaunchKernel``), after the kernel was allowed that much
once at load (``cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)``). Without
a GPU the driver is replaced by stand-ins that record the calls, so what reaches it is tested
here: the bytes on the warm (packed) path, on the checked path, and the one attribute call."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import pytest

from mini_compiler.backends.gpu import compiler as gpu_compiler
from mini_compiler.backends.gpu import driver as gpu_driver
from mini_compiler.backends.gpu.driver import CTYPES_FOR_LLVM, LoadedKernel, PackedLauncher


class FakeLib:
    """Stands in for libcuda on the warm path: records the ``sharedMemBytes`` of each launch."""

    def __init__(self):
        self.shared = []

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        self.shared.append(shared)
        return 0


def _packed(dynamic_shared_bytes=0, **kwargs):
    kernel = LoadedKernel("matmul_kernel", function=0x1234, module=None, device_ordinal=0,
                          dynamic_shared_bytes=dynamic_shared_bytes)
    lib = FakeLib()
    types = (CTYPES_FOR_LLVM["ptr"], CTYPES_FOR_LLVM["i32"])
    return PackedLauncher(kernel, types, 256, lib=lib, **kwargs), lib


def test_the_packed_launch_gives_the_kernels_dynamic_shared_memory():
    launch, lib = _packed(dynamic_shared_bytes=96 * 1024)
    launch([0x100, 3], (4, 1, 1), stream=0)
    launch([0x200, 4], (4, 1, 1), stream=0)
    assert lib.shared == [96 * 1024, 96 * 1024]


def test_a_kernel_without_dynamic_shared_memory_launches_with_zero():
    launch, lib = _packed()
    launch([0x100, 3], (1, 1, 1), stream=0)
    assert lib.shared == [0]


def test_the_constructor_argument_overrides_the_kernels_bytes():
    launch, lib = _packed(dynamic_shared_bytes=64 * 1024, shared_bytes=80 * 1024)
    launch([0x100, 3], (1, 1, 1), stream=0)
    assert lib.shared == [80 * 1024]


class FakeBindings:
    """Stands in for ``cuda.bindings.driver``: the calls ``load_kernel`` and
    ``LoadedKernel.launch`` make, each answering ``(CUDA_SUCCESS, value)``."""

    CUresult = SimpleNamespace(CUDA_SUCCESS=0)
    CUfunction_attribute = SimpleNamespace(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES=8)

    def __init__(self):
        self.calls = []

    def cuModuleLoadData(self, data):
        return 0, "module"

    def cuModuleGetFunction(self, module, name):
        return 0, "function"

    def cuFuncSetAttribute(self, function, attribute, value):
        self.calls.append(("cuFuncSetAttribute", function, attribute, value))
        return (0,)

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, args, extra):
        self.calls.append(("cuLaunchKernel", shared))
        return (0,)


@pytest.fixture
def bindings(monkeypatch):
    fake = FakeBindings()
    monkeypatch.setattr(gpu_driver, "_driver", lambda: fake)
    monkeypatch.setattr(gpu_driver, "_SUCCESS", 0)
    monkeypatch.setattr(gpu_driver, "make_current", lambda device=0: None)
    return fake


def test_loading_allows_the_dynamic_shared_memory_once_and_launches_with_it(bindings):
    kernel = gpu_driver.load_kernel(".version 8.0", "matmul_kernel", 0, 128 * 1024)
    assert bindings.calls == [("cuFuncSetAttribute", "function", 8, 128 * 1024)]
    assert kernel.dynamic_shared_bytes == 128 * 1024
    kernel.launch((2, 1, 1), 256, ((0x10,), (ctypes.c_void_p,)), 0)
    kernel.launch((2, 1, 1), 256, ((0x10,), (ctypes.c_void_p,)), 0)
    assert bindings.calls[1:] == [("cuLaunchKernel", 128 * 1024)] * 2  # no second attribute call


@pytest.mark.parametrize("nbytes", [0, 16 * 1024, 48 * 1024])
def test_up_to_48_kb_needs_no_attribute(bindings, nbytes):
    kernel = gpu_driver.load_kernel(".version 8.0", "softmax_kernel", 0, nbytes)
    assert bindings.calls == [] and kernel.dynamic_shared_bytes == nbytes


def test_a_compiled_kernel_hands_its_dynamic_bytes_to_the_loader_and_the_launcher(monkeypatch):
    loaded = []

    def fake_load(ptx, name, device, dynamic_shared_bytes=0):
        loaded.append(dynamic_shared_bytes)
        return LoadedKernel(name, 0x99, None, device, dynamic_shared_bytes)

    lib = FakeLib()
    monkeypatch.setattr(gpu_compiler, "load_kernel", fake_load)
    monkeypatch.setattr(gpu_driver, "_libcuda", lambda: lib)
    kernel = gpu_compiler.GpuKernel("matmul_kernel", 8, 64 * 1024, ["ptr", "i32"],
                                    {"ptx": ""}, dynamic_shared_bytes=64 * 1024)
    launch = kernel._packed_launcher(0)
    launch([0x100, 7], (3, 1, 1), 0)
    assert loaded == [64 * 1024] and lib.shared == [64 * 1024]
