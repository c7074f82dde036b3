"""Loading PTX into the GPU and launching kernels, through the CUDA driver API (``cuda.bindings``).

No CUDA toolkit is involved: the *driver* (part of every NVIDIA installation) compiles PTX to the
GPU's machine code when a module is loaded, and launches its kernels. We use the driver's own
Python bindings (``cuda.bindings.driver``), share torch's CUDA context (the device's *primary*
context) and launch on torch's current stream, so a kernel is ordered with the torch work around
it exactly like a Triton kernel is.

Kernel arguments travel as a tuple of values and a tuple of ctypes types: tensors as their
``data_ptr()`` (``c_void_p``), integers as ``c_int``/``c_longlong``, floats as ``c_float``.
"""

from __future__ import annotations

import ctypes
import functools
import warnings
from dataclasses import dataclass
from typing import Any


class GpuUnavailableError(RuntimeError):
    """No usable NVIDIA GPU or driver here; the message says what is missing."""


class CudaDriverError(RuntimeError):
    """A CUDA driver call failed; the message names the call and the driver's error."""


_DRIVER = None
_SUCCESS: Any = None


def _driver():
    global _DRIVER, _SUCCESS
    if _DRIVER is not None:
        return _DRIVER
    try:
        from cuda.bindings import driver
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise GpuUnavailableError(
            "the GPU back end needs NVIDIA's Python driver bindings: pip install "
            "'cuda-bindings>=13' (or the project's [gpu] extra)"
        ) from error
    _DRIVER, _SUCCESS = driver, driver.CUresult.CUDA_SUCCESS
    return driver


