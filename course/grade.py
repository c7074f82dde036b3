"""Grade submitted student notebooks: run the learner's answers against the course's own checks.

A submission is the learner's copy of a student notebook, and everything in it is the learner's to
change, including the check cells. So the grader trusts none of them, the way nbgrader's autograde
does not:

1. It builds the released version of the lesson from ``solutions/`` (exactly what
   ``python -m course.student_notebooks`` writes to ``notebooks/``) and, from the same source, the
   full check cells, hidden tests included.
2. Every check cell of the submission is found by its nbgrader ``grade_id`` and replaced by the
   course's version. A check cell that is missing scores 0; one whose source differs from the
   released version scores 0 too, with a message (its restored check still runs, and the message
   says how it went, so a learner who only added a print is not left guessing).
3. Before each restored check, a guard cell removes what earlier cells could have installed to
   fake a pass: IPython hooks, input and AST transformers, exception handlers; the check reloads
   the course's check modules, so a check replaced in memory is replaced back.
4. A check scores its points only if it runs to its last line, which prints a token that is new
   for every run, and raises no error. An error swallowed on the way also loses the token.

It runs the submitted code, so run it where that is safe (a container or a throw-away account).

usage::

    python -m course.grade submissions/alice/01_vector_add.ipynb submissions/bob/01_vector_add.ipynb
    python -m course.grade --json scores.json submissions/*/*.ipynb
    make grade SUBMISSIONS="submissions/*/*.ipynb"
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .student_notebooks import BEGIN_HIDDEN, END_HIDDEN, ROOT, make_student_version

GUARD = """\
# Added by the grader: undo what earlier cells could have installed to fake a passing check.
_grader_shell = get_ipython()
for _grader_callbacks in _grader_shell.events.callbacks.values():
    _grader_callbacks[:] = [
        f for f in _grader_callbacks
        if getattr(f, "__module__", "").split(".")[0]
        in ("IPython", "ipykernel", "matplotlib_inline")
    ]
_grader_shell.ast_transformers.clear()
_grader_shell.input_transformers_post.clear()
_grader_shell.set_custom_exc((), None)
for _grader_name in ("showtraceback", "_showtraceback", "run_cell", "run_code", "run_ast_nodes"):
    _grader_shell.__dict__.pop(_grader_name, None)
