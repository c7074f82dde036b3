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
from ..frontend.source import KernelSource, ParamSpec
from ..ir import types as ir_types

TORCH_DTYPE_NAMES = {
    "torch.float16": "f16", "torch.bfloat16": "bf16", "torch.float32": "f32",
    "torch.float64": "f64", "torch.int8": "i8", "torch.int16": "i16", "torch.int32": "i32",
    "torch.int64": "i64", "torch.bool": "i1", "torch.uint8": "u8",
    "torch.uint16": "u16", "torch.uint32": "u32", "torch.uint64": "u64",
}
NUMPY_DTYPE_NAMES = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "bool": "i1", "uint8": "u8",
    "uint16": "u16", "uint32": "u32", "uint64": "u64",
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


_ELEMENT_OF_DTYPE: dict = {}  # dtype object -> element name, filled as dtypes are first seen


def tensor_arg(name: str, x) -> TensorArg:
    if _is_torch_tensor(x):
        element_name = _ELEMENT_OF_DTYPE.get(x.dtype)
        if element_name is None:  # str(dtype) is slow: look it up once per dtype
            element_name = TORCH_DTYPE_NAMES.get(str(x.dtype))
            if element_name is not None:
                _ELEMENT_OF_DTYPE[x.dtype] = element_name
        if element_name is None:
            raise LaunchError(f"argument `{name}`: tensors of {x.dtype} are not supported")
        span = 0
        if x.is_contiguous():
            span = x.numel() * x.element_size()
        elif x.numel() > 0:
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


class FastBinder:
    """The launch fast path: a cheap key for a launch's arguments, computed without
    ``inspect.signature`` and without building a :class:`Specialisation`.

    :func:`specialise` is general but costs tens of microseconds a launch (binding through
    ``inspect``, dataclasses, the cache key). A kernel is usually launched again and again with
    arguments of the same kinds, so :meth:`key` reduces the arguments to what decides the
    specialisation (each tensor's dtype, device and 16-byte alignment, each int's width,
    divisibility by 16 and equality to 1, each constexpr's value) and the caller remembers, per
    such key, the compiled kernel the slow path chose. Anything unusual (``*args`` in the
    signature, ``tl.constexpr`` wrappers, numpy scalars, unknown keywords) gives ``None``: the
    slow path handles it, with its error messages.
    """

    def __init__(self, source: KernelSource):
        signature = inspect.signature(source.fn)
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self.usable = all(p.kind in plain for p in signature.parameters.values())
        self.names = list(signature.parameters)
        self.defaults = {n: p.default for n, p in signature.parameters.items()
                         if p.default is not inspect.Parameter.empty}
        self.constexpr = [n in source.constexpr_params for n in self.names]
        self.position = {n: i for i, n in enumerate(self.names)}

    def bind(self, args: tuple, kwargs: dict) -> list | None:
        """The value of every parameter, in order, or None where the slow path must bind."""
        names = self.names
        if not self.usable or len(args) > len(names):
            return None
        for k in kwargs:  # unknown names, or given twice: the slow path raises the error
            if self.position.get(k, -1) < len(args):
                return None
        values = list(args)
        for name in names[len(args):]:
            if name in kwargs:
                values.append(kwargs[name])
            elif name in self.defaults:
                values.append(self.defaults[name])
            else:
                return None
        return values

    def key(self, values: list) -> tuple | None:
        """What decides the specialisation (see the class docstring), or None for the slow
        path."""
        return self.key_and_raw_args(values)[0]

    def key_and_raw_args(self, values: list) -> tuple[tuple | None, list]:
        """The key and the runtime arguments as plain numbers (a tensor's device address), in
        one pass over the arguments: all the GPU's warm launch needs. Each tensor's address is
        read once; the device enters the key as ``is_cuda`` (a compiled kernel serves every
        GPU)."""
        parts, raw = [], []
        for value, is_constexpr in zip(values, self.constexpr, strict=True):
            kind = type(value)
            if is_constexpr or value is None:
                if kind not in (int, float, bool, str, type(None)):
                    return None, raw
                parts.append((kind, repr(value) if kind is float else value))
            elif kind is int:
                parts.append((-(2**31) <= value < 2**31, value % 16 == 0, value == 1))
                raw.append(value)
            elif kind is float:
                parts.append("f32")
                raw.append(value)
            elif kind is bool:
                parts.append("i1")
                raw.append(int(value))
            elif hasattr(value, "data_ptr"):
                address = value.data_ptr()
                parts.append((value.dtype, value.is_cuda, address % 16 == 0))
                raw.append(address)
            elif kind is np.ndarray:
                address = value.__array_interface__["data"][0]
                parts.append((value.dtype, address % 16 == 0))
                raw.append(address)
            else:
                return None, raw
        return tuple(parts), raw

    def runtime_args(self, values: list) -> list:
        """What :func:`specialise` puts in ``runtime_args``: tensors, ints and floats."""
        out = []
        for name, value, is_constexpr in zip(self.names, values, self.constexpr, strict=True):
            if is_constexpr or value is None:
                continue
            kind = type(value)
            if kind is int or kind is float:
                out.append(value)
            elif kind is bool:
                out.append(int(value))
            else:
                out.append(tensor_arg(name, value))
        return out
