"""Launch helpers for the four course kernels (shared by several test modules)."""

import copy

import compiler_kernels as K
import torch
import triton

import mini_compiler
from mini_compiler.driver import interpret_with_runtime_args
from mini_compiler.frontend.codegen import build_tile_ir, kernel_source
from mini_compiler.passes.pipeline import PassManager
from mini_compiler.runtime.specialization import specialise

add = mini_compiler.jit(K.add_kernel)
softmax = mini_compiler.jit(K.softmax_kernel)
matmul = mini_compiler.jit(K.matmul_kernel)
attention = mini_compiler.jit(K.attention_kernel)


def run_add(x, y, block=256, **options):
    out = torch.full_like(x, float("nan"))
    n = x.numel()
    add[(triton.cdiv(n, block),)](x, y, out, n, BLOCK_SIZE=block, **options)
    return out


def softmax_call(x, out):
    block = triton.next_power_of_2(x.shape[1])
    return (x.shape[0],), (out, x, x.stride(0), out.stride(0), x.shape[1]), \
        {"BLOCK_SIZE": block}


def run_softmax(x, **options):
    out = torch.full_like(x, float("nan"))
    grid, args, meta = softmax_call(x, out)
    softmax[grid](*args, **meta, **options)
    return out


def matmul_call(a, b, c, block=32, group=4, activation=""):
    m, k = a.shape
    _, n = b.shape
    grid = (triton.cdiv(m, block) * triton.cdiv(n, block),)
    args = (a, b, c, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
            c.stride(1))
    meta = dict(BLOCK_SIZE_M=block, BLOCK_SIZE_N=block, BLOCK_SIZE_K=block, GROUP_SIZE_M=group,
                ACTIVATION=activation)
    return grid, args, meta


def run_matmul(a, b, block=32, activation="", **options):
    c = torch.full((a.shape[0], b.shape[1]), float("nan"))
    grid, args, meta = matmul_call(a, b, c, block, activation=activation)
    matmul[grid](*args, **meta, **options)
    return c


def attention_call(q, k, v, o, causal, block=32):
    batch, heads, n_ctx, head_dim = q.shape
    grid = (triton.cdiv(n_ctx, block), batch * heads)
    args = (q, k, v, o, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *o.stride()[:3],
            heads, n_ctx, head_dim ** -0.5)
    meta = dict(HEAD_DIM=head_dim, BLOCK_M=block, BLOCK_N=block, CAUSAL=causal)
    return grid, args, meta


def run_attention(q, k, v, causal, block=32, **options):
    o = torch.full_like(q, float("nan"))
    grid, args, meta = attention_call(q, k, v, o, causal, block)
    attention[grid](*args, **meta, **options)
    return o


def interpret_after_every_pass(jit_fn, grid, args, meta, outputs):
    """Run the un-optimised IR and the IR after each pass through the interpreter; return
    {stage name: copy of the output tensors} so a test can compare every stage with the first."""
    source = kernel_source(jit_fn.fn)
    spec = specialise(source, args, meta)
    manager = PassManager(record=False, snapshots=True)
    manager.run(build_tile_ir(jit_fn.fn, spec.params))
    results = {}
    for name, fn in manager.snapshots:
        for t in outputs:
            t.fill_(float("nan"))
        interpret_with_runtime_args(copy.deepcopy(fn), spec.runtime_args, grid)
        results[name] = [t.clone() for t in outputs]
    return results
