"""Capstone: RMSNorm, and the token-embedding lookup, one row per program.

Llama normalises each token's vector by its root mean square, then scales it by a learned
weight::

    y = x / sqrt(mean(x^2) + eps) * w

It is lesson 2's fused softmax again: one program owns a whole row, reads it once into registers,
reduces it (a sum of squares instead of a max and a sum), and writes the result once. The sums are
in fp32 whatever the input's dtype, so a bf16 row of 2048 values loses nothing in the reduction.

The embedding lookup is the simplest kernel of the model: program ``t`` copies row ``tokens[t]`` of
the embedding table. Its only lesson is the pointer: the row to read is *data* (a token id loaded
from memory), not a function of the program id.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._validate import require_tensor


@triton.jit
def rmsnorm_kernel(
    x_ptr, w_ptr, y_ptr, n_cols, stride_x, stride_y, eps,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """Row ``program_id(0)``: ``y = x * rsqrt(mean(x^2) + eps) * w``, computed in fp32."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    inv_rms = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * stride_y + cols, (x * inv_rms * w).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def embedding_kernel(tokens_ptr, table_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    """Row ``program_id(0)`` of the output is row ``tokens[program_id(0)]`` of the table."""
    t = tl.program_id(0)
    token = tl.load(tokens_ptr + t).to(tl.int64)  # the row to read is data, not the program id
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    row = tl.load(table_ptr + token * n_cols + cols, mask=mask)
    tl.store(out_ptr + t.to(tl.int64) * n_cols + cols, row, mask=mask)


def rmsnorm(
    x: torch.Tensor, weight: torch.Tensor, eps: float, *, out=None, kernel=None
) -> torch.Tensor:
    """RMSNorm over the last dimension of ``x`` (any leading shape, rows contiguous)."""
    require_tensor("rmsnorm", "x", x, contiguous=False)
    require_tensor("rmsnorm", "weight", weight)
    if x.shape[-1] != weight.shape[0] or x.stride(-1) != 1:
        raise ValueError(
            f"rmsnorm: x has rows of {x.shape[-1]} (stride {x.stride(-1)}) but weight has "
            f"{weight.shape[0]} values; rows must match the weight and be contiguous"
        )
    rows = x.reshape(-1, x.shape[-1])
    y = torch.empty_like(rows) if out is None else out.reshape(rows.shape)
    n = rows.shape[1]
    (kernel or rmsnorm_kernel)[(rows.shape[0],)](
        rows, weight, y, n, rows.stride(0), y.stride(0), eps, BLOCK=triton.next_power_of_2(n)
    )
    return y.reshape(x.shape)


def embedding(tokens: torch.Tensor, table: torch.Tensor, *, kernel=None) -> torch.Tensor:
    """``table[tokens]``: shape ``tokens.shape + (hidden,)``."""
    if tokens.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"embedding: tokens must be int32 or int64, not {tokens.dtype}")
    require_tensor("embedding", "table", table)
    if tokens.device != table.device:
        raise ValueError(
            f"embedding: tokens are on {tokens.device} but the table is on {table.device}; "
            f"move them with tokens.to({str(table.device)!r})"
        )
    flat = tokens.reshape(-1).contiguous()
    out = torch.empty(flat.numel(), table.shape[1], device=table.device, dtype=table.dtype)
    if flat.numel():
        (kernel or embedding_kernel)[(flat.numel(),)](
            flat, table, out, table.shape[1], BLOCK=triton.next_power_of_2(table.shape[1])
        )
    return out.reshape(*tokens.shape, table.shape[1])
