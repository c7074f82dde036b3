"""Grade submitted student notebooks: run each one and score its check cells.

A check cell (tagged ``check``) scores its points when it runs without error, that is when the
check it calls accepts the learner's answer on fresh random inputs. The grader executes the whole
submission in a fresh kernel, from the submission's own folder, and prints one line per check with
the check's own explanation when it fails. It runs the submitted code, so run it where that is
safe (a container or a throw-away account).

usage::

    python -m course.grade submissions/alice/01_vector_add.ipynb submissions/bob/01_vector_add.ipynb
    python -m course.grade --json scores.json submissions/*/*.ipynb
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient


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


def _first_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def grade_notebook(path: Path, *, timeout: int = 600) -> Grade:
    """Execute ``path`` (errors allowed) and score every cell tagged ``check``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    grade = Grade(notebook=str(path))
    number = 0
    for cell in nb.cells:
        if "check" not in cell.metadata.get("tags", []):
            continue
        number += 1
        meta = cell.metadata.get("nbgrader", {})
        points = float(meta.get("points", 1))
        grade_id = meta.get("grade_id", f"{path.stem}-check-{number}")
        error = _first_error(cell)
        if cell.get("execution_count") is None and error is None:
            error = "the cell did not run"
        grade.checks.append(
            CheckResult(grade_id, points, 0.0 if error else points, error or "passed")
        )
    return grade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write every score to this JSON file")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    grades = []
    for path in args.submissions:
        grade = grade_notebook(path, timeout=args.timeout)
        grades.append(grade)
        print(f"{path}: {grade.scored:g} / {grade.possible:g}")
        for check in grade.checks:
            mark = "✓" if check.scored else "✗"
            print(f"  {mark} {check.grade_id}: {check.message.splitlines()[0][:160]}")
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
