"""Sphinx configuration for the course website (MyST-NB renders the notebooks with their outputs).

The lessons are the notebooks in ``solutions/``, with the outputs of a GPU run. Before Sphinx reads
its sources, ``prepare/`` writes what it needs from them (Sphinx reads sources only from below
this folder):

* ``lessons/``: each notebook as a reader sees it (see ``prepare/lessons.py``), shown as saved,
  never re-executed, so a laptop can build the book of a GPU run; and the compiler's map;
* ``generated/``: the course map's outline and the tables of measured results, which
  ``course_map.md`` and ``results.md`` include.

Every script and style sheet is served from the built site (MathJax included): a page needs no
network.
"""

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # the prepare steps, and the course package they use

from prepare.course_map import write_course_map  # noqa: E402
from prepare.lessons import write_lessons  # noqa: E402
from prepare.results import write_results_page  # noqa: E402

project = "GPU kernels with Triton, and the compiler underneath"
author = "the course authors"
copyright = "2026, the course authors"

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax served with the site: no CDN
exclude_patterns = ["_build", "**.ipynb_checkpoints", "generated", "prepare", "browser_check"]
nb_execution_mode = "off"  # show the saved outputs of solutions/
nb_render_markdown_format = "myst"  # Markdown outputs (tables of results) as MyST, tables included
nb_output_stderr = "remove"  # library warnings on stderr are noise on a web page
myst_enable_extensions = ["dollarmath", "colon_fence"]
html_theme = "sphinx_book_theme"
html_title = "Triton course"
html_favicon = (
    "_static/favicon.svg"  # without one, every browser asks for /favicon.ico and gets 404
)
html_context = {"default_mode": "auto"}  # light or dark as the reader's system says; unset, the
# theme logs a console error on a reader's first visit
html_theme_options = {
    "repository_url": "",
    "use_repository_button": False,
    "show_toc_level": 2,
    "navbar_persistent": [],  # the sidebar has the search field; the header would repeat it
}


def _prepare_sources() -> None:
    lessons = HERE / "lessons"
    notebooks = write_lessons(ROOT / "solutions", lessons)
    compiler_map = ROOT / "mini_compiler" / "README.md"
    if compiler_map.exists():
        shutil.copy2(compiler_map, lessons / "mini_compiler.md")
    ir_reference = ROOT / "mini_compiler" / "IR_REFERENCE.md"
    if ir_reference.exists():  # linked from the lessons, not listed in the table of contents
        text = "---\norphan: true\n---\n\n" + ir_reference.read_text()
        target = lessons / "ir_reference.md"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    write_course_map(notebooks, HERE / "generated" / "course_map_outline.md")
    write_results_page(ROOT / "benchmarks" / "results", HERE / "generated" / "results_tables.md")


_prepare_sources()
