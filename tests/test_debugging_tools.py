"""course.debugging: the memory checker and profiler runners behave on machines without the tools,
pick the lines that matter from the tools' output, and the planted bug is found on the CPU too.
The tools' real output comes from a GPU run of lessons 1 and 2; here stand-in scripts print text
in the tools' format."""

import stat
import sys
import xml.etree.ElementTree as ET

import pytest
import torch

import course.debugging as debugging
from course.figures import path as figure_path
from course.figures.pipeline import pipeline_svg

MEMCHECK_OUTPUT = """\
========= COMPUTE-SANITIZER
planted bug ran: n = 100, BLOCK_SIZE = 128, result right
========= Invalid __global__ read of size 4 bytes
=========     at add_nomask+0x90 in /repo/course/debugging/planted_bug.py:23
=========     by thread (100,0,0) in block (0,0,0)
=========     Address 0x7f0000000190 is out of bounds
=========     and is 1 bytes after the nearest allocation at 0x7f0000000000 of size 400 bytes
=========     Saved host backtrace up to driver entry point at kernel launch time
========= ERROR SUMMARY: 84 errors
"""

NCU_OUTPUT = """\
==PROF== Connected to process 1234
==PROF== Profiling "softmax_kernel": 0%....50%....100% - 8 passes
  softmax_kernel (32768, 1, 1)x(512, 1, 1), Context 1, Stream 7, Device 0, CC 9.0
    Section: GPU Speed Of Light Throughput
    ----------------------- ----------- ------------
    Metric Name             Metric Unit Metric Value
    ----------------------- ----------- ------------
    DRAM Frequency                  Ghz         2.62
    SM Frequency                    Ghz         1.75
    Elapsed Cycles                cycle      478,123
    Memory Throughput                 %        92.31
    DRAM Throughput                   %        92.31
    Duration                         us       273.54
    Compute (SM) Throughput           %        21.40
    ----------------------- ----------- ------------
"""


def fake_tool(tmp_path, name, text, seconds=0):
    """An executable that prints ``text`` (after ``seconds``), standing in for an NVIDIA tool."""
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nimport sys, time\ntime.sleep({seconds})\n"
                      f"sys.stdout.write({text!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_without_a_gpu_the_tools_say_so(monkeypatch):
    monkeypatch.setattr(debugging, "_gpu_present", lambda: False)
    for run in (debugging.run_memcheck(), debugging.run_ncu()):
        assert not run.available and "needs an NVIDIA GPU" in run.message
        assert str(run) == run.message


def test_a_missing_tool_is_explained(monkeypatch):
    monkeypatch.setattr(debugging, "_gpu_present", lambda: True)
    monkeypatch.setattr(debugging, "find_tool", lambda name: None)
    run = debugging.run_memcheck()
    assert not run.available and "was not found" in run.message and "CUDA" in run.message


def test_memcheck_lines_that_matter_are_kept(monkeypatch, tmp_path):
    tool = fake_tool(tmp_path, "compute-sanitizer", MEMCHECK_OUTPUT)
    monkeypatch.setattr(debugging, "_gpu_present", lambda: True)
    monkeypatch.setattr(debugging, "find_tool", lambda name: tool)
    run = debugging.run_memcheck()
    assert run.available
    text = str(run)
    assert "Invalid __global__ read of size 4 bytes" in text
    assert "planted_bug.py:23" in text and "block (0,0,0)" in text
    assert "ERROR SUMMARY: 84 errors" in text and "Saved host backtrace" not in text


def test_ncu_metrics_are_read(monkeypatch, tmp_path):
    tool = fake_tool(tmp_path, "ncu", NCU_OUTPUT)
    monkeypatch.setattr(debugging, "_gpu_present", lambda: True)
    monkeypatch.setattr(debugging, "find_tool", lambda name: tool)
    run = debugging.run_ncu()
    assert run.available
    assert debugging.metric(run, "DRAM Throughput") == (92.31, "%")
    assert debugging.metric(run, "Compute (SM) Throughput") == (21.40, "%")
    assert debugging.metric(run, "Duration") == (273.54, "us")
    assert debugging.metric(run, "Elapsed Cycles") == (478123.0, "cycle")
    assert debugging.metric(run, "L2 Hit Rate") is None
    assert not any(line.startswith("==PROF==") for line in run.relevant)


def test_counters_not_allowed_is_explained(monkeypatch, tmp_path):
    tool = fake_tool(tmp_path, "ncu", "==ERROR== ERR_NVGPUCTRPERM - no permission\n")
    monkeypatch.setattr(debugging, "_gpu_present", lambda: True)
    monkeypatch.setattr(debugging, "find_tool", lambda name: tool)
    run = debugging.run_ncu()
    assert not run.available and "performance counters" in run.message


def test_a_slow_tool_times_out_with_a_message(monkeypatch, tmp_path):
    tool = fake_tool(tmp_path, "compute-sanitizer", MEMCHECK_OUTPUT, seconds=30)
    monkeypatch.setattr(debugging, "_gpu_present", lambda: True)
    monkeypatch.setattr(debugging, "find_tool", lambda name: tool)
    run = debugging.run_memcheck(timeout=1)
    assert not run.available and "did not finish within 1 s" in run.message


def test_breakpoints_print_locals_and_the_hook_comes_back(capsys):
    saved = sys.breakpointhook

    def kernel_like():
        offsets = [0, 1, 2, 3]
        breakpoint()
        return offsets

    with debugging.print_locals_at_breakpoint("offsets", "absent"):
        kernel_like()
    assert "stopped at line" in capsys.readouterr().out
    assert sys.breakpointhook is saved


def test_the_planted_bug_is_found_by_the_bounds_check():
    import mini_compiler
    from course.debugging import planted_bug

    x, y, out = torch.randn(100), torch.randn(100), torch.empty(100)
    with pytest.raises(mini_compiler.OutOfBoundsError, match=r"planted_bug.py:\d+.*offset 100"):
        mini_compiler.jit(planted_bug.add_nomask)[(1,)](x, y, out, 100, BLOCK_SIZE=128,
                                                         bounds_check=True)


def test_the_pipeline_figure_is_current_and_well_formed():
    assert figure_path("compiler_pipeline").read_text() == pipeline_svg(), \
        "run python -m course.figures.pipeline and commit compiler_pipeline.svg"
    root = ET.fromstring(pipeline_svg())
    assert root.tag.endswith("svg")
    with pytest.raises(FileNotFoundError, match="compiler_pipeline"):
        figure_path("no_such_figure")
