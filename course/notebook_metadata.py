"""Notebook metadata that JupyterLab leaves alone, so opening a notebook does not modify it.

When JupyterLab opens a notebook and starts its kernel, it overwrites two entries of the
notebook's metadata with what the kernel reports:

* ``kernelspec``: the kernel spec's name, display name and language (ipykernel's spec is called
  ``python3`` and displays as "Python 3 (ipykernel)");
* ``language_info``: the kernel's answer to a ``kernel_info_request``, which includes the exact
  Python version the kernel runs.

If the saved values differ (say a notebook executed elsewhere recorded "Python 3" or another Python
version), JupyterLab marks the notebook modified before anything has run, and saving it gives a diff
that has nothing to do with the lesson. So every tool that writes a notebook here (the executor
that records outputs, the generator of the student versions) ends with :func:`normalise`, which
writes exactly what the course's kernel reports. The version recorded is ``PYTHON_VERSION``, the
Python of the machine the course's CI runs on; opening a notebook under another Python version
changes that one field and nothing else.

usage::

    python -m course.notebook_metadata --check   # fail if a notebook would change when opened
    python -m course.notebook_metadata --fix     # rewrite the metadata of those that would
    python -m course.notebook_metadata --check path/to/some.ipynb ...
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_FOLDERS = ("solutions", "notebooks")

#: The Python that the course's CI machine runs, and so the version its kernels report.
PYTHON_VERSION = "3.11.7"

#: What JupyterLab writes into ``metadata.kernelspec`` when ipykernel's own spec starts.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def language_info(python_version: str = PYTHON_VERSION) -> dict:
    """ipykernel's ``language_info`` (its kernel_info reply) for a kernel on ``python_version``."""
    major = int(python_version.split(".")[0])
    return {
        "codemirror_mode": {"name": "ipython", "version": major},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": python_version,
    }


def expected_metadata() -> dict:
    """The two metadata entries as the course's kernel reports them."""
    return {"kernelspec": dict(KERNELSPEC), "language_info": language_info()}


def normalise(nb: nbformat.NotebookNode) -> bool:
    """Give ``nb`` the metadata its kernel reports; True if anything changed.

    Only notebook-level ``kernelspec`` and ``language_info`` are touched: cells, outputs and any
    other metadata (saved widget state, for example) stay as they are.
    """
    changed = False
    for key, value in expected_metadata().items():
        if nb.metadata.get(key) != value:
            nb.metadata[key] = nbformat.from_dict(copy.deepcopy(value))
            changed = True
    for cell in _cells_with_ids_jupyter_drops(nb):
        del cell["id"]
        changed = True
    return changed


def _cells_with_ids_jupyter_drops(nb: nbformat.NotebookNode) -> list:
    """Cells with an ``id`` in a notebook older than nbformat 4.5, which has no cell ids: JupyterLab
    drops them on saving. (A tool that builds cells with nbformat 5's helpers gives them ids.)"""
    if (nb.nbformat, nb.nbformat_minor) >= (4, 5):
        return []
    return [cell for cell in nb.cells if "id" in cell]


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text Jupyter's server saves for ``nb`` (nbformat's JSON and a final newline)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def problems(path: Path) -> list[str]:
    """Why opening ``path`` in JupyterLab and saving it would change the file (empty: no change)."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    name = _display(path)
    found = []
    for key, value in expected_metadata().items():
        saved = nb.metadata.get(key)
        if not isinstance(saved, dict):
            found.append(f"{name}: metadata.{key} is missing; the kernel reports {value!r}")
            continue
        for field in sorted(set(saved) | set(value)):
            if saved.get(field) != value.get(field):
                found.append(
                    f"{name}: metadata.{key}.{field} is {saved.get(field)!r}, "
                    f"the kernel reports {value.get(field)!r}"
                )
    with_ids = _cells_with_ids_jupyter_drops(nb)
    if with_ids:
        found.append(f"{name}: {len(with_ids)} cells carry an id, which nbformat "
                     f"{nb.nbformat}.{nb.nbformat_minor} does not have; JupyterLab drops them")
    if not found and render(nb) != text:
        found.append(f"{name}: not in the layout Jupyter saves (nbformat's JSON, one-space indent)")
    return found


def _display(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def fix(path: Path) -> bool:
    """Rewrite ``path`` with the expected metadata and Jupyter's layout; True if it changed.

    Reads and writes in one go, so a notebook that someone else edits is never overwritten with
    an old copy.
    """
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    normalise(nb)
    new = render(nb)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def default_paths() -> list[Path]:
    return sorted(p for folder in NOTEBOOK_FOLDERS for p in (ROOT / folder).glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="report notebooks that would change")
    mode.add_argument("--fix", action="store_true", help="rewrite their metadata")
    parser.add_argument("paths", nargs="*", type=Path, help="default: solutions/ and notebooks/")
    args = parser.parse_args(argv)
    paths = args.paths or default_paths()
    if args.fix:
        for path in paths:
            if fix(path):
                print(f"fixed {_display(path)}")
        return 0
    found = [p for path in paths for p in problems(path)]
    for p in found:
        print(f"✗ {p}")
    if found:
        print("Fix with: python -m course.notebook_metadata --fix")
        return 1
    print(f"✓ {len(paths)} notebooks open in JupyterLab without changing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
