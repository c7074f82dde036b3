"""Going further on Hopper: the persistent TMA matmul and the TMA attention kernels.

On the CPU Triton's interpreter runs tensor descriptors (zeros past the edges included), so the same
tests run there at small sizes; on a GPU they run larger shapes with the GPU configurations.
Every output is compared with a float64 (matmul) or float32 (attention) reference on shapes that
are not multiples of the tiles, after the output buffer would have been poisoned: the kernels
allocate their outputs with ``torch.empty``, so a tile left unwritten shows up as garbage.
"""

from dataclasses import replace

import pytest
import torch

import course
from course.kernels.attention import attention_forward
from course.kernels.attention_hopper import (
    HopperBwdConfig,
    HopperFwdConfig,
    attention_backward_hopper,
    attention_forward_hopper,
    attention_hopper,
    default_bwd_config,
)
from course.kernels.attention_hopper import default_config as attention_default_config
from course.kernels.matmul import tolerance
from course.kernels.matmul_hopper import HopperConfig, default_config, matmul_hopper, tma_ready

ENV = course.configure()
DEVICE = ENV.device
DTYPES = [torch.float16, torch.bfloat16] if ENV.on_gpu else [torch.float16, torch.float32]
SHAPES = [(100, 70, 50), (33, 129, 17), (64, 64, 64), (1, 40, 8)]
if ENV.on_gpu:
    SHAPES += [(1000, 1000, 1000), (777, 555, 333), (4100, 2060, 1032), (1, 4096, 64)]


def steps(m: int, n: int) -> dict[str, HopperConfig]:
    """The lesson's steps on this device: persistent (two ways), + TMA, + epilogue subtile."""
    chosen = default_config(m, n)
    # 3 stages: four stages of 128 x 256 tiles fit shared memory only with the subtiled epilogue
    base = replace(chosen, epilogue_subtile=False, warp_specialize=False, num_stages=3)
    return {
        "persistent": replace(base, tma=False),
        "persistent, not flattened": replace(base, tma=False, flatten=False),
        "tma": base,
        "tma + subtile": replace(base, epilogue_subtile=True),
        "chosen": chosen,
    }


def check(actual, expected, dtype, k):
    rtol, atol = tolerance(dtype, k)
    course.check_close(actual, expected, name="matmul_hopper", rtol=rtol, atol=atol, quiet=True)


