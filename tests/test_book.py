"""The website builds from the solution notebooks, offline, and shows their saved outputs."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_book_builds_with_every_lesson(tmp_path):
    source = tmp_path / "book"
    shutil.copytree(ROOT / "book", source, ignore=shutil.ignore_patterns("_build", "lessons"))
    # conf.py finds the notebooks relative to itself: give the copy the same neighbours.
    (tmp_path / "solutions").symlink_to(ROOT / "solutions")
    (tmp_path / "mini_compiler").symlink_to(ROOT / "mini_compiler")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(source), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert warnings == [], "\n".join(warnings)
    for notebook in sorted((ROOT / "solutions").glob("*.ipynb")):
        page = tmp_path / "html" / "lessons" / f"{notebook.stem}.html"
        assert page.exists(), f"no page for {notebook.name}"
        assert "<h1>" in page.read_text()
    assert (tmp_path / "html" / "lessons" / "mini_compiler.html").exists()
