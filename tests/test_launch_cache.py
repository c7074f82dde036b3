"""The wrappers' launch cache: the bound launcher appends the compile-time constants in signature
order, and on a GPU a cached call with new data (or a differently aligned input) stays right."""

import pytest
import torch

import course
from course.kernels import _launch
from course.kernels import attention as att
from course.kernels import matmul as mm
from course.kernels import softmax as sm
from course.kernels.matmul import tolerance

ENV = course.configure()
DEVICE = ENV.device


class FakeParam:
    def __init__(self, num, is_constexpr, default=None):
        self.num, self.is_constexpr, self.default = num, is_constexpr, default


class FakeKernel:
    """Stands in for a JITFunction: four run-time arguments, then three constants."""

    arg_names = ["x", "y", "n", "scale", "BLOCK", "MODE", "FLAG"]
    params = [FakeParam(i, i >= 4, default=("off" if i == 6 else None)) for i in range(7)]


class FakeCompiled:
    """Records launches through Triton's runner (``compiled[grid](...)``) and its launcher."""

    function, packed_metadata = "function", "metadata"

    def __init__(self, launcher_accepts=True):
        self.calls, self.direct_calls = [], []
        self.launcher_accepts = launcher_accepts

    def __getitem__(self, grid):
        def runner(*args):
            self.calls.append((grid, args))

        return runner

    def run(self, gx, gy, gz, stream, function, metadata, launch_metadata, enter, exit, *args):
        if not self.launcher_accepts:
            raise TypeError("function takes exactly 12 arguments")
        assert (stream, function, metadata) == ("stream", "function", "metadata")
        self.direct_calls.append(((gx, gy, gz), args))


@pytest.fixture(autouse=True)
def fake_stream(monkeypatch):
    monkeypatch.setattr(_launch, "_stream_getter", lambda: (lambda device: "stream", 0))


def test_bound_launcher_appends_constants_in_signature_order_and_defaults():
    cache, compiled = _launch.LaunchCache(), FakeCompiled()
    cache.remember("key", compiled, (4,), FakeKernel, {"MODE": "fast", "BLOCK": 64})
    cache.get("key")(1, 2, 3, 0.5)
    assert compiled.direct_calls == [((4, 1, 1), (1, 2, 3, 0.5, 64, "fast", "off"))]
    assert cache.get("other") is None


def test_a_launcher_that_refuses_the_arguments_falls_back_to_the_runner():
    cache, compiled = _launch.LaunchCache(), FakeCompiled(launcher_accepts=False)
    cache.remember("key", compiled, (4, 2), FakeKernel, {"MODE": "fast", "BLOCK": 64})
    cache.get("key")(1, 2, 3, 0.5)
    cache.get("key")(5, 6, 7, 0.5)
    assert compiled.calls == [((4, 2, 1), (1, 2, 3, 0.5, 64, "fast", "off")),
                              ((4, 2, 1), (5, 6, 7, 0.5, 64, "fast", "off"))]  # fmt: skip


def test_launch_compiles_once_then_reuses_the_bound_launcher():
    compiled, launches = FakeCompiled(), []

    class Kernel(FakeKernel):
        def __getitem__(self, grid):
            def first_launch(*args, **kwargs):
                launches.append((grid, args, kwargs))
                return compiled

            return first_launch

    cache, kernel = _launch.LaunchCache(), Kernel()
    for value in (1, 2, 3):
        cache.launch("k", kernel, (2, 3), ("x", "y", value, 1.0), {"BLOCK": 8, "MODE": "m"},
                     num_warps=4)  # fmt: skip
    assert launches == [((2, 3), ("x", "y", 1, 1.0), {"BLOCK": 8, "MODE": "m", "num_warps": 4})]
    assert [args for _, args in compiled.direct_calls] == [
        ("x", "y", 2, 1.0, 8, "m", "off"), ("x", "y", 3, 1.0, 8, "m", "off")]


def test_cache_is_bounded_and_switches_itself_off_on_an_unknown_kernel_form():
    cache = _launch.LaunchCache(max_entries=2)
    for key in range(3):
        cache.remember(key, FakeCompiled(), (1,), FakeKernel, {"BLOCK": 1, "MODE": 0})
    assert len(cache) == 1  # cleared when full, then the new key added

    class ConstantsFirst(FakeKernel):  # a run-time argument after a constant: not handled
        params = [FakeParam(0, True), FakeParam(1, False)]
        arg_names = ["C", "x"]

    cache.remember("z", FakeCompiled(), (1,), ConstantsFirst, {"C": 1})
    assert not cache.enabled and cache.get("z") is None


@pytest.mark.skipif(ENV.on_gpu, reason="checks the CPU path, where nothing is compiled to keep")
def test_interpreter_path_keeps_nothing():
    a = torch.randn(20, 20)
    mm.matmul(a, a)
    sm.softmax(a)
    assert len(mm._LAUNCHES) == 0 and len(sm._LAUNCHES) == 0 and len(att._LAUNCHES) == 0


