"""Sphinx configuration for the course website (MyST-NB renders the notebooks with their outputs).

The lessons are the notebooks in ``solutions/``, with the outputs of a GPU run. They are copied into
``book/lessons/`` at build time (Sphinx reads sources only from below this folder) and shown as
saved, never re-executed: a laptop can build the book of a GPU run.
"""

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "GPU kernels with Triton, and the compiler underneath"
author = "the course authors"
copyright = "2026, the course authors"

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax served with the site: no CDN
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"  # show the saved outputs of solutions/
nb_render_markdown_format = "myst"  # Markdown outputs (tables of results) as MyST, tables included
nb_output_stderr = "remove"  # library warnings on stderr are noise on a web page
myst_enable_extensions = ["dollarmath", "colon_fence"]
html_theme = "sphinx_book_theme"
html_title = "Triton course"
html_theme_options = {
    "repository_url": "",
    "use_repository_button": False,
    "show_toc_level": 2,
}


def _copy_lessons() -> None:
    lessons = HERE / "lessons"
    lessons.mkdir(exist_ok=True)
    for notebook in sorted((ROOT / "solutions").glob("*.ipynb")):
        shutil.copy2(notebook, lessons / notebook.name)
    compiler_map = ROOT / "mini_compiler" / "README.md"
    if compiler_map.exists():
        shutil.copy2(compiler_map, lessons / "mini_compiler.md")


_copy_lessons()
