"""Turn a solution notebook into the notebook the book shows.

The solution notebooks are written for JupyterLab, and four things in them read badly on a static
web page. Each has its own small function here, and :func:`prepare_notebook` applies them all:

* :func:`separate_display_math`: a ``$$`` line directly after paragraph text is math in
  JupyterLab but, in MyST Markdown, part of the paragraph (the dollars show and the rest of the
  paragraph turns into italics). A blank line before and after each display block fixes it.
* :func:`strip_solution_markers`: nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines
  matter to the tool that writes the student notebooks, not to a reader.
* :func:`merge_streams`: a loop that prints one line per step saves one output per ``print``;
  shown one box each, a table becomes a stack of grey boxes. Consecutive outputs of a stream are
  joined (warnings on stderr are dropped, as the book never shows them).
* :func:`link_repository_files`: a lesson links a file of the repository by its path from the
  notebook's folder (``../mini_compiler/IR_REFERENCE.md``), which the book serves as a page of
  its own (:data:`REPOSITORY_PAGES`, copied by ``conf.py``); the link is pointed at that page.
* :func:`static_widget_outputs`: an ipywidgets view redraws through Python callbacks, which a
  static page cannot run. Its output becomes the view's static HTML rendering
  (:mod:`course.widgets.static`), with a line saying it is interactive in JupyterLab; the
  notebook's saved widget state is dropped, so no page loads the widget manager.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")
CODE_FENCE = re.compile(r"^\s*(```|~~~)")


def separate_display_math(markdown: str) -> str:
    """Put a blank line before and after every ``$$`` display block (outside code fences)."""
    out: list[str] = []
    in_fence = in_math = blank_needed = False
    for line in markdown.split("\n"):
        text = line.strip()
        if blank_needed and text:
            out.append("")
        blank_needed = False
        if not in_math and CODE_FENCE.match(line):
            in_fence = not in_fence
        elif in_fence:
            pass
        elif not in_math and text.startswith("$$"):
            if out and out[-1].strip():
                out.append("")
            closed_here = len(text) >= 4 and text.endswith("$$")
            in_math = not closed_here
            blank_needed = closed_here
        elif in_math and text.endswith("$$"):
            in_math = False
            blank_needed = True
        out.append(line)
    return "\n".join(out)


# Repository files the book serves as pages: the path a notebook links -> the page in lessons/.
REPOSITORY_PAGES = {
    "../mini_compiler/README.md": "mini_compiler.md",
    "../mini_compiler/IR_REFERENCE.md": "ir_reference.md",
}


def link_repository_files(markdown: str) -> str:
    """Point Markdown links to repository files at the book's copies of them."""
    for path, page in REPOSITORY_PAGES.items():
        markdown = markdown.replace(f"]({path})", f"]({page})")
    return markdown


def strip_solution_markers(code: str) -> str:
    """The code without nbgrader's BEGIN/END SOLUTION (and HIDDEN TESTS) marker lines."""
    return "\n".join(line for line in code.split("\n") if not SOLUTION_MARKER.match(line))


def merge_streams(outputs: list) -> list:
    """Join consecutive stdout outputs into one; drop stderr."""
    merged: list = []
    for output in outputs:
        if output.get("output_type") == "stream":
            if output.get("name") == "stderr":
                continue
            previous = merged[-1] if merged else None
            if previous is not None and previous.get("output_type") == "stream":
                previous["text"] = previous["text"] + output["text"]
                continue
        merged.append(copy.deepcopy(output))
    return merged


def view_call(code: str) -> tuple[str, list, dict]:
    """The name and literal arguments of the call that ends a widget cell, e.g. ``view(n=3)``."""
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body else None
    call = last.value if isinstance(last, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise ValueError(
            "a cell that shows a widget must end with the call that makes it, such as "
            "`program_map(n_elements=50, block_size=16)`"
        )
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except ValueError as error:
        raise ValueError(
            f"the arguments of `{call.func.id}(...)` must be literals (numbers, strings, "
            "tuples) so that the book can draw the same view"
        ) from error
    return call.func.id, args, kwargs


def static_widget_outputs(cell) -> list:
    """The cell's outputs with each widget view replaced by its static HTML rendering."""
    from course.widgets.static import static_view

    outputs = []
    for output in cell.get("outputs", []):
        if WIDGET_VIEW in output.get("data", {}):
            name, args, kwargs = view_call(cell.source)
            output = nbformat.v4.new_output(
                "display_data", data={"text/html": static_view(name, *args, **kwargs)}
            )
        outputs.append(output)
    return outputs


def prepare_notebook(notebook, name: str = "notebook"):
    """A copy of ``notebook`` as the book shows it (see the module's docstring)."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)  # the saved widget state: its manager needs a CDN
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            cell.source = link_repository_files(separate_display_math(cell.source))
        elif cell.cell_type == "code":
            cell.source = strip_solution_markers(cell.source)
            try:
                cell.outputs = merge_streams(static_widget_outputs(cell))
            except (ValueError, KeyError) as error:
                raise ValueError(f"{name}, cell {index}: {error}") from error
    return notebook


def write_lessons(solutions: Path, destination: Path) -> list[Path]:
    """Write the prepared copy of every notebook in ``solutions`` to ``destination``.

    A file is rewritten only when its content changes, so Sphinx rebuilds only changed pages.
    """
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(solutions.glob("*.ipynb")):
        prepared = prepare_notebook(nbformat.read(source, as_version=4), source.name)
        target = destination / source.name
        text = nbformat.writes(prepared) + "\n"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        written.append(target)
    return written
