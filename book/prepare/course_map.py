"""Write the course map: every lesson's sections and exercises, read from the notebooks' headings.

Generated rather than written by hand, so the map always lists the sections the lessons have.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

HEADING = re.compile(r"^(#{1,3}) +(.+?)\s*$")


def headings(notebook) -> list[tuple[int, str]]:
    """(level, text) of every level-1 to level-3 heading in the notebook's Markdown cells."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        in_fence = False
        for line in cell.source.split("\n"):
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
            match = None if in_fence else HEADING.match(line)
            if match:
                found.append((len(match.group(1)), match.group(2)))
    return found


def course_map_outline(lessons: list[Path]) -> str:
    """Per lesson its title (linked to its page) and an outline of its sections, as Markdown."""
    lines = []
    for path in lessons:
        found = headings(nbformat.read(path, as_version=4))
        title = next((text for level, text in found if level == 1), path.stem)
        lines += [f"## {{doc}}`{title} </lessons/{path.stem}>`", ""]
        for level, text in found:
            if level > 1:
                lines.append("  " * (level - 2) + f"* {text}")
        lines.append("")
    return "\n".join(lines)


def write_course_map(lessons: list[Path], target: Path) -> Path:
    """Write :func:`course_map_outline` to ``target`` (only when it changes)."""
    text = course_map_outline(lessons)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target
