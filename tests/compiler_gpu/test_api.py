"""The learner-facing API of mini_compiler.backends.gpu, as its docstring shows it (no GPU)."""

from __future__ import annotations

import pytest
import torch

from mini_compiler.backends import gpu
from mini_compiler.backends.gpu.driver import GpuUnavailableError, load_kernel

from .conftest import ON_GPU, needs_ptxas


def compiled_vector_add():
    from course.kernels.vector_add import add_kernel

    x = torch.empty(1 << 16)
    return gpu.compile_for_gpu(add_kernel, x, x, x, 1 << 16, BLOCK_SIZE=1024, num_warps=4)


def test_every_stage_is_kept_as_text():
    compiled = compiled_vector_add()
    for stage in ("tile", "tile.infer_shapes", "tile.gpu", "llvm", "llvm.opt", "ptx"):
        assert compiled.asm[stage].strip(), stage
    assert "#blocked<spt=[4], tpw=[32], wpb=[4], order=[0]>" in compiled.asm["tile.gpu"]
    assert "ptx_kernel" in compiled.asm["llvm"]
    assert compiled.ptx is compiled.asm["ptx"]


def test_tile_layouts_and_rendering():
    compiled = compiled_vector_add()
    tiles = gpu.tile_layouts(compiled)
    load = next(t for t in tiles if t.op == "tile.load")
    assert load.shape == (1024,) and load.element == "f32"
    text = gpu.render_layout(load.layout, load.shape)
    assert text.split()[:5] == ["w0:t0", "w0:t0", "w0:t0", "w0:t0", "w0:t1"]
    view = gpu.thread_map(load.layout, load.shape)
    assert view["warp"][128] == 1 and view["lane"][4] == 1


@needs_ptxas
def test_ptxas_report_of_a_compiled_kernel():
    report = gpu.ptxas_report(compiled_vector_add())
    assert not report.kernel().spills


def test_the_runtime_finds_the_gpu_back_end():
    from mini_compiler.backends import backend_for_device

    assert backend_for_device("cuda") is gpu


def test_debug_switch_prints_the_gpu_stages(capsys):
    compiled = compiled_vector_add()
    gpu.compile_tile_ir(compiled.layout_ir, gpu.GpuOptions(), debug={"ir", "llvm", "ptx"})
    out = capsys.readouterr().out
    for banner in ("// ----- tile.gpu.coalesce -----", "// ----- tile.gpu.assign_layouts -----",
                   "// ----- tile.gpu.allocate_shared_memory -----",
                   "// ----- tile.gpu.insert_barriers -----", "// ----- llvm -----",
                   "// ----- ptx -----"):
        assert banner in out
    assert set(compiled.asm) >= {"tile.gpu.coalesce", "tile.gpu.assign_layouts",
                                 "tile.gpu.allocate_shared_memory", "tile.gpu.insert_barriers",
                                 "tile.gpu"}


@pytest.mark.skipif(ON_GPU, reason="checks the message given where there is no GPU")
def test_loading_without_a_gpu_says_what_is_missing():
    with pytest.raises(GpuUnavailableError, match="compile_for_gpu"):
        load_kernel(compiled_vector_add().ptx, "add_kernel")
