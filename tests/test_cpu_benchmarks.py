"""What the lessons' benchmark cells run without a GPU, and how the plots label it."""

import pytest
import torch
import triton

import course
from course.kernels import vector_add


@pytest.mark.skipif(course.configure().on_gpu, reason="the CPU path")
def test_on_a_cpu_the_benchmark_runs_mini_compilers_x86_code_not_the_interpreter():
    kernel, label = course.timing.compiled_here(vector_add.add_kernel)
    assert label == "mini_compiler, x86"
    assert type(kernel).__module__.startswith("mini_compiler")
    n = 5000
    x, y, out = torch.randn(n), torch.randn(n), course.empty_poisoned(n)
    kernel[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK_SIZE=1024)
    course.check_close(out, x.double() + y.double(), quiet=True)
    timing = course.bench(lambda: kernel[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK_SIZE=1024))
    assert timing.method == "cpu-wall" and "not GPU speed" in str(timing)


def test_the_plot_draws_one_labelled_ceiling_per_dtype_and_graph_series_dotted():
    fig = course.plots.throughput(
        [1, 2],
        {"ours": [1.0, 2.0], "ours graph": [1.5, 2.5]},
        ceiling={"cuBLAS fp16": 600.0, "cuBLAS bf16": 650.0},
        on_gpu=True,
    )
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "cuBLAS fp16 (600)" in labels and "cuBLAS bf16 (650)" in labels
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].get_lines()}
    assert styles["ours graph"] == ":" and styles["ours"] == "-"
    single = course.plots.throughput([1], {"a": [1.0]}, ceiling=3.0, ceiling_label="copy")
    assert "copy (3)" in [line.get_label() for line in single.axes[0].get_lines()]
