"""Print the course's requirements with the newest releases of the packages that break notebooks.

The weekly CI job and ``make test-latest`` install the course from this list instead of from the
pins in pyproject.toml: torch, triton, numpy and nbval lose their version pins (so pip takes the
newest release), every other requirement keeps its pin. torch is left out of the list because it
is installed on its own first, from the index that the caller chooses (PyPI, or PyTorch's CPU-only
wheels), so that installing the rest does not replace it with another build.

usage::

    python .ci/latest_requirements.py dev,gpu,book,grading > requirements-latest.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEWEST = ("torch", "triton", "numpy", "nbval")
INSTALLED_SEPARATELY = ("torch",)


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def latest_requirements(extras: list[str]) -> list[str]:
    """The project's requirements (core plus ``extras``) with NEWEST unpinned, torch removed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml defines {sorted(optional)}")
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += optional[extra]
    lines = []
    for requirement in requirements:
        name = _name(requirement)
        if name in INSTALLED_SEPARATELY:
            continue
        if name in NEWEST:
            marker = requirement.partition(";")[2].strip()
            requirement = f"{name}; {marker}" if marker else name
        if requirement not in lines:
            lines.append(requirement)
    missing = set(NEWEST) - set(INSTALLED_SEPARATELY) - {_name(r) for r in lines}
    if missing:
        raise SystemExit(f"pyproject.toml no longer lists {sorted(missing)}: update NEWEST")
    return lines


if __name__ == "__main__":
    extras = [e for e in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if e]
    print("\n".join(latest_requirements(extras)))
