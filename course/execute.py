"""Execute notebooks and save their outputs: how ``solutions/`` gets the outputs of a GPU run.

usage (on a machine with an NVIDIA GPU, from the repository root)::

    python -m course.execute solutions/*.ipynb                # in place
    python -m course.execute solutions/*.ipynb --out DIR      # write executed copies to DIR

Every cell must run without error, except cells tagged ``raises-exception``. The saved notebook
records the kernel metadata of the course's own kernel (:mod:`course.notebook_metadata`), not that
of the machine that ran it, so opening it in JupyterLab does not modify it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.notebook_metadata import normalise


def execute(path: Path, out: Path, *, timeout: int) -> float:
    """Run every cell of ``path`` and write the result to ``out`` (also when a cell fails)."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    finally:  # a failed run is still worth reading: its error is in the failing cell's output
        normalise(nb)
        nbformat.write(nb, out)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--out", type=Path, help="folder for the executed copies (default: in place)"
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        target = (args.out / path.name) if args.out else path
        seconds = execute(path, target, timeout=args.timeout)
        print(f"executed {path} in {seconds:.1f} s -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
