"""Write the book's page of measured results from the records in ``benchmarks/results/``.

Each benchmark script records its run as JSON in ``benchmarks/results/<device>/``: the device,
the date, the versions, notes on the method, and one row per measurement. This page shows every
record as it is, one section per device, one table per record, so that a figure on the page is
always the figure in the file (nothing here computes or rounds beyond four significant digits).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

VERSION_KEYS = ("date", "python", "torch", "triton", "llvmlite", "cuda", "driver_sm_count")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|$#])")


def escape(text: str) -> str:
    """``text`` with Markdown's special characters (and MyST's ``$``) taken literally."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def cell(value) -> str:
    """One table cell: floats to four significant digits, the rest as written."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value, separators=(", ", ": ")))
    return "" if value is None else escape(str(value))


def record_rows(record: dict) -> list[dict]:
    """The measurements of a record (GPU scripts call them ``rows``, the CPU one ``results``)."""
    rows = record.get("rows", record.get("results", []))
    return [row for row in rows if isinstance(row, dict)]


def table(rows: list[dict]) -> list[str]:
    """A Markdown table whose columns are every key any row has, in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(f"`{column}`" for column in columns) + " |"]
    lines.append("|" + " --- |" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(column)) for column in columns) + " |")
    return lines


def device_name(records: list[dict], folder: str) -> str:
    """The device as the records name it (``device`` for a GPU, ``cpu`` for the CPU runs)."""
    for record in records:
        if record.get("device"):
            return str(record["device"])
        if record.get("cpu"):
            cores = f", {record['cores']} cores" if record.get("cores") else ""
            return f"CPU: {record['cpu']}{cores}"
    return folder


def record_section(path: Path, record: dict) -> list[str]:
    title = record.get("benchmark") or path.stem
    lines = [f"### {escape(str(title))}", ""]
    versions = ", ".join(
        f"{key} {cell(record[key])}" for key in VERSION_KEYS if record.get(key) is not None
    )
    lines += [f"*Record* `{path.parent.name}/{path.name}`: {versions}.", ""]
    for key in ("method", "notes"):
        if record.get(key):
            lines += [f"{key.capitalize()}: {escape(str(record[key]))}", ""]
    rows = record_rows(record)
    lines += table(rows) if rows else ["(no measurements in this record)"]
    return lines + [""]


def results_page(results: Path) -> str:
    """Each device's records as Markdown: a section per device, a table per record."""
    lines: list[str] = []
    folders = [p for p in results.iterdir() if p.is_dir()] if results.is_dir() else []
    folders.sort(key=lambda folder: (folder.name == "cpu", folder.name))  # GPUs first
    if not folders:
        lines.append("No results are recorded yet.")
    for folder in folders:
        paths = sorted(folder.glob("*.json"))
        records = [json.loads(path.read_text()) for path in paths]
        lines += [f"## {escape(device_name(records, folder.name))}", ""]
        for path, record in zip(paths, records, strict=True):
            lines += record_section(path, record)
    return "\n".join(lines) + "\n"


def write_results_page(results: Path, target: Path) -> Path:
    """Write :func:`results_page` to ``target`` (only when it changes)."""
    text = results_page(results)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target
