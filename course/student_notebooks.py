"""Write the student notebooks in ``notebooks/`` from the complete ones in ``solutions/``.

``solutions/`` is the source of truth. In it, an exercise is a code cell tagged ``exercise`` whose
answer sits between nbgrader's markers::

    ### BEGIN SOLUTION
    ...the answer...
    ### END SOLUTION

and it is followed by a cell tagged ``check`` that calls a check from :mod:`course.exercises`.
Lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are for the instructor only.

The student version replaces each answer by a stub that raises ``NotImplementedError``, drops
the hidden tests, clears all outputs, and tags exercise and check cells ``raises-exception``:
JupyterLab's "Run All" and nbval then carry on past an unsolved exercise instead of stopping
the notebook. It also adds nbgrader metadata (``grade_id``, ``points``), so an instructor can
grade with nbgrader, and records the kernel metadata JupyterLab expects
(:mod:`course.notebook_metadata`), so opening a student notebook does not modify it.

usage::

    python -m course.student_notebooks           # write notebooks/ from solutions/
    python -m course.student_notebooks --check   # fail if notebooks/ is stale or leaks an answer
    # the solutions (all, or the lessons named) as an nbgrader course's source/ folder wants them
    python -m course.student_notebooks --nbgrader-source DIR [--lesson 01_vector_add ...]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from course.notebook_metadata import normalise

ROOT = Path(__file__).resolve().parent.parent
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = ["YOUR ANSWER HERE"]


class NotebookFormatError(ValueError):
    """A solution notebook whose exercise markers or tags are inconsistent."""


def _strip_blocks(source: str, *, where: str, markdown: bool) -> str:
    """Replace solution blocks with a stub (same indentation) and remove hidden-test blocks."""
    out: list[str] = []
    inside: str | None = None
    for line in source.split("\n"):
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if inside:
                raise NotebookFormatError(f"{where}: '{marker}' inside an open '{inside}' block")
            inside = marker
            if marker == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(indent + s for s in (MARKDOWN_STUB if markdown else CODE_STUB))
        elif marker in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if marker == END_SOLUTION else BEGIN_HIDDEN
            if inside != expected:
                raise NotebookFormatError(f"{where}: '{marker}' without a matching '{expected}'")
            inside = None
        elif inside is None:
            out.append(line)
    if inside:
        raise NotebookFormatError(f"{where}: '{inside}' is never closed")
    return "\n".join(out)


def _add_tags(cell, *tags: str) -> None:
    existing = list(cell.metadata.get("tags", []))
    cell.metadata["tags"] = existing + [t for t in tags if t not in existing]


def _check_markers(cell, where: str) -> bool:
    """Whether ``cell`` holds answer or hidden-test blocks; raise if its tags disagree."""
    tags = cell.metadata.get("tags", [])
    has_markers = any(m in cell.source for m in MARKERS)
    if "exercise" in tags and not has_markers:
        raise NotebookFormatError(f"{where}: tagged 'exercise' but has no '{BEGIN_SOLUTION}' block")
    if (
        has_markers
        and "exercise" not in tags
        and cell.cell_type == "code"
        and BEGIN_HIDDEN not in cell.source
    ):
        raise NotebookFormatError(f"{where}: has a solution block but is not tagged 'exercise'")
    return has_markers


def add_nbgrader_metadata(nb: nbformat.NotebookNode, name: str) -> None:
    """Mark exercises as nbgrader answer cells and checks as graded cells worth one point.

    Both are also tagged ``raises-exception`` so that "Run All" goes on past an unsolved exercise.
    """
    stem = Path(name).stem
    exercise_no = check_no = 0
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "exercise" in tags:
            exercise_no += 1
            _add_tags(cell, "raises-exception")
            cell.metadata["nbgrader"] = {
                "grade": False,
                "grade_id": f"{stem}-exercise-{exercise_no}",
                "locked": False,
                "schema_version": 3,
                "solution": True,
                "task": False,
            }
        elif "check" in tags:
            check_no += 1
            _add_tags(cell, "raises-exception")
            cell.metadata["nbgrader"] = {
                "grade": True,
                "grade_id": f"{stem}-check-{check_no}",
                "locked": True,
                "points": 1,
                "schema_version": 3,
                "solution": False,
                "task": False,
            }
    if exercise_no and not check_no:
        raise NotebookFormatError(f"{name}: has exercises but no cell tagged 'check'")


def make_student_version(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student notebook for a solution notebook; ``name`` appears in messages and grade ids."""
    nb = copy.deepcopy(solution)
    nb.metadata.pop("widgets", None)  # saved widget views belong to the cleared outputs
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        if _check_markers(cell, where):
            cell.source = _strip_blocks(
                cell.source, where=where, markdown=cell.cell_type == "markdown"
            )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    add_nbgrader_metadata(nb, name)
    normalise(nb)
    return nb


