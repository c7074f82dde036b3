"""Input checks shared by the kernel wrappers: a clear error beats a wrong answer or a crash."""

from __future__ import annotations

import torch

from ..env import configure

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def require_device(op: str, name: str, t: torch.Tensor) -> None:
    """The tensor must live where the kernels run: the GPU if there is one, else the CPU."""
    want = configure().device
    if t.device.type != want:
        where = "the GPU (.cuda())" if want == "cuda" else "the CPU (.cpu())"
        raise ValueError(
            f"{op}: {name} is on {t.device}, but this course runs its kernels on {where}. "
            f"Move it with {name}.to('{want}')."
        )


def require_tensor(op: str, name: str, t, *, dtypes=FLOAT_DTYPES, contiguous: bool = True) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{op}: {name} has dtype {t.dtype}; supported dtypes are {names}")
    require_device(op, name, t)
    if contiguous and not t.is_contiguous():
        raise ValueError(
            f"{op}: {name} is not contiguous (strides {t.stride()}), and this kernel indexes "
            f"memory as one flat array. Pass {name}.contiguous()."
        )


def require_same_tensors(op: str, *, dtypes=FLOAT_DTYPES, **tensors: torch.Tensor) -> None:
    """Every tensor valid on its own, and all of them with one device, dtype and shape."""
    for name, t in tensors.items():
        require_tensor(op, name, t, dtypes=dtypes)
    (first_name, first), *rest = tensors.items()
    for name, t in rest:
        if t.device != first.device:
            raise ValueError(f"{op}: {first_name} is on {first.device} but {name} is on {t.device}")
        if t.dtype != first.dtype:
            raise TypeError(
                f"{op}: {first_name} is {first.dtype} but {name} is {t.dtype}; "
                "convert one with .to()"
            )
        if t.shape != first.shape:
            raise ValueError(
                f"{op}: {first_name} has shape {tuple(first.shape)} but {name} has shape "
                f"{tuple(t.shape)}; they must match"
            )
