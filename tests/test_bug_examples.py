"""The book's "Common bugs" page: each example does what the page says it does."""

from __future__ import annotations

from course import bug_examples as bugs


def test_missing_mask_is_reported_with_program_line_and_offset():
    message = bugs.missing_mask(n=1000, block=256)
    assert "kernel `add_without_mask`, program id (3,): load out of bounds" in message
    assert "bug_examples.py:" in message and "element offset 1000 is outside the tensor" in message
    assert "Did you forget a mask" in message


def test_short_grid_leaves_the_tail_unwritten():
    assert bugs.short_grid(n=1000, block=256) == (1000 - 3 * 256, 0)


def test_other_zero_wins_a_maximum_of_negative_numbers():
    results = bugs.other_zero_in_a_max()
    assert results["other=0.0"] == [0.0, 0.0, 0.0]
    assert results["other=-inf"] == results["torch"]
    assert all(-2.0 <= m < -1.0 for m in results["torch"])


def test_int32_offset_wraps_and_int64_does_not():
    results = bugs.int32_overflow(row=70_000, row_stride=32_768)
    assert results["exact"] == 2_293_760_000 > 2**31 - 1
    assert results["int32"] == 2_293_760_000 - 2**32  # wrapped around: negative
    assert results["int64"] == 2_293_760_000


def test_a_constexpr_size_compiles_once_per_value():
    counts = bugs.constexpr_recompiles(sizes=(1000, 1001, 1002, 1003, 1024, 2048))
    assert counts["n: tl.constexpr"] == 6
    assert counts["n"] == 2  # sizes divisible by 16 get their own variant, the rest share one


def test_autotune_key_decides_when_to_tune_again():
    results = bugs.autotune_keys(sizes=(1000, 5000))
    assert [key[0] for key in results['key=["n"]']] == [1000, 5000]
    assert len(results["key=[]"]) == 1


def test_the_page_quotes_what_the_examples_do():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "book" / "common_bugs.md").read_text()
    message = bugs.missing_mask()
    where = message.split(" at ", 1)[1].split(" (")[0]  # .../course/bug_examples.py:LINE
    assert f"at course/bug_examples.py:{where.rsplit(':', 1)[1]} (element offset 1000" in page
    assert message.splitlines()[1] in page  # the source line, as the report shows it
    assert "**232 are never written**" in page and bugs.short_grid()[0] == 232
    assert "**−2,001,207,296**" in page and bugs.int32_overflow()["int32"] == -2_001_207_296
    assert "builds **6** compiled" in page and "and **2** of the same" in page
    for name in ("add_without_mask", "short_grid", "row_max", "row_offset", "scale_constexpr_n",
                 "add_tuned_once"):
        assert f":pyobject: {name}\n" in page and hasattr(bugs, name)