STEP_NAMES = ["persistent", "persistent, not flattened", "tma", "tma + subtile", "chosen"]


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_matmul_matches_float64_on_ragged_shapes(m, n, k, dtype, step):
    a = torch.randn(m, k, device=DEVICE, dtype=dtype)
    b = torch.randn(k, n, device=DEVICE, dtype=dtype)
    c = matmul_hopper(a, b, config=steps(m, n)[step])
    assert c.shape == (m, n) and c.dtype == dtype
    check(c, a.double() @ b.double(), dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_default_config_and_bf16(dtype):
    a = torch.randn(130, 90, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn(90, 70, device=DEVICE, dtype=torch.bfloat16)
    check(matmul_hopper(a, b), a.double() @ b.double(), torch.bfloat16, 90)
    a, b = a.to(dtype), b.to(dtype)
    check(matmul_hopper(a, b), a.double() @ b.double(), dtype, 90)


@pytest.mark.parametrize("programs", [1, 2, 5, 1000])
def test_matmul_any_number_of_persistent_programs(programs):
    a = torch.randn(150, 60, device=DEVICE, dtype=torch.float16)
    b = torch.randn(60, 140, device=DEVICE, dtype=torch.float16)
    check(matmul_hopper(a, b, programs=programs), a.double() @ b.double(), torch.float16, 60)


@pytest.mark.parametrize("layout", ["b transposed", "a transposed", "sliced", "odd offset"])
def test_matmul_layouts_tma_cannot_describe_directly(layout):
    m, n, k = 70, 45, 90
    a = torch.randn(m, k, device=DEVICE, dtype=torch.float16)
    b = torch.randn(k, n, device=DEVICE, dtype=torch.float16)
    if layout == "b transposed":  # read as B^T, no copy
        b = b.t().contiguous().t()
    if layout == "a transposed":  # copied into a padded buffer
        a = a.t().contiguous().t()
    if layout == "sliced":
        a = torch.randn(m, 2 * k, device=DEVICE, dtype=torch.float16)[:, ::2]
    if layout == "odd offset":  # base address not 16-byte aligned
        a = torch.randn(m * k + 1, device=DEVICE, dtype=torch.float16)[1:].view(m, k)
    check(
        matmul_hopper(a, b, "leaky_relu"),
        torch.nn.functional.leaky_relu(a.double() @ b.double(), 0.01),
        torch.float16,
        k,
    )


def test_tma_ready_pads_rows_to_16_bytes_and_keeps_values():
    t = torch.randn(5, 7, device=DEVICE, dtype=torch.float16)
    padded = tma_ready(t)
    assert padded.shape == (5, 8) and padded.stride(0) * 2 % 16 == 0
    assert torch.equal(padded[:, :7], t) and torch.equal(padded[:, 7], torch.zeros_like(t[:, 0]))
    aligned = torch.randn(4, 16, device=DEVICE, dtype=torch.float16)
    assert tma_ready(aligned) is aligned


def test_matmul_empty_dimensions():
    a = torch.randn(5, 0, device=DEVICE, dtype=torch.float16)
    b = torch.randn(0, 3, device=DEVICE, dtype=torch.float16)
    assert torch.equal(matmul_hopper(a, b), torch.zeros(5, 3, device=DEVICE, dtype=torch.float16))


def test_matmul_bad_input_says_what_to_do():
    a = torch.randn(8, 8, device=DEVICE, dtype=torch.float16)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        matmul_hopper(a, torch.randn(9, 8, device=DEVICE, dtype=torch.float16))
    with pytest.raises(TypeError, match="dtype"):
        matmul_hopper(a.int(), a.int())
    with pytest.raises(ValueError, match="activation"):
        matmul_hopper(a, a, "gelu")


@pytest.mark.skipif(
    not ENV.on_gpu,
    reason="fp32 is refused only on a GPU, where the lesson's "
    "kernel does fp32; the interpreter takes fp32",
)
def test_matmul_refuses_fp32_on_gpu_and_names_the_alternative():
    a = torch.randn(8, 8, device=DEVICE)
    with pytest.raises(TypeError, match="course.kernels.matmul for fp32"):
        matmul_hopper(a, a)


ATTENTION_SHAPES = [(1, 2, 100, 64), (2, 1, 128, 32), (1, 2, 77, 16)]
if ENV.on_gpu:
    ATTENTION_SHAPES += [(1, 3, 1000, 128), (2, 2, 4096 + 13, 64), (1, 2, 2048, 128)]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ATTENTION_SHAPES)
def test_attention_matches_reference_and_lesson_lse(shape, dtype, causal):
    q, k, v = (torch.randn(*shape, device=DEVICE, dtype=dtype) for _ in range(3))
    o, lse = attention_forward_hopper(q, k, v, causal=causal)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), is_causal=causal
    )
    tol = 2e-2 if dtype == torch.bfloat16 else 4e-3
    course.check_close(o.float(), expected, name="attention_hopper", rtol=tol, atol=tol, quiet=True)
    _, lse_lesson = attention_forward(q, k, v, causal=causal)  # the backward pass needs this lse
    torch.testing.assert_close(lse, lse_lesson, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_lazy_rescale_matches_reference_when_the_maximum_keeps_growing(causal):
    """Keys scaled up along the sequence make every row's maximum grow tile after tile, by more
    than 2^16 in all (past fp16's range): the stale-maximum branch and the rescaling branch
    both run, and a threshold too lax would overflow P."""
    n = 300 if not ENV.on_gpu else 2000
    dtype = DTYPES[0]
    q, k, v = (torch.randn(1, 2, n, 64, device=DEVICE, dtype=dtype) for _ in range(3))
    k = (k.float() * torch.linspace(0.1, 8.0, n, device=DEVICE)[:, None]).to(dtype)
    cfg = replace(attention_default_config(64, causal), lazy_rescale=True)
    o, lse = attention_forward_hopper(q, k, v, causal=causal, config=cfg)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), is_causal=causal
    )
    course.check_close(o.float(), expected, name="lazy rescale", rtol=4e-3, atol=4e-3, quiet=True)
    _, lse_lesson = attention_forward(q, k, v, causal=causal)
    torch.testing.assert_close(lse, lse_lesson, rtol=1e-3, atol=1e-3)


def test_attention_ragged_tile_ignores_the_next_heads_values():
    """Rows past N in the 2-D view belong to the next head: an inf there must not leak in."""
    n = 77 if not ENV.on_gpu else 1000
    dtype = DTYPES[0]
    q, k, v = (torch.randn(1, 2, n, 64, device=DEVICE, dtype=dtype) for _ in range(3))
    v[:, 1] = float("inf")  # head 1's values; head 0's last key tile overlaps them
    o = attention_hopper(q, k, v)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q[:, :1].float(), k[:, :1].float(), v[:, :1].float()
    )
    course.check_close(o[:, :1].float(), expected, name="head 0", rtol=4e-3, atol=4e-3, quiet=True)


