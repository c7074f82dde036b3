"""Argument specialisation: what one compilation may assume about a launch's arguments.

Like Triton, a kernel is compiled once per *specialisation key*: for each parameter its kind and
element type (a tensor of f16 gives ``!ptr<f16>``, a Python int ``i32`` or ``i64``, a float
``f32``), whether a pointer or integer is divisible by 16, whether an integer equals 1 (then it is
compiled as the constant 1, so ``offsets * stride`` with a unit stride folds away), and the value
of every ``tl.constexpr`` parameter.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import language as tl
from ..errors import LaunchError
from ..frontend.codegen import KernelSource, ParamSpec
from ..ir import types as ir_types

TORCH_DTYPE_NAMES = {
    "torch.float16": "f16", "torch.bfloat16": "bf16", "torch.float32": "f32",
    "torch.float64": "f64", "torch.int8": "i8", "torch.int16": "i16", "torch.int32": "i32",
    "torch.int64": "i64", "torch.bool": "i1", "torch.uint8": "i8",
}
NUMPY_DTYPE_NAMES = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "bool": "i1", "uint8": "i8",
}


@dataclass
class TensorArg:
    """A pointer argument: the address of element 0 and the span of bytes the tensor covers."""

    name: str
    address: int
    nbytes: int
    element: ir_types.ScalarType
    device: str


def _is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "data_ptr")


def tensor_arg(name: str, x) -> TensorArg:
    if _is_torch_tensor(x):
        element_name = TORCH_DTYPE_NAMES.get(str(x.dtype))
        if element_name is None:
            raise LaunchError(f"argument `{name}`: tensors of {x.dtype} are not supported")
        span = 0
        if x.numel() > 0:
            last = sum((s - 1) * st for s, st in zip(x.shape, x.stride(), strict=True))
            span = (last + 1) * x.element_size()
        return TensorArg(name, x.data_ptr(), span, ir_types.SCALAR_TYPES[element_name],
                         x.device.type)
    element_name = NUMPY_DTYPE_NAMES.get(str(x.dtype))
    if element_name is None:
        raise LaunchError(f"argument `{name}`: arrays of {x.dtype} are not supported")
    span = 0
    if x.size > 0:
        span = (sum((s - 1) * st for s, st in zip(x.shape, x.strides, strict=False)) + x.itemsize)
    return TensorArg(name, x.__array_interface__["data"][0], span,
                     ir_types.SCALAR_TYPES[element_name], "cpu")


@dataclass
class Specialisation:
    params: list[ParamSpec]
    runtime_args: list[Any]  # one per runtime parameter: TensorArg, int or float
    key: tuple
    bound: dict[str, Any]  # every parameter by name (what a grid callable receives)
    device: str


def specialise(source: KernelSource, args: tuple, kwargs: dict) -> Specialisation:
    """Bind a launch's arguments to the kernel's parameters and compute the cache key."""
    signature = inspect.signature(source.fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        names = ", ".join(signature.parameters)
        raise LaunchError(f"kernel `{source.name}` takes ({names}); {e}") from None
    bound.apply_defaults()
    params: list[ParamSpec] = []
    runtime_args: list[Any] = []
    key: list = []
    devices = set()
    for name, value in bound.arguments.items():
        if isinstance(value, tl.constexpr) or type(value).__name__ == "constexpr":
            value = value.value
        if name in source.constexpr_params or value is None:
            if _is_torch_tensor(value) or isinstance(value, np.ndarray):
                raise LaunchError(f"parameter `{name}` is a tl.constexpr but got a tensor")
            params.append(ParamSpec(name, "constexpr", value=value))
            key.append((name, "constexpr", repr(value)))
        elif _is_torch_tensor(value) or isinstance(value, np.ndarray):
            t = tensor_arg(name, value)
            devices.add(t.device)
            aligned = t.address % 16 == 0
            params.append(ParamSpec(name, "pointer", ir_types.PointerType(t.element),
                                    attrs={"divisible_by_16": aligned}))
            runtime_args.append(t)
            key.append((name, "pointer", t.element.name, aligned))
        elif isinstance(value, bool):
            params.append(ParamSpec(name, "int", ir_types.i1))
            runtime_args.append(int(value))
            key.append((name, "i1"))
        elif isinstance(value, (int, np.integer)):
            value = int(value)
            element = ir_types.i32 if -(2**31) <= value < 2**31 else ir_types.i64
            attrs = {"divisible_by_16": value % 16 == 0, "equal_to_1": value == 1}
            params.append(ParamSpec(name, "int", element, value=1 if value == 1 else None,
                                    attrs=attrs))
            runtime_args.append(value)
            key.append((name, element.name, attrs["divisible_by_16"], attrs["equal_to_1"]))
        elif isinstance(value, (float, np.floating)):
            params.append(ParamSpec(name, "float", ir_types.f32))
            runtime_args.append(float(value))
            key.append((name, "f32"))
        else:
            raise LaunchError(f"argument `{name}` of kernel `{source.name}` is a "
                              f"{type(value).__name__}; kernels take tensors (CPU torch tensors "
                              "or numpy arrays), ints, floats, and tl.constexpr values")
    if len(devices) > 1:
        raise LaunchError(f"kernel `{source.name}` got tensors on several devices "
                          f"({', '.join(sorted(devices))}); put them all on one device")
    device = devices.pop() if devices else "cpu"
    return Specialisation(params, runtime_args, tuple(key), dict(bound.arguments), device)
