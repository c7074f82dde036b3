"""The warm GPU launch path packs a kernel's arguments once (``PackedLauncher``) and refills the
slots per launch. Without a GPU the driver call is replaced by a stand-in that reads the
``void**`` array back the way the driver would, so the packing itself is tested here."""

from __future__ import annotations

import ctypes

import pytest

from mini_compiler.backends.gpu.driver import CTYPES_FOR_LLVM, LoadedKernel, PackedLauncher


class FakeDriver:
    """Stands in for libcuda: records what each cuLaunchKernel call would have launched."""

    def __init__(self, types, result=0):
        self.types, self.result, self.calls = types, result, []

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        values = [ctypes.cast(params[i], ctypes.POINTER(ctype)).contents.value
                  for i, ctype in enumerate(self.types)]
        # The handles arrive as c_void_p objects (no argtypes: see _libcuda); 0 reads as None.
        self.calls.append((function.value, (gx, gy, gz), (bx, by, bz), shared,
                           stream.value or 0, values, extra))
        return self.result


def _launcher(kinds, result=0):
    types = tuple(CTYPES_FOR_LLVM[k] for k in kinds)
    fake = FakeDriver(types, result)
    kernel = LoadedKernel("add_kernel", function=0x1234, module=None, device_ordinal=0)
    return PackedLauncher(kernel, types, threads_per_block=128, lib=fake), fake, kernel


def test_each_launch_passes_its_own_values_through_the_slots():
    launch, fake, _ = _launcher(["ptr", "ptr", "ptr", "i32", "f32", "i64"])
    launch([0x7f00_0000_1000, 0x7f00_0000_2000, 0x7f00_0000_3000, 1000, 0.5, 2**40],
           (8, 1, 1), stream=77)
    launch([0x10, 0x20, 0x30, -3, -1.25, -(2**40)], (2, 3, 4), stream=0)
    (first, second) = fake.calls
    assert first[0] == 0x1234 and first[1] == (8, 1, 1) and first[2] == (128, 1, 1)
    assert first[4] == 77 and first[6] is None
    assert first[5] == [0x7f00_0000_1000, 0x7f00_0000_2000, 0x7f00_0000_3000, 1000, 0.5, 2**40]
    # The second launch sees its own values, not the first's: the slots were refilled.
    assert second[1] == (2, 3, 4) and second[4] == 0
    assert second[5] == [0x10, 0x20, 0x30, -3, -1.25, -(2**40)]


def test_the_slot_array_is_built_once():
    launch, fake, _ = _launcher(["ptr", "i32"])
    params = launch.params
    for n in range(3):
        launch([0x100 * (n + 1), n], (1, 1, 1), stream=0)
    assert launch.params is params
    assert [call[5] for call in fake.calls] == [[0x100, 0], [0x200, 1], [0x300, 2]]


def test_a_refused_launch_falls_back_to_the_checked_path_then_gives_up_loudly(monkeypatch):
    launch, fake, kernel = _launcher(["ptr", "i32"], result=201)  # CUDA_ERROR_INVALID_CONTEXT
    seen = []
    monkeypatch.setattr(LoadedKernel, "launch",
                        lambda self, grid, threads, args, stream: seen.append(
                            (grid, threads, args, stream)))
    launch([0x100, 5], (3, 1, 1), stream=9)
    # Launched once, through the checked path; the packed call may still work next time (a
    # thread without the context current, say), so it is tried again once.
    assert len(fake.calls) == 1 and launch.refused is None
    assert seen == [((3, 1, 1), 128, ((0x100, 5), launch.ctypes_types), 9)]
    with pytest.warns(RuntimeWarning, match="refused the packed launch of add_kernel"):
        launch([0x200, 6], (1, 1, 1), stream=9)
    assert launch.refused == "CUresult 201" and len(fake.calls) == 2 and len(seen) == 2
    launch([0x300, 7], (1, 1, 1), stream=9)  # no more packed attempts, still launched once
    assert len(fake.calls) == 2 and seen[-1][2][0] == (0x300, 7)


def test_a_launch_error_of_the_checked_path_reaches_the_caller(monkeypatch):
    launch, fake, kernel = _launcher(["ptr"], result=1)  # CUDA_ERROR_INVALID_VALUE

    def failing(self, grid, threads, args, stream):
        raise RuntimeError("cuLaunchKernel(add_kernel) failed: CUDA_ERROR_INVALID_VALUE")

    monkeypatch.setattr(LoadedKernel, "launch", failing)
    with pytest.raises(RuntimeError, match="CUDA_ERROR_INVALID_VALUE"):
        launch([0x100], (1, 1, 1), stream=0)


def test_a_kernel_without_parameters_still_gets_a_valid_array():
    launch, fake, _ = _launcher([])
    launch([], (1, 1, 1), stream=0)
    assert fake.calls[0][5] == []


def test_a_value_of_the_wrong_kind_is_refused_not_passed():
    launch, fake, _ = _launcher(["i32"])
    launch([2**31 - 1], (1, 1, 1), stream=0)
    assert fake.calls[0][5] == [2**31 - 1]
    with pytest.raises(TypeError):
        launch(["not a number"], (1, 1, 1), stream=0)
