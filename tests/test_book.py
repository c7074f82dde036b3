"""The website builds from the solution notebooks, offline, and shows what a reader should see.

The preparation steps (``book/prepare/``) are tested one by one on small inputs, then the whole
book is built and its HTML checked. ``test_book_browser.py`` opens the built pages in a browser.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))

from prepare.course_map import course_map_outline  # noqa: E402
from prepare.lessons import (  # noqa: E402
    merge_streams,
    prepare_notebook,
    separate_display_math,
    strip_solution_markers,
)
from prepare.results import results_page  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def build_book(tmp_path: Path) -> Path:
    """Build a copy of the book (with the repository's neighbours it reads) into tmp_path/html."""
    source = tmp_path / "book"
    shutil.copytree(
        ROOT / "book", source, ignore=shutil.ignore_patterns("_build", "lessons", "generated")
    )
    # conf.py finds the notebooks, the compiler's map and the results relative to itself.
    for neighbour in ("solutions", "mini_compiler", "benchmarks", "course"):
        (tmp_path / neighbour).symlink_to(ROOT / neighbour)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(source), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert warnings == [], "\n".join(warnings)
    return tmp_path / "html"


# ---- display math -------------------------------------------------------------------------------


def test_display_math_after_paragraph_text_is_set_apart():
    source = "For a row $x$,\n$$y = e^x$$\nwhere the sum runs over the row."
    assert separate_display_math(source) == (
        "For a row $x$,\n\n$$y = e^x$$\n\nwhere the sum runs over the row."
    )


def test_multi_line_display_math_is_set_apart_and_kept_whole():
    source = "Per byte loaded:\n$$\n\\frac{B_M B_N}{B_M + B_N}\n$$\nflops."
    assert separate_display_math(source) == (
        "Per byte loaded:\n\n$$\n\\frac{B_M B_N}{B_M + B_N}\n$$\n\nflops."
    )


def test_math_already_set_apart_and_code_fences_are_left_alone():
    already = "Text.\n\n$$a = b$$\n\nMore text."
    assert separate_display_math(already) == already
    fenced = "```bash\necho cost\n$$HOME\n```"
    assert separate_display_math(fenced) == fenced


# ---- solution markers, streams ------------------------------------------------------------------


def test_solution_markers_are_stripped_and_the_answer_kept():
    code = "def f(n):\n    ### BEGIN SOLUTION\n    return n + 1\n    ### END SOLUTION"
    assert strip_solution_markers(code) == "def f(n):\n    return n + 1"


def test_consecutive_stdout_outputs_merge_and_stderr_is_dropped():
    outputs = [
        new_output("stream", name="stdout", text="1\n"),
        new_output("stream", name="stderr", text="a warning\n"),
        new_output("stream", name="stdout", text="2\n"),
        new_output("display_data", data={"text/plain": "a figure"}),
        new_output("stream", name="stdout", text="3\n"),
    ]
    merged = merge_streams(outputs)
    assert [(o.output_type, o.get("text")) for o in merged] == [
        ("stream", "1\n2\n"),
        ("display_data", None),
        ("stream", "3\n"),
    ]
    assert outputs[0]["text"] == "1\n", "the input outputs must not change"


# ---- widgets ------------------------------------------------------------------------------------


def widget_notebook(code: str) -> nbformat.NotebookNode:
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    output = new_output("execute_result", data={WIDGET_VIEW: view, "text/plain": "VBox()"})
    notebook = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(code, outputs=[output])])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook


def test_a_widget_output_becomes_its_static_view_with_a_note():
    from course.widgets.program_map import program_map_html

    code = "from course.widgets.program_map import *\nprogram_map(n_elements=20, block_size=8)"
    prepared = prepare_notebook(widget_notebook(code))
    (output,) = prepared.cells[1].outputs
    html = output.data["text/html"]
    assert WIDGET_VIEW not in output.data
    assert 'class="course-widget-static"' in html and "JupyterLab" in html
    assert program_map_html(20, 8) in html, "the view must be drawn at the notebook's values"
    assert "widgets" not in prepared.metadata, "the widget state would load the widget manager"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("view = program_map()\nview", "must end with the call that makes it"),
        ("program_map(n_elements=N)", "must be literals"),
        ("mystery_view(3)", "no static rendering for the view 'mystery_view'"),
    ],
)
def test_a_widget_the_book_cannot_draw_is_an_error_naming_the_cell(code, message):
    with pytest.raises(ValueError, match="lesson.ipynb, cell 1") as error:
        prepare_notebook(widget_notebook(code), "lesson.ipynb")
    assert message in str(error.value)


# ---- generated pages ----------------------------------------------------------------------------


def test_results_page_shows_each_record_under_its_device(tmp_path):
    folder = tmp_path / "nvidia-h100-80gb-hbm3"
    folder.mkdir()
    record = {
        "benchmark": "vector_add",
        "device": "NVIDIA H100 80GB HBM3",
        "date": "2026-11-22 06:00 UTC",
        "torch": "2.11.0",
        "notes": "do_bench medians | 2^28 elements",
        "rows": [{"n": 268435456, "triton_gbps": 3039.123456, "correct": True}],
    }
    (folder / "vector_add.json").write_text(json.dumps(record))
    page = results_page(tmp_path)
    assert "## NVIDIA H100 80GB HBM3" in page
    assert "| 268435456 | 3039 | yes |" in page
    assert "do\\_bench medians \\| 2^28" in page, "Markdown characters must be taken literally"
    assert "2026-11-22 06:00 UTC" in page and "torch 2.11.0" in page


def test_results_page_of_the_repository_keeps_every_record_and_its_device():
    page = results_page(ROOT / "benchmarks" / "results")
    for path in (ROOT / "benchmarks" / "results").glob("*/*.json"):
        assert f"`{path.parent.name}/{path.name}`" in page
        device = json.loads(path.read_text()).get("device")
        if device:
            assert f"## {device}" in page


def test_course_map_lists_every_section_and_exercise():
    lessons = sorted((ROOT / "solutions").glob("*.ipynb"))
    outline = course_map_outline(lessons)
    for path in lessons:
        assert f"</lessons/{path.stem}>`" in outline
    assert "* 5. Exercises" in outline and "  * Exercise 1 — a fused `a * x + y`" in outline


# ---- the whole book -----------------------------------------------------------------------------


def test_book_builds_with_every_lesson_as_a_reader_should_see_it(tmp_path):
    html = build_book(tmp_path)
    for page in ("index", "setup", "course_map", "results", "about", "lessons/mini_compiler"):
        assert (html / f"{page}.html").exists(), f"no page {page}.html"
    for notebook_path in sorted((ROOT / "solutions").glob("*.ipynb")):
        page = (html / "lessons" / f"{notebook_path.stem}.html").read_text()
        assert "<h1>" in page
        assert "BEGIN SOLUTION" not in page and "END SOLUTION" not in page
        assert "require.js" not in page and "widget-state" not in page
        notebook = nbformat.read(notebook_path, as_version=4)
        widgets = sum(
            WIDGET_VIEW in output.get("data", {})
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
        )
        assert page.count('class="course-widget-static"') == widgets, notebook_path.name
