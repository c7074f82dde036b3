"""Device choice, sizes, timing labels, result records and the grader."""

import json

import pytest
import torch

import course
from course import env, results, timing
from course.sizes import SIZES


def test_cpu_can_be_forced_and_says_why(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    chosen = env._decide()
    assert chosen.device == "cpu" and chosen.interpreted and "COURSE_DEVICE=cpu" in chosen.reason


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without a GPU"
)
def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(
        RuntimeError, match="COURSE_DEVICE=cuda asks for a GPU, but torch sees none"
    ):
        env._decide()


def test_interpreter_is_on_exactly_when_there_is_no_gpu():
    import os

    chosen = course.configure()
    assert (os.environ.get("TRITON_INTERPRET") == "1") == chosen.interpreted


def test_setup_prints_the_choice(capsys):
    chosen = course.setup()
    out = capsys.readouterr().out
    assert ("Running on the GPU" in out) == chosen.on_gpu
    assert ("Triton's interpreter" in out) == chosen.interpreted


def test_sizes_come_from_the_table_for_this_device():
    device = course.configure().device
    assert course.sizes("vector_add") == SIZES["vector_add"][device]
    with pytest.raises(KeyError, match="known lessons: vector_add"):
        course.sizes("no_such_lesson")


def test_cpu_timings_are_labelled_not_gpu_speed(monkeypatch):
    monkeypatch.setattr(env, "_chosen", env.Environment("cpu", "CPU", "test"))
    t = course.bench(lambda: sum(range(1000)))
    assert t.method == "cpu-wall" and not t.on_gpu and t.ms > 0
    assert "not GPU speed" in str(t)


def test_throughput_units():
    t = timing.Timing(ms=2.0, method="gpu-events")
    assert course.gbps(6_000_000_000, t) == pytest.approx(3000.0)
    assert course.tflops(2 * 10**12, t) == pytest.approx(1000.0)


def test_record_writes_device_date_versions_and_rows(tmp_path):
    path = results.record(
        "demo", [{"n": 1, "gbps": 2.5}], notes="a note", directory=tmp_path, ceiling=3.0
    )
    data = json.loads(path.read_text())
    assert path.parent.name == results.device_slug(course.configure().device_name)
    assert data["rows"] == [{"n": 1, "gbps": 2.5}] and data["ceiling"] == 3.0
    for key in ("device", "date", "torch", "triton", "python", "notes"):
        assert data[key], key


def test_device_slug():
    assert results.device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_show_finds_the_source_of_a_triton_kernel():
    from course.kernels.vector_add import add_kernel

    assert course.source(add_kernel).lstrip().startswith("@triton.jit\ndef add_kernel(")


def test_grader_scores_an_unsolved_and_a_solved_notebook(tmp_path):
    """The released lesson 1 as handed out, and with every answer filled in from solutions/."""
    import nbformat

    from course import grade

    root = results.RESULTS_DIR.parent.parent
    name = "01_vector_add.ipynb"
    released = nbformat.read(root / "notebooks" / name, as_version=4)
    solution = nbformat.read(root / "solutions" / name, as_version=4)
    solved = nbformat.from_dict(released)
    for mine, theirs in zip(solved.cells, solution.cells, strict=True):
        if mine.metadata.get("nbgrader", {}).get("solution"):
            mine.source = "\n".join(
                line for line in theirs.source.split("\n") if "### BEGIN SOLUTION" not in line
                and "### END SOLUTION" not in line
            )  # fmt: skip
    paths = {}
    for who, nb in (("solved", solved), ("unsolved", released)):
        paths[who] = tmp_path / who / name
        paths[who].parent.mkdir()
        nbformat.write(nb, paths[who])
    good = grade.grade_notebook(paths["solved"])
    bad = grade.grade_notebook(paths["unsolved"])
    assert good.possible == bad.possible >= 3
    assert good.scored == good.possible, [c.message for c in good.checks]
    assert bad.scored == 0 and all("not solved yet" in c.message for c in bad.checks)