del _grader_shell, _grader_callbacks, _grader_name
"""

RELOAD = """\
# Added by the grader: the course's checks, fresh from disk.
import importlib as _grader_importlib
import course.check as _grader_check
_grader_importlib.reload(_grader_check)
import course.exercises as _grader_exercises
_grader_importlib.reload(_grader_exercises)
"""


@dataclass
class CheckResult:
    grade_id: str
    points: float
    scored: float
    message: str


@dataclass
class Grade:
    notebook: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def scored(self) -> float:
        return sum(c.scored for c in self.checks)

    @property
    def possible(self) -> float:
        return sum(c.points for c in self.checks)


@dataclass
class ReleasedCheck:
    grade_id: str
    points: float
    released_source: str  # what the learner was given (hidden tests removed)
    graded_source: str  # what the grader runs (hidden tests included)


def _without_hidden_markers(source: str) -> str:
    return "\n".join(
        line for line in source.split("\n") if line.strip() not in (BEGIN_HIDDEN, END_HIDDEN)
    )


def released_checks(solution_path: Path) -> list[ReleasedCheck]:
    """The check cells of a lesson, in order, from its solution notebook."""
    solution = nbformat.read(solution_path, as_version=4)
    student = make_student_version(solution, solution_path.name)
    checks = []
    for source_cell, released_cell in zip(solution.cells, student.cells, strict=True):
        meta = released_cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            checks.append(
                ReleasedCheck(
                    grade_id=meta["grade_id"],
                    points=float(meta.get("points", 1)),
                    released_source=released_cell.source,
                    graded_source=_without_hidden_markers(source_cell.source),
                )
            )
    return checks


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _normalised(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().split("\n"))


def _lesson_modules(source: str) -> list[str]:
    return sorted(set(re.findall(r"\b(lesson0\d(?:_compiler)?)\.check_", source)))


def _graded_cell(check: ReleasedCheck, token: str):
    modules = _lesson_modules(check.graded_source)
    imports = "".join(
        f"import course.exercises.{m} as {m}\n_grader_importlib.reload({m})\n" for m in modules
    )
    source = f"{RELOAD}{imports}\n{check.graded_source}\nprint({token!r})\n"
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["grader"] = {"grade_id": check.grade_id}
    return cell


def _first_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def _printed(cell, token: str) -> bool:
    return any(
        output.get("output_type") == "stream" and token in output.get("text", "")
        for output in cell.get("outputs", [])
    )


def build_graded_notebook(submission, checks: list[ReleasedCheck], token: str):
    """The submission with every check cell replaced by the course's, and a guard before each.

    Returns the notebook and, per grade id, what was wrong with the submitted cell (or None)."""
    nb = copy.deepcopy(submission)
    by_id = {check.grade_id: check for check in checks}
    problems: dict[str, str | None] = {}
    cells = []
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id in by_id and grade_id not in problems:
            check = by_id[grade_id]
            if cell.cell_type != "code" or _normalised(cell.source) != _normalised(
                check.released_source
            ):
                problems[grade_id] = "the check cell was changed"
            else:
                problems[grade_id] = None
            cells.append(nbformat.v4.new_code_cell(GUARD))
            cells.append(_graded_cell(check, token))
        elif grade_id in by_id:  # a second copy of a check: drop it
            continue
        else:
            cells.append(cell)
    for check in checks:
        if check.grade_id not in problems:
            problems[check.grade_id] = (
                "the check cell is missing (deleted, or its metadata removed)"
            )
    nb.cells = cells
    return nb, problems


def _solution_for(path: Path, solutions: Path) -> Path:
    source = solutions / path.name
    if not source.exists():
        known = ", ".join(p.name for p in sorted(solutions.glob("*.ipynb")))
        raise SystemExit(
            f"{path}: no lesson called {path.name} in {solutions}/ (known: {known}). Keep the "
            "released file name, or pass --solutions."
        )
    return source


def grade_notebook(path: Path, *, solutions: Path | None = None, timeout: int = 600) -> Grade:
    """Execute the submission at ``path`` with the course's checks restored, and score them."""
    solutions = solutions or ROOT / "solutions"
    checks = released_checks(_solution_for(path, solutions))
    submission = nbformat.read(path, as_version=4)
    token = f"graded-{secrets.token_hex(16)}"
    nb, problems = build_graded_notebook(submission, checks, token)
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    ran = {c.metadata["grader"]["grade_id"]: c for c in nb.cells if "grader" in c.metadata}
    grade = Grade(notebook=str(path))
    for check in checks:
        problem = problems[check.grade_id]
        cell = ran.get(check.grade_id)
        if cell is None:
            grade.checks.append(CheckResult(check.grade_id, check.points, 0.0, f"0: {problem}"))
            continue
        error = _first_error(cell)
        if error is None and not _printed(cell, token):
            error = "the check did not run to its end"
        outcome = "passed" if error is None else error
        if problem:
            message = f"0: {problem}; the course's check, restored, gave: {outcome}"
            grade.checks.append(CheckResult(check.grade_id, check.points, 0.0, message))
        else:
            scored = check.points if error is None else 0.0
            grade.checks.append(CheckResult(check.grade_id, check.points, scored, outcome))
    return grade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write every score to this JSON file")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    parser.add_argument(
        "--solutions",
        type=Path,
        default=ROOT / "solutions",
        help="the folder of solution notebooks the checks come from (default: the course's)",
    )
    args = parser.parse_args(argv)
    grades = []
    for path in args.submissions:
        grade = grade_notebook(path, solutions=args.solutions, timeout=args.timeout)
        grades.append(grade)
        print(f"{path}: {grade.scored:g} / {grade.possible:g}")
        for check in grade.checks:
            mark = "✓" if check.scored else "✗"
            print(f"  {mark} {check.grade_id}: {check.message.splitlines()[0][:200]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**asdict(g), "scored": g.scored, "possible": g.possible} for g in grades],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
