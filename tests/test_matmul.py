"""Lesson 3's matmul: right on shapes that are not multiples of the tiles, on strided inputs and
with the fused epilogue; clear about bad input."""

import pytest
import torch
import triton

import course
from course.kernels.matmul import (
    GPU_CONFIGS,
    candidate_configs,
    grouped_order,
    matmul,
    matmul_kernel,
    tolerance,
)

DEVICE = course.configure().device
SHAPES = [(100, 67, 93), (1, 1, 1), (65, 129, 200), (128, 64, 64)]
if DEVICE == "cuda":
    SHAPES += [(1000, 1000, 1000), (4097, 513, 1031)]


def check(actual, expected, dtype, k, name="matmul"):
    rtol, atol = tolerance(dtype, k)
    course.check_close(actual, expected, name=name, rtol=rtol, atol=atol, quiet=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_matches_float64_on_awkward_shapes(m, n, k, dtype):
    a = torch.randn(m, k, device=DEVICE, dtype=dtype)
    b = torch.randn(k, n, device=DEVICE, dtype=dtype)
    c = matmul(a, b)
    assert c.shape == (m, n) and c.dtype == dtype
    check(c, a.double() @ b.double(), dtype, k)


@pytest.mark.parametrize("layout", ["a transposed", "b transposed", "both transposed", "sliced"])
def test_strided_inputs(layout):
    m, n, k = 70, 45, 90
    a = torch.randn(m, k, device=DEVICE, dtype=torch.float16)
    b = torch.randn(k, n, device=DEVICE, dtype=torch.float16)
    if layout in ("a transposed", "both transposed"):
        a = a.t().contiguous().t()
    if layout in ("b transposed", "both transposed"):
        b = b.t().contiguous().t()
    if layout == "sliced":
        a = torch.randn(m, 2 * k, device=DEVICE, dtype=torch.float16)[:, ::2]
        b = torch.randn(k + 5, n + 7, device=DEVICE, dtype=torch.float16)[5:, 7:]
    check(matmul(a, b), a.double() @ b.double(), torch.float16, k)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_leaky_relu_epilogue(dtype):
    a = torch.randn(77, 50, device=DEVICE, dtype=dtype)
    b = torch.randn(50, 33, device=DEVICE, dtype=dtype)
    expected = torch.nn.functional.leaky_relu(a.double() @ b.double(), 0.01)
    check(matmul(a, b, activation="leaky_relu"), expected, dtype, 50)


def test_kernel_with_a_fixed_configuration_writes_every_element():
    m, n, k = 50, 70, 48
    a = torch.randn(m, k, device=DEVICE, dtype=torch.float16)
    b = torch.randn(k, n, device=DEVICE, dtype=torch.float16)
    c = course.empty_poisoned(m, n, dtype=torch.float16, device=DEVICE)
    config = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_SIZE": 2}
    grid = (triton.cdiv(m, 32) * triton.cdiv(n, 32),)
    matmul_kernel[grid](
        a,
        b,
        c,
        m,
        n,
        k,
        a.stride(0),
        a.stride(1),
        b.stride(0),
        b.stride(1),
        c.stride(0),
        c.stride(1),
        ACTIVATION=None,
        EVEN_K=False,
        **config,
    )
    check(c, a.double() @ b.double(), torch.float16, k)
    check(
        matmul(a, b, config={**config, "num_warps": 4, "num_stages": 2}),
        a.double() @ b.double(),
        torch.float16,
        k,
    )
    assert k % config["BLOCK_K"] == 0  # so the wrapper chose EVEN_K: the unmasked loop, also right


def test_empty_dimensions():
    a = torch.randn(3, 0, device=DEVICE)
    b = torch.randn(0, 4, device=DEVICE)
    assert torch.equal(matmul(a, b), torch.zeros(3, 4, device=DEVICE))
    assert matmul(torch.randn(0, 5, device=DEVICE), torch.randn(5, 2, device=DEVICE)).shape == (
        0,
        2,
    )


@pytest.mark.parametrize(
    "num_pid_m, num_pid_n, group", [(1, 1, 8), (5, 3, 2), (9, 4, 4), (4, 7, 8), (16, 16, 8)]
)
def test_grouped_order_is_a_permutation_in_groups(num_pid_m, num_pid_n, group):
    tiles = [
        grouped_order(pid, num_pid_m, num_pid_n, group) for pid in range(num_pid_m * num_pid_n)
    ]
    assert sorted(tiles) == [(i, j) for i in range(num_pid_m) for j in range(num_pid_n)]
    assert tiles[: min(group, num_pid_m)] == [
        (i, 0) for i in range(min(group, num_pid_m))
    ]  # down first


def _tiles(configs):
    return {(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]) for c in configs}


