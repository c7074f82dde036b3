"""Capstone: lesson 3's matmul as a linear layer, with the epilogues a Llama layer needs.

A linear layer computes ``x @ W^T`` with ``W`` stored as ``(out_features, in_features)``, the
layout of ``torch.nn.Linear`` and of every Llama checkpoint. Lesson 3's kernel takes strides, so
``W^T`` needs no copy: its tile of ``BLOCK_K x BLOCK_N`` reads ``BLOCK_N`` rows of ``W``, each a run
of ``BLOCK_K`` contiguous values. What changes from lesson 3 is only the epilogue, the part after
the K loop, while the tile is still in registers:

* ``"residual"``: ``out = residual + x @ W^T``. The attention output projection and the
  feed-forward's down projection both end by adding to the residual stream; here the addition
  costs one load of the tile, and ``out`` may *be* ``residual`` (each element is read, then
  written, by the same program), so the residual stream is updated in place.
* ``"swiglu"``: ``out = silu(x @ Wg^T) * (x @ Wu^T)`` for the gate and up projections stored as one
  ``(2 * ffn, hidden)`` matrix. The program keeps *two* accumulators, one for a tile of gate columns
  and one for the matching tile of up columns, so the ``(tokens, 2 * ffn)`` intermediate never
  reaches memory: half the output traffic and one kernel fewer.

Tile shapes: prefill products (thousands of tokens) are lesson 3's compute-bound case and use its
configurations and pruning. A decode step multiplies one to a few dozen rows by the whole weight
matrix: every weight is read once and used once or a few times, so the product is memory-bound
and the right tile is the one that keeps every SM streaming weights. ``tl.dot`` needs at least 16
rows, so decode tiles are 16 rows tall (the rows past ``M`` are loaded from a valid row and never
stored, as in lesson 3) and narrow in N, so that even a 2048-wide output gives ~128 programs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..env import configure
from ._validate import require_tensor
from .matmul import GPU_CONFIGS as PREFILL_CONFIGS
from .matmul import _config, candidate_configs, grouped_tile

EPILOGUES = ("none", "residual", "swiglu")


@triton.jit
def linear_kernel(
    x_ptr, w_ptr, out_ptr, res_ptr, M, N, K,
    stride_xm, stride_wn, stride_om, stride_rm,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_SIZE: tl.constexpr, EPILOGUE: tl.constexpr, EVEN_K: tl.constexpr,
):  # fmt: skip
    """One ``BLOCK_M x BLOCK_N`` tile of ``epilogue(x @ W^T)``; rows of x and W contiguous in K."""
    num_pid_m, num_pid_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    pid_m, pid_n = grouped_tile(tl.program_id(0), num_pid_m, num_pid_n, GROUP_SIZE)
    rows = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    cols = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    ks = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + rows[:, None].to(tl.int64) * stride_xm + ks[None, :]
    w_ptrs = w_ptr + cols[None, :].to(tl.int64) * stride_wn + ks[:, None]  # a tile of W^T
    up_ptrs = w_ptrs + N * stride_wn  # swiglu: the up rows follow the N gate rows
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            x = tl.load(x_ptrs)
            w = tl.load(w_ptrs)
        else:
            k_left = K - k * BLOCK_K
            x = tl.load(x_ptrs, mask=ks[None, :] < k_left, other=0.0)
            w = tl.load(w_ptrs, mask=ks[:, None] < k_left, other=0.0)
        acc = tl.dot(x, w, acc)
        if EPILOGUE == "swiglu":
            if EVEN_K:
                up = tl.load(up_ptrs)
            else:
                up = tl.load(up_ptrs, mask=ks[:, None] < K - k * BLOCK_K, other=0.0)
            acc_up = tl.dot(x, up, acc_up)
            up_ptrs += BLOCK_K
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    out_rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    out_cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (out_rows[:, None] < M) & (out_cols[None, :] < N)
    if EPILOGUE == "swiglu":  # silu(gate) * up, while both tiles are in registers
        acc = acc * tl.sigmoid(acc) * acc_up
    if EPILOGUE == "residual":  # the residual stream's addition, one load of the tile
        res = tl.load(res_ptr + out_rows[:, None].to(tl.int64) * stride_rm + out_cols[None, :],
                      mask=mask, other=0.0)  # fmt: skip
        acc += res.to(tl.float32)
    out_ptrs = out_ptr + out_rows[:, None].to(tl.int64) * stride_om + out_cols[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask)


# Decode products (M <= 64): memory-bound, tiles 16 rows tall and narrow (see the module docstring).
DECODE_CONFIGS = [
    _config(16, 16, 256, 4, 4),
    _config(16, 32, 256, 4, 4),
    _config(16, 64, 128, 4, 4),
    _config(16, 64, 256, 4, 3),
    _config(16, 128, 128, 4, 3),
]
DECODE_MAX_M = 64
CPU_TILE = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_SIZE": 4}
CPU_CONFIGS = [_config(32, 32, 32, 4, 1, group=4)]  # the interpreter ignores warps and stages
SWIGLU_MAX_TILE = 128 * 128  # two fp32 accumulators of 128 x 256 would not fit in registers


def autotune_configs() -> list[triton.Config]:
    return PREFILL_CONFIGS + DECODE_CONFIGS if configure().on_gpu else CPU_CONFIGS


def prune_configs(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
    """Decode shapes get the decode tiles; prefill shapes lesson 3's choice among its own."""
    if not configure().on_gpu:
        return configs
    m, n = named_args["M"], named_args["N"]
    decode = [c for c in configs if c.kwargs["BLOCK_M"] == 16]
    if m <= DECODE_MAX_M:
        return decode
    prefill = [c for c in configs if c.kwargs["BLOCK_M"] != 16]
    if kwargs.get("EPILOGUE", named_args.get("EPILOGUE")) == "swiglu":
        # two accumulators: at most 128 x 128 fp32 values each, and 8 warps to hold that many
        prefill = [c for c in prefill if c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] < SWIGLU_MAX_TILE
                   or (c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] == SWIGLU_MAX_TILE
                       and c.num_warps == 8)]  # fmt: skip
    sms = torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    return candidate_configs(prefill, m, n, named_args["x_ptr"].element_size(), sms)


