"""The book points a lesson's links to repository files at its own copies of them, and shows the
self-check answers as collapsed HTML blocks that the page keeps."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

from prepare.lessons import link_repository_files  # noqa: E402


def test_repository_links_become_book_pages():
    text = ("the [IR reference](../mini_compiler/IR_REFERENCE.md) and "
            "`../mini_compiler/IR_REFERENCE.md`")
    assert link_repository_files(text) == (
        "the [IR reference](ir_reference.md) and `../mini_compiler/IR_REFERENCE.md`")


def test_every_self_check_answer_is_a_closed_details_block():
    import nbformat

    for name in ("01_vector_add", "02_fused_softmax", "02b_tile_puzzles"):
        notebook = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        checks = [c.source for c in notebook.cells if c.source.startswith("**Check yourself**")]
        assert len(checks) >= 5, name
        for source in checks:
            opened = source.count("<details><summary>Answer</summary>\n\n")
            assert opened and opened == source.count("\n\n</details>"), (name, source[:80])