def _check(result: tuple, call: str) -> Any:
    """Unpack a ``cuda.bindings`` result ``(error, value...)``, raising on a driver error."""
    driver = _driver()
    error, *values = result
    if error != driver.CUresult.CUDA_SUCCESS:
        _, name = driver.cuGetErrorName(error)
        _, text = driver.cuGetErrorString(error)
        decoded = (name or b"?").decode(), (text or b"").decode()
        raise CudaDriverError(f"{call} failed: {decoded[0]} ({decoded[1]})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@functools.cache
def _primary_context(device_ordinal: int):
    driver = _driver()
    try:
        _check(driver.cuInit(0), "cuInit")
    except Exception as error:  # no driver library, no device, driver too old...
        raise GpuUnavailableError(
            f"the CUDA driver could not start ({type(error).__name__}: {error}); the GPU back "
            "end can still compile to PTX here (compile_for_gpu), but running needs an NVIDIA "
            "GPU") from error
    count = _check(driver.cuDeviceGetCount(), "cuDeviceGetCount")
    if device_ordinal >= count:
        raise GpuUnavailableError(f"no CUDA device {device_ordinal} (this machine has {count})")
    device = _check(driver.cuDeviceGet(device_ordinal), "cuDeviceGet")
    return _check(driver.cuDevicePrimaryCtxRetain(device), "cuDevicePrimaryCtxRetain")


def make_current(device_ordinal: int = 0) -> None:
    """Make the device's primary context (the one torch uses) current on this thread."""
    _check(_driver().cuCtxSetCurrent(_primary_context(device_ordinal)), "cuCtxSetCurrent")


@dataclass
class LoadedKernel:
    """A kernel of a PTX module loaded on one device, ready to launch."""

    name: str
    function: Any  # CUfunction
    module: Any  # CUmodule (kept alive as long as the kernel)
    device_ordinal: int
    dynamic_shared_bytes: int = 0  # dynamic shared memory every launch gives the kernel

    def launch(self, grid: tuple[int, int, int], threads_per_block: int,
               args: tuple[tuple, tuple], stream: int,
               shared_memory_bytes: int | None = None) -> None:
        """Launch on ``stream`` (an integer ``CUstream`` handle; 0 is the legacy stream).

        ``args`` is ``(values, ctypes_types)``; see the module docstring. The dynamic shared
        memory is the kernel's own (``dynamic_shared_bytes``) unless ``shared_memory_bytes``.
        """
        if shared_memory_bytes is None:
            shared_memory_bytes = self.dynamic_shared_bytes
        driver = _driver()
        gx, gy, gz = grid
        # One driver call in the common case: torch has made its (the primary) context current
        # on this thread. If not (another thread, say), make it current and launch again.
        error = driver.cuLaunchKernel(self.function, gx, gy, gz, threads_per_block, 1, 1,
                                      shared_memory_bytes, stream, args, 0)[0]
        if error != _SUCCESS:
            make_current(self.device_ordinal)
            _check(driver.cuLaunchKernel(self.function, gx, gy, gz, threads_per_block, 1, 1,
                                         shared_memory_bytes, stream, args, 0),
                   f"cuLaunchKernel({self.name})")


@functools.cache
def _libcuda():
    """The driver library itself, for the warm launch path (``None`` where it cannot be opened).

    Loaded as a :class:`ctypes.PyDLL`, whose calls keep the GIL: a packed launcher's argument
    slots are shared by every call, so no other Python thread may refill them while the driver
    is still reading them."""
    try:
        lib = ctypes.PyDLL("libcuda.so.1")
        launch = lib.cuLaunchKernel
    except (OSError, AttributeError):  # pragma: no cover - depends on the machine
        return None
    # No ``argtypes``: converting eleven arguments through them costs about three times the call
    # itself. The launcher passes plain ints (grid, block, shared bytes: all below 2**31) and
    # ready-made ``c_void_p`` objects for the handles, which is what the C signature wants.
    launch.restype = ctypes.c_int
    return lib


class PackedLauncher:
    """One kernel's arguments packed once, refilled per launch: the warm path.

    ``cuLaunchKernel`` takes its arguments as ``void**``: an array holding, per kernel parameter,
    the address of that parameter's value. Building the values and that array is most of what a
    launch costs in Python, so it is done once here: one ctypes *slot* per parameter (a
    ``c_void_p`` for a tensor's address, a ``c_int`` for an ``i32``...) and the array of the
    slots' addresses. A launch writes the new numbers into the slots and makes one foreign call
    straight into the driver library. The launch falls back to :meth:`LoadedKernel.launch`
    (which makes the context current and raises a readable error) if the driver says no.
    """

    def __init__(self, kernel: LoadedKernel, ctypes_types: tuple, threads_per_block: int,
                 lib=None, shared_bytes: int | None = None) -> None:
        lib = lib if lib is not None else _libcuda()
        if lib is None:
            raise GpuUnavailableError("libcuda.so.1 could not be opened with ctypes")
        self.kernel = kernel
        self.ctypes_types = ctypes_types
        self.threads_per_block = threads_per_block
        # dynamic shared memory per launch (``sharedMemBytes``): the kernel's, unless given
        self.shared_bytes = kernel.dynamic_shared_bytes if shared_bytes is None else shared_bytes
        self.slots = [ctype() for ctype in ctypes_types]
        self.params = (ctypes.c_void_p * max(1, len(self.slots)))(
            *[ctypes.addressof(slot) for slot in self.slots])
        self._function = ctypes.c_void_p(int(kernel.function))
        self.refused: str | None = None  # why the packed call was given up, if it was
        self._refusals = 0
        self._streams: dict[int, ctypes.c_void_p] = {}
        self._call = lib.cuLaunchKernel

    def __call__(self, values, grid: tuple[int, int, int], stream: int) -> None:
        for slot, value in zip(self.slots, values, strict=True):
            slot.value = value
        handle = self._streams.get(stream)
        if handle is None:
            handle = self._streams[stream] = ctypes.c_void_p(stream)
        gx, gy, gz = grid
        error = -1 if self.refused is not None else self._call(
            self._function, gx, gy, gz, self.threads_per_block, 1, 1, self.shared_bytes,
            handle, self.params, None)
        if error:
            self._checked_launch(values, grid, stream, error)

    def _checked_launch(self, values, grid, stream, error: int) -> None:
        """The driver refused the packed call: launch through ``cuda.bindings`` instead, which
        makes the context current first (a new thread may not have it) and raises a readable
        error if the launch itself is wrong. If the packed call is refused twice where that
        launch works, it is given up for this kernel, with a warning: a slow path is never
        taken silently."""
        self.kernel.launch(grid, self.threads_per_block, (tuple(values), self.ctypes_types),
                           stream)
        if error > 0:
            self._refusals += 1
            if self._refusals >= 2:
                self.refused = f"CUresult {error}"
                warnings.warn(f"the driver refused the packed launch of {self.kernel.name} "
                              f"({self.refused}); launching through cuda.bindings from now on, "
                              "which costs more host time per call", RuntimeWarning,
                              stacklevel=3)


# Above this many bytes of dynamic shared memory a kernel must opt in (once, at load).
DEFAULT_DYNAMIC_SHARED_LIMIT = 48 * 1024


def load_kernel(ptx: str, name: str, device_ordinal: int = 0,
                dynamic_shared_bytes: int = 0) -> LoadedKernel:
    """Load ``ptx`` (the driver JIT-compiles it for this GPU) and find kernel ``name`` in it.

    A kernel launched with more than 48 KB of dynamic shared memory must be allowed to use it:
    ``cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)``, done here once.
    """
    driver = _driver()
    make_current(device_ordinal)
    module = _check(driver.cuModuleLoadData(ptx.encode() + b"\0"), "cuModuleLoadData")
    function = _check(driver.cuModuleGetFunction(module, name.encode()), "cuModuleGetFunction")
    if dynamic_shared_bytes > DEFAULT_DYNAMIC_SHARED_LIMIT:
        attribute = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        _check(driver.cuFuncSetAttribute(function, attribute, dynamic_shared_bytes),
               f"cuFuncSetAttribute({name}, MAX_DYNAMIC_SHARED_SIZE_BYTES, "
               f"{dynamic_shared_bytes})")
    return LoadedKernel(name, function, module, device_ordinal, dynamic_shared_bytes)


# How each kernel parameter type travels to cuLaunchKernel.
CTYPES_FOR_LLVM = {
    "ptr": ctypes.c_void_p,
    "i1": ctypes.c_bool,
    "i8": ctypes.c_int8,
    "i16": ctypes.c_int16,
    "i32": ctypes.c_int,
    "i64": ctypes.c_longlong,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}


def torch_current_stream(device: int | None = None) -> int:
    """The integer handle of torch's current CUDA stream (what a launch should be ordered on).

    ``torch._C._cuda_getCurrentRawStream`` answers in well under a microsecond;
    ``torch.cuda.current_stream()`` builds a Python Stream object first (several microseconds),
    and is the fallback where the private call is missing."""
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return raw(torch.cuda.current_device() if device is None else device)
    return int(torch.cuda.current_stream().cuda_stream)
