"""A learner's sliding-window attention kernel, with two switches for the ways it can be written:
``SKIP`` starts the key loop at the window's first tile (off: it visits every earlier tile, still
right), ``RELOAD_Q`` loads the query tile again for every key tile (right, but it moves more
bytes). The tests of lesson 4's window exercise feed it to the check both ways."""

import triton
import triton.language as tl


@triton.jit
def sliding_window_kernel(Q, K, V, Out, N, qk_scale, WINDOW, HEAD_DIM: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SKIP: tl.constexpr = True,
                          RELOAD_Q: tl.constexpr = False):  # fmt: skip
    start_m = tl.program_id(0) * BLOCK_M
    base = tl.program_id(1).to(tl.int64) * N * HEAD_DIM
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = offs_m[:, None] < N
    q_ptrs = Q + base + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    q = tl.load(q_ptrs, mask=rows, other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    lo = 0
    if SKIP:
        lo = (tl.maximum(start_m - WINDOW + 1, 0) // BLOCK_N) * BLOCK_N
    hi = tl.minimum(start_m + BLOCK_M, N)
    for start_n in range(lo, hi, BLOCK_N):
        if RELOAD_Q:  # right, but loads the query tile again for every key tile
            q = tl.load(q_ptrs, mask=rows, other=0.0)
        offs_n = start_n + tl.arange(0, BLOCK_N)
        kv = offs_n[:, None] * HEAD_DIM + offs_d[None, :]
        k = tl.load(K + base + kv, mask=offs_n[:, None] < N, other=0.0)
        v = tl.load(V + base + kv, mask=offs_n[:, None] < N, other=0.0)
        qk = tl.dot(q, tl.trans(k)) * qk_scale
        cols = offs_n[None, :]
        keep = (cols < N) & (cols <= offs_m[:, None]) & (cols > offs_m[:, None] - WINDOW)
        qk = tl.where(keep, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(qk - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None])
        m_i = m_new
    out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
    tl.store(Out + base + offs_m[:, None] * HEAD_DIM + offs_d[None, :],
             out.to(Out.dtype.element_ty), mask=rows)  # fmt: skip
