"""Lesson 1: vector addition, the smallest complete Triton kernel.

Each *program* (one instance of the kernel, like a CUDA thread block) handles ``BLOCK_SIZE``
consecutive elements. ``tl.program_id(0)`` says which block; ``tl.arange`` makes the block's
offsets; the mask switches off the lanes past the end of the vector, which is what lets any length
work with a power-of-two block.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..env import configure
from ._validate import require_same_tensors


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)  # which block of the vector this program owns
    offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements  # the last block may run past the end
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


def vector_add(x: torch.Tensor, y: torch.Tensor, *, block_size: int = 1024) -> torch.Tensor:
    """Return ``x + y`` computed by :func:`add_kernel` (a new tensor, same shape as the inputs)."""
    require_same_tensors("vector_add", x=x, y=y)
    if x.dtype == torch.bfloat16 and configure().interpreted:
        # Triton 3.7's interpreter computes some bfloat16 sums as NaN (numpy has no bfloat16).
        # Add in float32 on the CPU instead; on a GPU the kernel handles bfloat16 itself.
        return vector_add(x.float(), y.float(), block_size=block_size).to(torch.bfloat16)
    out = torch.empty_like(x)
    n = x.numel()
    grid = (triton.cdiv(n, block_size),)
    add_kernel[grid](x, y, out, n, BLOCK_SIZE=block_size)
    return out