@pytest.mark.parametrize(
    "size, element_size, expected",
    [
        (8192, 2, {(128, 256)}),  # plenty of work: the biggest tile
        (4096, 2, {(128, 256)}),
        (2048, 2, {(128, 256)}),  # 128 tiles for 132 SMs is close enough to a full wave
        (1024, 2, {(64, 128), (128, 64)}),  # 128x128 would give only 64 programs
        (512, 2, {(64, 64)}),  # nothing fills the SMs: the smallest tile
        (4096, 4, {(128, 128)}),  # fp32: the 128x256 pipelines do not fit shared memory
    ],
)
def test_candidate_configs_take_the_biggest_tile_that_fills_the_sms(size, element_size, expected):
    chosen = candidate_configs(GPU_CONFIGS, size, size, element_size, sms=132)
    assert _tiles(chosen) == expected
    assert len({c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] for c in chosen}) == 1


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda a: (a, torch.randn(5, 3, device=DEVICE)),
            ValueError,
            r"inner dimensions differ: a is \(4, 6\) and b is \(5, 3\)",
        ),
        (lambda a: (a, a.t().half()), TypeError, "a is torch.float32 but b is torch.float16"),
        (lambda a: (a[0], a.t()), ValueError, r"a must be a 2-D matrix, but has shape \(6,\)"),
        (lambda a: (a, a.t().unsqueeze(0)), ValueError, "b must be a 2-D matrix"),
        (lambda a: (a.int(), a.t().int()), TypeError, "a has dtype torch.int32; supported dtypes"),
        (lambda a: (a.tolist(), a.t()), TypeError, "a must be a torch.Tensor, got list"),
    ],
    ids=["inner-dimensions", "mixed-dtypes", "1-d", "3-d", "integers", "not-a-tensor"],
)
def test_rejects_bad_input(make, error, message):
    a = torch.randn(4, 6, device=DEVICE)
    with pytest.raises(error, match=message):
        matmul(*make(a))


def test_rejects_unknown_activation():
    a = torch.randn(4, 4, device=DEVICE)
    with pytest.raises(ValueError, match="activation 'gelu' is not one of"):
        matmul(a, a, activation="gelu")


def test_rejects_tensors_on_another_device(monkeypatch):
    """On a GPU machine CPU tensors are refused; on a CPU machine, pretend the course uses a GPU."""
    from course import env

    if DEVICE == "cpu":
        monkeypatch.setattr(env, "_chosen", env.Environment("cuda", "pretend GPU", "test"))
    a = torch.randn(2, 2)
    with pytest.raises(
        ValueError, match=r"a is on cpu, but this course runs its kernels on the GPU"
    ):
        matmul(a, a)


# ---- lesson 3's exercise checks and widget -------------------------------------------------


def test_grouped_pid_check_accepts_the_reference_and_rejects_row_major(capsys):
    from course.exercises import lesson03

    lesson03.check_grouped_pid(grouped_order)
    assert "✓ grouped_pid" in capsys.readouterr().out
    with pytest.raises(course.WrongAnswer, match="program 1 should compute tile"):
        lesson03.check_grouped_pid(lambda pid, m, n, g: (pid // n, pid % n))


def test_grouped_pid_check_reports_a_stub():
    from course.exercises import lesson03

    def stub(pid, m, n, g):
        raise NotImplementedError()

    with pytest.raises(course.NotSolvedYet):
        lesson03.check_grouped_pid(stub)


def test_grouped_order_widget_counts_fewer_blocks_when_grouped():
    from course.widgets.grouped_order import grouped_order_view, launch_map, touched

    rows, cols = touched(launch_map(8, 8, None), 8)
    assert (len(rows), len(cols)) == (1, 8)
    rows, cols = touched(launch_map(8, 8, 4), 8)
    assert (len(rows), len(cols)) == (4, 2)
    assert grouped_order_view().children