@pytest.mark.skipif(not ENV.on_gpu, reason="the launch cache holds compiled GPU kernels")
def test_cached_matmul_is_right_with_new_data_and_other_alignments():
    for _ in range(3):  # the first call binds, later calls reuse the launcher on new data
        a = torch.randn(96, 80, device=DEVICE, dtype=torch.float16)
        b = torch.randn(80, 72, device=DEVICE, dtype=torch.float16)
        rtol, atol = tolerance(torch.float16, 80)
        torch.testing.assert_close(mm.matmul(a, b).double(), a.double() @ b.double(),
                                   rtol=rtol, atol=atol)  # fmt: skip
    bound = len(mm._LAUNCHES)
    assert bound >= 1
    flat = torch.randn(96 * 80 + 1, device=DEVICE, dtype=torch.float16)
    a = flat[1:].view(96, 80)  # same shape and strides, base not 16-byte aligned: another key
    torch.testing.assert_close(mm.matmul(a, b).double(), a.double() @ b.double(),
                               rtol=rtol, atol=atol)  # fmt: skip
    assert len(mm._LAUNCHES) == bound + 1


@pytest.mark.skipif(not ENV.on_gpu, reason="the launch cache holds compiled GPU kernels")
def test_cached_softmax_and_attention_are_right_with_new_data():
    for _ in range(3):
        x = torch.randn(37, 300, device=DEVICE)
        torch.testing.assert_close(sm.softmax(x), torch.softmax(x, -1))
        odd = torch.randn(37 * 300 + 1, device=DEVICE)[1:].view(37, 300)  # not 16-byte aligned
        torch.testing.assert_close(sm.softmax(odd), torch.softmax(odd, -1))
        q, k, v = (torch.randn(1, 2, 100, 64, device=DEVICE, dtype=torch.float16)
                   for _ in range(3))  # fmt: skip
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.testing.assert_close(att.attention(q, k, v, causal=True), expected,
                                   rtol=4e-3, atol=4e-3)  # fmt: skip
        q.requires_grad_(True)
        att.attention(q, k, v, causal=True).sum().backward()  # the backward launches, cached too
        assert torch.isfinite(q.grad).all()
    assert len(sm._LAUNCHES) >= 1 and len(att._LAUNCHES) >= 4


@pytest.mark.skipif(not ENV.on_gpu, reason="the softmax plans hold compiled GPU kernels")
def test_softmax_plan_is_only_taken_by_the_same_kind_of_tensor():
    """A plan is keyed by shape, strides, dtype, device and alignment: a transposed view, another
    dtype, a Parameter (a subclass) and an empty tensor each take the checked path."""
    x = torch.randn(64, 64, device=DEVICE)
    for _ in range(2):  # the second call takes the plan
        torch.testing.assert_close(sm.softmax(x), torch.softmax(x, -1))
    torch.testing.assert_close(sm.softmax(x.T), torch.softmax(x.T, -1))
    half = x.half()
    torch.testing.assert_close(sm.softmax(half), torch.softmax(half.float(), -1).half())
    weight = torch.nn.Parameter(x.clone())
    torch.testing.assert_close(sm.softmax(weight), torch.softmax(x, -1))
    with pytest.raises(ValueError, match="empty"):
        sm.softmax(torch.empty(0, 64, device=DEVICE))
    with pytest.raises(ValueError, match="on cpu"):
        sm.softmax(x.cpu())


def test_with_a_launch_hook_installed_the_runner_launches(monkeypatch):
    """A profiler's launch hook must see every launch: then Triton's runner does the launching."""
    from triton import knobs

    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", lambda metadata: None)
    cache, compiled = _launch.LaunchCache(), FakeCompiled()
    cache.remember("key", compiled, (1,), FakeKernel, {"MODE": "m", "BLOCK": 2})
    cache.get("key")(1, 2, 3, 0.5)
    assert compiled.direct_calls == [] and len(compiled.calls) == 1


@pytest.mark.skipif(not ENV.on_gpu, reason="the matmul plans hold compiled GPU kernels")
def test_matmul_plan_is_only_taken_by_the_same_kind_of_call():
    """After a cached call, other strides, dtypes, a subclass, a bad activation and a wrong
    device each take the checked path: right answers, or the wrapper's own errors."""
    a = torch.randn(96, 80, device=DEVICE, dtype=torch.float16)
    b = torch.randn(80, 72, device=DEVICE, dtype=torch.float16)
    expected = a.double() @ b.double()
    rtol, atol = tolerance(torch.float16, 80)
    for _ in range(2):  # the second call takes the plan
        torch.testing.assert_close(mm.matmul(a, b).double(), expected, rtol=rtol, atol=atol)
    bt = b.T.contiguous().T  # the same values, column-major
    torch.testing.assert_close(mm.matmul(a, bt).double(), expected, rtol=rtol, atol=atol)
    weight = torch.nn.Parameter(b.clone())
    torch.testing.assert_close(mm.matmul(a, weight).detach().double(), expected, rtol=rtol,
                               atol=atol)  # fmt: skip
    with pytest.raises(ValueError, match="activation 'gelu'"):
        mm.matmul(a, b, "gelu")
    with pytest.raises(TypeError, match="convert one with"):
        mm.matmul(a, b.float())
    with pytest.raises(ValueError, match="on cpu"):
        mm.matmul(a, b.cpu())
