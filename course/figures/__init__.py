"""Figures the notebooks show: drawn once by code in this folder, committed as SVG files.

``show("compiler_pipeline")`` displays ``compiler_pipeline.svg`` in a notebook; ``python -m
course.figures.pipeline`` draws it again after the compiler's structure changes.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The SVG file of a figure, by name (``"compiler_pipeline"``)."""
    found = FOLDER / f"{name}.svg"
    if not found.exists():
        known = sorted(p.stem for p in FOLDER.glob("*.svg"))
        raise FileNotFoundError(f"no figure {name!r}; the figures are {known}")
    return found


def show(name: str):
    """The figure as an object a notebook cell displays (an SVG image)."""
    from IPython.display import SVG

    return SVG(filename=str(path(name)))