def test_attention_bad_input_says_what_to_do():
    q = torch.randn(1, 2, 16, 64, device=DEVICE, dtype=DTYPES[0])
    with pytest.raises(ValueError, match="4 dimensions"):
        attention_hopper(q[0], q[0], q[0])
    with pytest.raises(ValueError, match="head_dim 48"):
        x = torch.randn(1, 2, 16, 48, device=DEVICE, dtype=DTYPES[0])
        attention_hopper(x, x, x)
    with pytest.raises(TypeError, match="torch.Tensor"):
        attention_hopper(q, q, "v")
    with pytest.raises(ValueError, match="multiple of block_n"):
        attention_forward_hopper(q, q, q, config=HopperFwdConfig(64, 128))


def reference_grads(q, k, v, do, causal):
    """dQ, dK, dV of attention in float64, by autograd through torch's own attention."""
    q64, k64, v64 = (t.double().requires_grad_() for t in (q, k, v))
    o = torch.nn.functional.scaled_dot_product_attention(q64, k64, v64, is_causal=causal)
    return torch.autograd.grad(o, (q64, k64, v64), do.double())


# Every way of getting dQ the device has (the interpreter has no bulk reduce).
DQ_MODES = ["kernel", "atomics"] + (["bulk reduce"] if ENV.on_gpu else [])


@pytest.mark.parametrize("how", DQ_MODES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ATTENTION_SHAPES)
def test_attention_backward_matches_float64(shape, dtype, causal, how):
    q, k, v, do = (torch.randn(*shape, device=DEVICE, dtype=dtype) for _ in range(4))
    o, lse = attention_forward_hopper(q, k, v, causal=causal)
    cfg = default_bwd_config(shape[-1], causal, dq=how)
    grads = attention_backward_hopper(do, q, k, v, o, lse, causal=causal, config=cfg)
    tol = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    for name, got, expected in zip("qkv", grads, reference_grads(q, k, v, do, causal), strict=True):
        assert got.dtype == dtype and got.shape == q.shape
        course.check_close(got.double(), expected, name=f"d{name}", rtol=tol, atol=tol, quiet=True)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # head 1 itself is all NaN
@pytest.mark.parametrize("how", DQ_MODES)
def test_attention_backward_ragged_tiles_ignore_the_next_heads_rows(how):
    """Key and query tiles that cross N read the next head's rows: an inf there must not leak."""
    n = 77 if not ENV.on_gpu else 1000
    dtype = DTYPES[0]
    for causal in (False, True):
        cfg = default_bwd_config(64, causal, dq=how)
        q, k, v, do = (torch.randn(1, 2, n, 64, device=DEVICE, dtype=dtype) for _ in range(4))
        o, lse = attention_forward_hopper(q, k, v, causal=causal)
        for t in (q, k, v, do):
            t[:, 1] = float("inf")  # head 1's rows; head 0's last tiles overlap them
        grads = attention_backward_hopper(do, q, k, v, o, lse, causal=causal, config=cfg)
        head0 = reference_grads(q[:, :1], k[:, :1], v[:, :1], do[:, :1], causal)
        for name, got, expected in zip("qkv", grads, head0, strict=True):
            course.check_close(
                got[:, :1].double(),
                expected,
                name=f"d{name} of head 0",
                rtol=1e-2,
                atol=1e-2,
                quiet=True,
            )


def test_attention_hopper_is_differentiable():
    dtype = DTYPES[0]
    q, k, v = (
        torch.randn(1, 2, 40, 32, device=DEVICE, dtype=dtype, requires_grad=True) for _ in range(3)
    )
    attention_hopper(q, k, v, causal=True).float().square().sum().backward()
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    o64 = torch.nn.functional.scaled_dot_product_attention(q64, k64, v64, is_causal=True)
    o64.square().sum().backward()
    for name, t, t64 in (("q", q, q64), ("k", k, k64), ("v", v, v64)):
        course.check_close(
            t.grad.double(), t64.grad, name=f"d{name}", rtol=2e-2, atol=2e-2, quiet=True
        )


def test_attention_backward_bad_input_says_what_to_do():
    q = torch.randn(1, 2, 16, 64, device=DEVICE, dtype=DTYPES[0])
    o, lse = attention_forward_hopper(q, q, q)
    with pytest.raises(ValueError, match="pass the o and lse the forward pass returned"):
        attention_backward_hopper(q, q, q, q, o, lse[..., :8])
    with pytest.raises(ValueError, match="block_n must be a multiple of block_m"):
        attention_backward_hopper(q, q, q, q, o, lse, config=HopperBwdConfig(64, 32))
    with pytest.raises(ValueError, match="block_m2 of block_n2"):
        attention_backward_hopper(q, q, q, q, o, lse, config=HopperBwdConfig(block_n2=256))
    with pytest.raises(ValueError, match="dq must be one of"):
        attention_backward_hopper(q, q, q, q, o, lse, config=HopperBwdConfig(dq="tma"))
    if not ENV.on_gpu:
        with pytest.raises(ValueError, match="use dq='kernel' or 'atomics'"):
            attention_backward_hopper(q, q, q, q, o, lse, config=HopperBwdConfig(dq="bulk reduce"))
