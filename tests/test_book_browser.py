"""The book as a reader sees it: every page opened in headless Chromium, offline.

The check (``book/browser_check/``) fails a page on a failed request or one that leaves the site,
a console error, unrendered math (a literal ``$``, math left untypeset, a MathJax error), an empty
widget area, a visible nbgrader solution marker, or printed output split into one box per line.
The fixture pages in ``tests/book_fixtures/pages`` have one such defect each: the check must
report exactly that defect on each, and, for the defects that come from the notebooks, the book's
preparation must remove it. Chromium comes from Debian's package (installed where the machine
allows it); without it these tests are skipped, saying why, or fail where
``COURSE_REQUIRE_BROWSER=1`` (as in CI).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_book import build_book

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "book_fixtures"
SCREENSHOTS = ROOT / "book" / "_build" / "screenshots"
sys.path.insert(0, str(ROOT / "book"))

from browser_check.chromium import ChromiumUnavailable, find_or_install_chromium  # noqa: E402
from browser_check.site import Screenshot, check_site, site_pages  # noqa: E402
from prepare.lessons import prepare_notebook, separate_display_math  # noqa: E402

# Each fixture page and the kinds of problem the check must report on it, and nothing else.
DEFECTS = {
    "math_after_text.html": {"unrendered math"},
    "math_error.html": {"MathJax error"},
    "failed_request.html": {"failed request"},
    "leaves_site.html": {"request leaving the site"},
    "console_error.html": {"console error"},
    "script_error.html": {"console error"},
    "widget_empty.html": {"empty widget area"},
    "widget_cdn.html": {"empty widget area", "request leaving the site"},
    "solution_markers.html": {"solution marker"},
    "split_output.html": {"split output"},
}
# The defects that come from the notebooks, which the book's preparation must repair.
REPAIRED = ["math_after_text.html", "widget_empty.html", "widget_cdn.html",
            "solution_markers.html", "split_output.html"]  # fmt: skip


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return find_or_install_chromium()
    except ChromiumUnavailable as error:
        reason = f"no headless Chromium to open the book in: {error}"
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":  # CI: a skipped check is a failure
            pytest.fail(reason)
        pytest.skip(reason)


def build_fixtures(destination: Path, prepared: bool) -> Path:
    """Build the fixture pages, as they are or first passed through the book's preparation."""
    source = destination / "source"
    source.mkdir(parents=True)
    shutil.copy2(FIXTURES / "conf.py", source / "conf.py")
    shutil.copy2(ROOT / "book" / "_static" / "favicon.svg", source / "favicon.svg")
    for page in sorted((FIXTURES / "pages").iterdir()):
        if prepared and page.suffix == ".ipynb":
            notebook = prepare_notebook(nbformat.read(page, as_version=4), page.name)
            nbformat.write(notebook, source / page.name)
        elif prepared and page.suffix == ".md":
            (source / page.name).write_text(separate_display_math(page.read_text()))
        else:
            shutil.copy2(page, source / page.name)
    html = destination / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(source), str(html)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,  # the prepared widget views import the course package
    )
    assert result.returncode == 0, result.stderr
    return html


def by_page(problems) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for problem in problems:
        found.setdefault(problem.page, set()).add(problem.kind)
    return found


def test_every_page_of_the_book_shows_what_a_reader_should_see(tmp_path, chromium):
    html = build_book(tmp_path)
    pages = site_pages(html)
    expected = {"index.html", "setup.html", "course_map.html", "results.html", "about.html"}
    expected |= {f"lessons/{p.stem}.html" for p in (ROOT / "solutions").glob("*.ipynb")}
    assert expected <= set(pages), sorted(expected - set(pages))
    lesson = "lessons/02_fused_softmax.html"
    screenshots = {
        "index.html": [Screenshot(SCREENSHOTS / "front_page.png")],
        lesson: [
            Screenshot(SCREENSHOTS / "lesson_top.png"),
            Screenshot(SCREENSHOTS / "lesson_math.png", "div.math"),
            Screenshot(SCREENSHOTS / "lesson_widget.png", ".course-widget-static"),
        ],
    }
    problems = check_site(html, chromium, pages, screenshots)
    assert problems == [], "\n".join(map(str, problems))
    for shots in screenshots.values():
        for shot in shots:
            assert shot.path.stat().st_size > 10_000, f"{shot.path} looks blank"


@pytest.fixture(scope="module")
def fixture_problems(tmp_path_factory, chromium) -> dict[str, set[str]]:
    html = build_fixtures(tmp_path_factory.mktemp("fixtures"), prepared=False)
    return by_page(check_site(html, chromium))


@pytest.mark.parametrize("page", sorted(DEFECTS))
def test_the_check_reports_each_defect(fixture_problems, page):
    assert fixture_problems.get(page, set()) == DEFECTS[page]


def test_the_check_passes_clean_pages(fixture_problems):
    assert "clean.html" not in fixture_problems and "index.html" not in fixture_problems


def test_the_books_preparation_repairs_the_defects_from_notebooks(tmp_path, chromium):
    html = build_fixtures(tmp_path, prepared=True)
    problems = [p for p in check_site(html, chromium, REPAIRED) if p.page in REPAIRED]
    assert problems == [], "\n".join(map(str, problems))