def make_nbgrader_source(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The solution notebook as nbgrader's ``source/`` wants it: answers kept, cells marked.

    ``nbgrader generate_assignment`` then removes the answers and hidden tests itself, giving the
    same exercises as the student version.
    """
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        if _check_markers(cell, f"{name}, cell {index}"):
            _strip_blocks(cell.source, where=f"{name}, cell {index}", markdown=False)  # validate
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    add_nbgrader_metadata(nb, name)
    normalise(nb)
    return nb


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build_all(solutions: Path, notebooks: Path) -> dict[Path, str]:
    """Map each student notebook path to its expected text."""
    result = {}
    for src in sorted(solutions.glob("*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        result[notebooks / src.name] = _render(make_student_version(nb, src.name))
    return result


def problems(solutions: Path, notebooks: Path) -> list[str]:
    """What is wrong with ``notebooks/``: stale or missing files, extra files, leaked answers."""
    found = []
    expected = build_all(solutions, notebooks)
    for path, text in expected.items():
        if not path.exists():
            found.append(f"{path.name} is missing from {notebooks.name}/")
        elif path.read_text() != text:
            found.append(
                f"{path.name} in {notebooks.name}/ is not what {solutions.name}/ generates"
            )
    for path in sorted(notebooks.glob("*.ipynb")):
        if path not in expected:
            found.append(f"{path.name} in {notebooks.name}/ has no source in {solutions.name}/")
        text = path.read_text()
        for marker in MARKERS:
            if re.search(re.escape(marker), text):
                found.append(f"{path.name} contains '{marker}': an answer or hidden test leaked")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="verify notebooks/ instead of writing it"
    )
    parser.add_argument(
        "--nbgrader-source",
        type=Path,
        metavar="DIR",
        help="write the solutions, marked for nbgrader, to DIR (e.g. source/lesson1 of a course)",
    )
    parser.add_argument(
        "--lesson",
        action="append",
        metavar="NAME",
        help="with --nbgrader-source: only this lesson (e.g. 01_vector_add); repeat for more",
    )
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    args = parser.parse_args(argv)
    if args.nbgrader_source:
        sources = sorted(args.solutions.glob("*.ipynb"))
        if args.lesson:
            unknown = sorted(set(args.lesson) - {src.stem for src in sources})
            if unknown:
                known = ", ".join(src.stem for src in sources)
                parser.error(f"no lesson {', '.join(unknown)} in {args.solutions} (known: {known})")
            sources = [src for src in sources if src.stem in args.lesson]
        args.nbgrader_source.mkdir(parents=True, exist_ok=True)
        for src in sources:
            nb = make_nbgrader_source(nbformat.read(src, as_version=4), src.name)
            (args.nbgrader_source / src.name).write_text(_render(nb))
            print(f"wrote {args.nbgrader_source / src.name}")
        return 0
    if args.check:
        found = problems(args.solutions, args.notebooks)
        for p in found:
            print(f"✗ {p}")
        if found:
            print("Regenerate with: python -m course.student_notebooks")
            return 1
        print(f"✓ {args.notebooks.name}/ is up to date with {args.solutions.name}/")
        return 0
    args.notebooks.mkdir(exist_ok=True)
    for path, text in build_all(args.solutions, args.notebooks).items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
