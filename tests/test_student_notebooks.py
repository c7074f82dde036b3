"""Student notebooks are generated from the solutions, never edited by hand, and leak no answer."""

import nbformat
import pytest

from course import student_notebooks as sn


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _code(source, *tags):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.outputs = [nbformat.v4.new_output("stream", text="old output")]
    cell.execution_count = 3
    return cell


def test_repository_student_notebooks_are_up_to_date():
    assert sn.problems(sn.ROOT / "solutions", sn.ROOT / "notebooks") == []


def test_every_solution_has_a_student_version():
    solutions = {p.name for p in (sn.ROOT / "solutions").glob("*.ipynb")}
    students = {p.name for p in (sn.ROOT / "notebooks").glob("*.ipynb")}
    assert solutions and solutions == students


def test_answer_becomes_an_indented_stub_and_cells_are_tagged():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    nb = sn.make_student_version(
        _notebook(_code(source, "exercise"), _code("check(f)", "check")), "t.ipynb"
    )
    exercise, check = nb.cells
    assert exercise.source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert exercise.outputs == [] and exercise.execution_count is None
    assert exercise.metadata["tags"] == ["exercise", "raises-exception"]
    assert exercise.metadata["nbgrader"]["solution"] is True
    assert check.metadata["tags"] == ["check", "raises-exception"]
    assert check.metadata["nbgrader"]["points"] == 1


def test_hidden_tests_are_removed():
    source = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\n"
    nb = sn.make_student_version(
        _notebook(
            _code("### BEGIN SOLUTION\nf = 1\n### END SOLUTION", "exercise"), _code(source, "check")
        ),
        "t.ipynb",
    )
    assert nb.cells[1].source == "check(f)\n"


@pytest.mark.parametrize(
    "cells, message",
    [
        ([_code("x = 1", "exercise"), _code("c()", "check")], "tagged 'exercise' but has no"),
        ([_code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "not tagged 'exercise'"),
        ([_code("### BEGIN SOLUTION\nx = 1", "exercise"), _code("c()", "check")], "never closed"),
        (
            [_code("x = 1\n### END SOLUTION", "exercise"), _code("c()", "check")],
            "without a matching",
        ),
        (
            [_code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "exercise")],
            "no cell tagged 'check'",
        ),
    ],
    ids=["no-markers", "untagged", "unclosed", "unopened", "no-check"],
)
def test_inconsistent_solutions_are_rejected(cells, message):
    with pytest.raises(sn.NotebookFormatError, match=message):
        sn.make_student_version(_notebook(*cells), "t.ipynb")


def test_check_mode_finds_stale_missing_and_leaking_notebooks(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    notebooks.mkdir()
    solution = _notebook(
        _code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "exercise"), _code("c()", "check")
    )
    nbformat.write(solution, solutions / "a.ipynb")
    assert sn.problems(solutions, notebooks) == ["a.ipynb is missing from notebooks/"]

    assert sn.main(["--solutions", str(solutions), "--notebooks", str(notebooks)]) == 0
    assert sn.problems(solutions, notebooks) == []
    assert sn.main(["--check", "--solutions", str(solutions), "--notebooks", str(notebooks)]) == 0

    nbformat.write(solution, notebooks / "a.ipynb")  # a solution copied over the student version
    found = sn.problems(solutions, notebooks)
    assert "a.ipynb in notebooks/ is not what solutions/ generates" in found
    assert any("an answer or hidden test leaked" in p for p in found)
    assert sn.main(["--check", "--solutions", str(solutions), "--notebooks", str(notebooks)]) == 1


def test_nbgrader_source_keeps_answers_marks_cells_and_picks_lessons(tmp_path, capsys):
    solutions, source = tmp_path / "solutions", tmp_path / "source"
    solutions.mkdir()
    solution = _notebook(
        _code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "exercise"), _code("c()", "check")
    )
    for name in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(solution, solutions / name)
    args = ["--nbgrader-source", str(source), "--solutions", str(solutions)]
    assert sn.main([*args, "--lesson", "02_b"]) == 0
    assert [p.name for p in source.iterdir()] == ["02_b.ipynb"]
    exercise, check = nbformat.read(source / "02_b.ipynb", as_version=4).cells
    assert sn.BEGIN_SOLUTION in exercise.source  # nbgrader removes the answer itself
    assert exercise.metadata["nbgrader"]["solution"] is True
    assert check.metadata["nbgrader"] == {**check.metadata["nbgrader"], "grade": True, "points": 1}
    assert exercise.outputs == [] and check.outputs == []
    with pytest.raises(SystemExit):
        sn.main([*args, "--lesson", "03_c"])
    assert "no lesson 03_c" in capsys.readouterr().err