def _even_k(args: dict) -> bool:
    return args["K"] % args["BLOCK_K"] == 0


# The residual epilogue may update its output in place (out is residual): timing a configuration
# runs the kernel many times, so the autotuner restores the output after each timing.
linear_autotuned = triton.autotune(
    configs=autotune_configs(),
    key=["M", "N", "K", "EPILOGUE"],
    restore_value=["out_ptr"],
    prune_configs_by={"early_config_prune": prune_configs},
)(triton.heuristics({"EVEN_K": _even_k})(linear_kernel))


def _require_fits(name: str, t: torch.Tensor, x: torch.Tensor, m: int, n: int) -> None:
    """``out`` and ``residual`` must be on x's device, of x's dtype, with m * n elements."""
    if t.device != x.device:
        raise ValueError(f"linear: {name} is on {t.device} but x is on {x.device}")
    if t.dtype != x.dtype:
        raise TypeError(f"linear: {name} is {t.dtype} but x is {x.dtype}; convert one with .to()")
    if t.numel() != m * n or t.shape[-1] != n:
        raise ValueError(
            f"linear: {name} has shape {tuple(t.shape)}; the product needs {m} rows of {n}"
        )


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    epilogue: str = "none",
    *,
    residual: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    kernel=None,
    config: dict | None = None,
) -> torch.Tensor:
    """``epilogue(x @ weight^T)`` for ``x`` of shape ``(..., K)`` and ``weight`` ``(N', K)``.

    ``"none"`` and ``"residual"`` give ``N = N'`` columns (``residual`` has the output's shape and
    may be ``out`` itself); ``"swiglu"`` reads ``weight`` as ``[gate; up]`` and gives ``N = N'/2``.
    ``kernel`` (with ``config``) launches another compilation of :func:`linear_kernel`, such as
    ``mini_compiler.jit(linear_kernel)``; by default the autotuned Triton kernel runs.
    """
    if epilogue not in EPILOGUES:
        raise ValueError(f"linear: epilogue {epilogue!r} is not one of {EPILOGUES}")
    require_tensor("linear", "x", x, contiguous=False)
    require_tensor("linear", "weight", weight)
    if x.dtype != weight.dtype or x.shape[-1] != weight.shape[1] or x.stride(-1) != 1:
        raise ValueError(
            f"linear: x {tuple(x.shape)} {x.dtype} and weight {tuple(weight.shape)} "
            f"{weight.dtype} do not fit: x's last dimension must equal weight's second, with the "
            "same dtype, and be contiguous"
        )
    rows = x.reshape(-1, x.shape[-1])
    m, k = rows.shape
    n = weight.shape[0] // 2 if epilogue == "swiglu" else weight.shape[0]
    if epilogue == "swiglu" and weight.shape[0] % 2:
        raise ValueError("linear: a swiglu weight stacks gate and up: it needs an even row count")
    if out is None:
        out = torch.empty(m, n, device=x.device, dtype=x.dtype)
    _require_fits("out", out, x, m, n)
    if residual is not None:
        _require_fits("residual", residual, x, m, n)
    out2 = out.reshape(m, n)
    if epilogue == "residual":
        if residual is None or residual.shape[-1] != n:
            raise ValueError(
                "linear: the 'residual' epilogue needs residual= of the output's shape"
            )
        res2 = residual.reshape(m, n)
    else:
        res2 = out2  # not read
    args = (rows, weight, out2, res2, m, n, k, rows.stride(0), weight.stride(0), out2.stride(0),
            res2.stride(0))  # fmt: skip

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

    if kernel is None and config is None:
        linear_autotuned[grid](*args, EPILOGUE=epilogue)
    else:
        cfg = dict(config or CPU_TILE)
        cfg.setdefault("EVEN_K", k % cfg["BLOCK_K"] == 0)
        (kernel or linear_kernel)[grid](*args, EPILOGUE=epilogue, **cfg)
    return out.reshape(*x.shape[:-1], n)


def linear_reference(x, weight, epilogue="none", residual=None):
    """The same in torch (for checks), computed in the inputs' dtype."""
    if epilogue == "swiglu":
        gate, up = weight.chunk(2, dim=0)
        return torch.nn.functional.silu(x @ gate.T) * (x @ up.T)
    y = x @ weight.T
    return y + residual if epilogue == "residual" else y
