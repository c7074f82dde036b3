"""The grader restores the course's checks and cannot be fooled by a tampered submission.

A small lesson with three pure-Python exercises (fast to execute) stands in for a real one: its
solution notebook is written to a temporary ``solutions/`` folder, the released student version is
made from it exactly as ``course.student_notebooks`` does, and each test edits that release the
way a learner might before grading it.
"""

from __future__ import annotations

import copy

import nbformat
import pytest

from course.grade import grade_notebook
from course.student_notebooks import make_student_version

NAME = "09_tiny.ipynb"

SOLUTION_CELLS = [
    ("code", [], "import course\n\nenv = course.setup(verbose=False)"),
    (
        "code",
        ["exercise"],
        "def grid_size(n_elements, block_size):\n    ### BEGIN SOLUTION\n"
        "    return (n_elements + block_size - 1) // block_size\n    ### END SOLUTION",
    ),
    (
        "code",
        ["check"],
        "from course.exercises import lesson01\n\nlesson01.check_grid_size(grid_size)",
    ),  # noqa: E501
    (
        "code",
        ["exercise"],
        "def grouped_pid(pid, num_pid_m, num_pid_n, group_size):\n    ### BEGIN SOLUTION\n"
        "    per_group = group_size * num_pid_n\n    first_m = (pid // per_group) * group_size\n"
        "    rows = min(num_pid_m - first_m, group_size)\n"
        "    return first_m + (pid % per_group) % rows, (pid % per_group) // rows\n"
        "    ### END SOLUTION",
    ),
    (
        "code",
        ["check"],
        "from course.exercises import lesson03\n\nlesson03.check_grouped_pid(grouped_pid)",
    ),  # noqa: E501
    (
        "code",
        ["exercise"],
        "def causal_key_tiles(tile_m, block_m, block_n, n):\n    ### BEGIN SOLUTION\n"
        "    start = tile_m * block_m\n    end = -(-min(start + block_m, n) // block_n)\n"
        "    return range(start // block_n), range(start // block_n, end)\n    ### END SOLUTION",
    ),
    (
        "code",
        ["check"],
        "from course.exercises import lesson04\n\n"
        "lesson04.check_causal_key_tiles(causal_key_tiles)\n"
        "### BEGIN HIDDEN TESTS\nassert grid_size(10**12, 7) == -(-10**12 // 7), 'hidden test'\n"
        "### END HIDDEN TESTS",
    ),
]


def _answer(source: str) -> str:
    """The solution as a learner would submit it: the markers gone, the code kept."""
    return source.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", "")


SOLVED = {index: _answer(SOLUTION_CELLS[index][2]) for index in (1, 3, 5)}


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    """(solutions folder, released student notebook) of the tiny lesson."""
    root = tmp_path_factory.mktemp("course")
    solutions = root / "solutions"
    solutions.mkdir()
    nb = nbformat.v4.new_notebook()
    for _kind, tags, source in SOLUTION_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, solutions / NAME)
    return solutions, make_student_version(nb, NAME)


def _grade(tmp_path, solutions, submission):
    path = tmp_path / "submission" / NAME
    path.parent.mkdir()
    nbformat.write(submission, path)
    return grade_notebook(path, solutions=solutions, timeout=120)


def _solved(release, skip=()):
    nb = copy.deepcopy(release)
    for index, source in SOLVED.items():
        if index not in skip:
            nb.cells[index].source = source
    return nb


def _messages(grade):
    return {c.grade_id.rsplit("-", 1)[-1]: (c.scored, c.message) for c in grade.checks}


def test_a_solved_submission_scores_every_check(tmp_path, lesson):
    solutions, release = lesson
    grade = _grade(tmp_path, solutions, _solved(release))
    assert (grade.scored, grade.possible) == (3, 3), _messages(grade)


def test_an_unsolved_submission_scores_nothing_and_says_why(tmp_path, lesson):
    solutions, release = lesson
    grade = _grade(tmp_path, solutions, release)
    assert grade.scored == 0
    assert all("not solved yet" in message for _, message in _messages(grade).values())


def test_checks_replaced_by_pass_or_deleted_score_zero(tmp_path, lesson):
    """Today's failure mode: replace check cells with `pass` and delete one, solve nothing."""
    solutions, release = lesson
    nb = copy.deepcopy(release)
    nb.cells[2].source = "pass"
    nb.cells[4].source = "pass"
    del nb.cells[6]
    grade = _grade(tmp_path, solutions, nb)
    messages = _messages(grade)
    assert grade.scored == 0, messages
    assert "the check cell was changed" in messages["1"][1]
    assert "not solved yet" in messages["1"][1]  # the restored check ran, and says how it went
    assert "the check cell is missing" in messages["3"][1]


def test_an_altered_check_scores_zero_even_when_the_answer_is_right(tmp_path, lesson):
    solutions, release = lesson
    nb = _solved(release)
    nb.cells[2].source += "\nprint('checked!')"
    messages = _messages(_grade(tmp_path, solutions, nb))
    assert messages["1"][0] == 0
    restored = "the check cell was changed; the course's check, restored, gave: passed"
    assert restored in messages["1"][1]
    assert messages["2"][0] == messages["3"][0] == 1


def test_a_check_replaced_in_memory_is_restored(tmp_path, lesson):
    solutions, release = lesson
    nb = copy.deepcopy(release)
    cheat = nbformat.v4.new_code_cell(
        "import course.exercises.lesson01 as l1, course.exercises.lesson03 as l3\n"
        "import course.check\n"
        "l1.check_grid_size = lambda f: None\n"
        "l3.check_grouped_pid = lambda f: None\n"
        "course.check.check_close = lambda *a, **k: None\n"
        "lesson01 = l1"
    )
    nb.cells.insert(1, cheat)
    grade = _grade(tmp_path, solutions, nb)
    assert grade.scored == 0, _messages(grade)


def test_swallowed_errors_do_not_pass(tmp_path, lesson):
    solutions, release = lesson
    nb = copy.deepcopy(release)
    cheat = nbformat.v4.new_code_cell(
        "ip = get_ipython()\n"
        "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "ip.showtraceback = lambda *a, **k: None\n"
        "ip.events.register('pre_run_cell', lambda info: print(info.raw_cell[-60:]))"
    )
    nb.cells.insert(1, cheat)
    grade = _grade(tmp_path, solutions, nb)
    assert grade.scored == 0, _messages(grade)


def test_hidden_tests_from_the_source_version_are_run(tmp_path, lesson):
    solutions, release = lesson
    nb = _solved(release)
    # right for every case the visible check tries, wrong for the hidden one
    nb.cells[1].source = (
        "def grid_size(n_elements, block_size):\n"
        "    return (n_elements + block_size - 1) // block_size if n_elements < 10**9 else 1"
    )
    messages = _messages(_grade(tmp_path, solutions, nb))
    assert messages["1"][0] == 1
    assert messages["3"][0] == 0 and "hidden test" in messages["3"][1]


def test_a_submission_with_an_unknown_name_is_refused(tmp_path, lesson):
    solutions, release = lesson
    path = tmp_path / "renamed.ipynb"
    nbformat.write(release, path)
    with pytest.raises(SystemExit, match="no lesson called renamed.ipynb"):
        grade_notebook(path, solutions=solutions)
