"""Solutions of lesson 5's exercises, as in solutions/05_llm_decoder.ipynb: the tests derive
wrong answers from them by text replacement."""

import triton
import triton.language as tl


@triton.jit
def rope_kernel(x_ptr, cos_ptr, sin_ptr, out_ptr, n_heads, HEAD_DIM: tl.constexpr):
    HALF: tl.constexpr = HEAD_DIM // 2
    t = tl.program_id(0)
    h = tl.program_id(1)
    d = tl.arange(0, HALF)
    row = (t * n_heads + h) * HEAD_DIM  # where this token's head starts
    x1 = tl.load(x_ptr + row + d)
    x2 = tl.load(x_ptr + row + HALF + d)
    cos = tl.load(cos_ptr + t * HALF + d)
    sin = tl.load(sin_ptr + t * HALF + d)
    tl.store(out_ptr + row + d, x1 * cos - x2 * sin)
    tl.store(out_ptr + row + HALF + d, x2 * cos + x1 * sin)


@triton.jit
def matmul_swiglu_kernel(
    x_ptr, w_ptr, out_ptr, M, N, K, stride_xm, stride_wn, stride_om,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    rows = (pid // num_pid_n) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = (pid % num_pid_n) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + ks
        x = tl.load(x_ptr + rows[:, None] * stride_xm + kk[None, :],
                    mask=(rows[:, None] < M) & (kk[None, :] < K), other=0.0)
        w_mask = (kk[:, None] < K) & (cols[None, :] < N)
        w_gate = tl.load(w_ptr + cols[None, :] * stride_wn + kk[:, None], mask=w_mask, other=0.0)
        w_up = tl.load(w_ptr + (N + cols[None, :]) * stride_wn + kk[:, None], mask=w_mask,
                       other=0.0)  # the up rows follow the N gate rows
        gate = tl.dot(x, w_gate, gate)
        up = tl.dot(x, w_up, up)
    out = gate * tl.sigmoid(gate) * up
    tl.store(out_ptr + rows[:, None] * stride_om + cols[None, :], out,
             mask=(rows[:, None] < M) & (cols[None, :] < N))


@triton.jit
def gqa_decode_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, n_keys, max_seq, sm_scale,
    N_HEADS: tl.constexpr, N_KV_HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid = tl.program_id(0)  # = b * N_HEADS + h
    b = pid // N_HEADS
    h = pid % N_HEADS
    kv = h // (N_HEADS // N_KV_HEADS)  # consecutive query heads share a key/value head
    d = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + pid * HEAD_DIM + d)
    base = (b * N_KV_HEADS + kv) * max_seq * HEAD_DIM
    m_i = tl.full([HEAD_DIM], float("-inf"), tl.float32)  # the running max, kept in every lane
    l_i = tl.zeros([HEAD_DIM], tl.float32)
    acc = tl.zeros([HEAD_DIM], tl.float32)
    for start in range(0, n_keys, BLOCK_N):
        n = start + tl.arange(0, BLOCK_N)
        keep = n < n_keys
        offsets = base + n[:, None] * HEAD_DIM + d[None, :]
        k = tl.load(k_ptr + offsets, mask=keep[:, None], other=0.0)
        v = tl.load(v_ptr + offsets, mask=keep[:, None], other=0.0)
        s = tl.where(keep, tl.sum(k * q[None, :], 1) * sm_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))
        p = tl.exp(s - tl.max(m_new, 0))
        alpha = tl.exp(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 0)
        acc = acc * alpha + tl.sum(p[:, None] * v, 0)
        m_i = m_new
    tl.store(out_ptr + pid * HEAD_DIM + d, acc / l_i)
