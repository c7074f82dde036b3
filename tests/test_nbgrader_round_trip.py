"""An instructor's nbgrader round trip works: release from solutions/, submit, autograde, score.

This is what the README's instructor workflow does, with nbgrader's own command line: the
solutions are written as nbgrader's source, ``nbgrader generate_assignment`` releases them (the
release must match the student notebooks in ``notebooks/``), a learner "submits" lesson 1 with
two exercises right, one wrong and two left unsolved, and ``nbgrader autograde`` runs it. The
gradebook must then hold one point for each check whose exercise is right, and none for the rest.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course.student_notebooks import BEGIN_SOLUTION, END_SOLUTION, ROOT
from course.student_notebooks import main as student_notebooks

api = pytest.importorskip("nbgrader.api", reason="nbgrader comes with the `grading` extra")

LESSON = "01_vector_add"
ASSIGNMENT = "lessons"  # one assignment holding all four lessons
CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "triton-course"
c.Execute.timeout = 600
"""


def _nbgrader(course: Path, *args: str) -> str:
    # nbgrader runs `alembic` from PATH: put this environment's scripts first.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stderr


def _answer(source: str) -> str:
    """A solution cell as a learner who solved it would leave it: the answer, no markers."""
    return "\n".join(
        line for line in source.split("\n") if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
    )


def _exercises(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course directory with the lessons released by nbgrader."""
    course = tmp_path_factory.mktemp("nbgrader-course")
    (course / "nbgrader_config.py").write_text(CONFIG)
    source = course / "source" / ASSIGNMENT
    assert student_notebooks(["--nbgrader-source", str(source)]) == 0
    _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


def test_nbgrader_releases_the_student_notebooks(course):
    for student in sorted((ROOT / "notebooks").glob("*.ipynb")):
        released = nbformat.read(course / "release" / ASSIGNMENT / student.name, as_version=4)
        ours = nbformat.read(student, as_version=4)
        assert [c.source for c in released.cells] == [c.source for c in ours.cells], student.name
        assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in released.cells] == [
            c.metadata.get("nbgrader", {}).get("grade_id") for c in ours.cells
        ]


def test_a_partly_solved_submission_is_autograded_to_the_right_score(course):
    released = nbformat.read(course / "release" / ASSIGNMENT / f"{LESSON}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / f"{LESSON}.ipynb", as_version=4)
    answers = [c.source for c in solution.cells if "exercise" in c.metadata.get("tags", [])]
    exercises = _exercises(released)
    assert len(exercises) == len(answers) == 6, "lesson 1's exercises changed: update this test"
    exercises[0].source = _answer(answers[0])  # axpy: right
    exercises[2].source = (  # grid size: the classic off-by-one, a partial block gets no program
        "def grid_size(n_elements: int, block_size: int) -> int:\n"
        "    return n_elements // block_size\n"
    )
    exercises[3].source = _answer(answers[3])  # constant folding of //: right
    # exercises 2 (reverse), 5 (lowering abs) and 6 (a simplification pass) are left unsolved
    submitted = course / "submitted" / "alice" / ASSIGNMENT
    submitted.mkdir(parents=True)
    nbformat.write(released, submitted / f"{LESSON}.ipynb")

    _nbgrader(course, "autograde", ASSIGNMENT, "--student", "alice")

    with api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(LESSON, ASSIGNMENT, "alice")
        scores = {grade.name: (grade.score, grade.max_score) for grade in notebook.grades}
    assert scores == {
        f"{LESSON}-check-1": (1.0, 1.0),
        f"{LESSON}-check-2": (0.0, 1.0),
        f"{LESSON}-check-3": (0.0, 1.0),
        f"{LESSON}-check-4": (1.0, 1.0),
        f"{LESSON}-check-5": (0.0, 1.0),
        f"{LESSON}-check-6": (0.0, 1.0),
    }
    graded = nbformat.read(course / "autograded" / "alice" / ASSIGNMENT / f"{LESSON}.ipynb", 4)
    errors = {
        cell.metadata["nbgrader"]["grade_id"]: output["ename"]
        for cell in graded.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    }
    assert errors == {
        f"{LESSON}-check-2": "NotSolvedYet",
        f"{LESSON}-check-3": "WrongAnswer",
        f"{LESSON}-check-5": "NotSolvedYet",
        f"{LESSON}-check-6": "NotSolvedYet",
    }
