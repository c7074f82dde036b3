"""Opening a notebook in JupyterLab and saving it, without running anything, leaves it unchanged.

The round trip goes through what JupyterLab itself uses. jupyter_server's default contents manager
(``AsyncLargeFileManager``) reads the file and saves it back; a real kernel of this environment
reports ``language_info`` and the kernel spec manager its ``kernelspec``. In between, the notebook
model of JupyterLab 4's front end applies its rules, read from its JavaScript bundle
(``NotebookModel.fromJSON``, ``YNotebook.toJSON``, ``NotebookPanel._updateSpec/_updateLanguage``):

* nbformat 4.4 stays 4.4 (its ``MINOR_VERSION`` is 4); cell ids are kept only from 4.5 on;
* when the kernel starts, ``metadata.kernelspec`` becomes ``{name, display_name, language}`` of the
  kernel spec and ``metadata.language_info`` the kernel's ``kernel_info`` reply. A value equal to
  the saved one (deep comparison) leaves the notebook unmodified.
"""

import asyncio
import difflib
import json
import shutil
import warnings

import nbformat
import pytest

from course import notebook_metadata as nm
from course.student_notebooks import make_student_version

jupyter_client = pytest.importorskip("jupyter_client")
largefilemanager = pytest.importorskip("jupyter_server.services.contents.largefilemanager")


@pytest.fixture(scope="module")
def kernel_report():
    """What JupyterLab learns when the notebook's kernel starts: its spec and its kernel_info."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    name = nm.KERNELSPEC["name"]
    spec = KernelSpecManager().get_kernel_spec(name)
    manager, client = start_new_kernel(kernel_name=name, startup_timeout=120)
    try:
        reply = client.kernel_info(reply=True, timeout=60)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return {
        "kernelspec": {"name": name, "display_name": spec.display_name, "language": spec.language},
        "language_info": reply["content"]["language_info"],
    }


def open_and_save_in_jupyterlab(path, report) -> str:
    """Load ``path`` as JupyterLab does, let the kernel start, save; return the saved text."""
    manager = largefilemanager.AsyncLargeFileManager(root_dir=str(path.parent))
    model = asyncio.run(manager.get(path.name, content=True, type="notebook"))
    content = json.loads(json.dumps(model["content"]))  # what the browser receives
    content["nbformat"] = max(content["nbformat"], 4)
    content["nbformat_minor"] = max(content["nbformat_minor"], 4)
    if (content["nbformat"], content["nbformat_minor"]) < (4, 5):
        for cell in content["cells"]:
            cell.pop("id", None)
    content["metadata"]["kernelspec"] = dict(report["kernelspec"])
    content["metadata"]["language_info"] = dict(report["language_info"])
    saved = {"type": "notebook", "format": "json", "content": content}
    asyncio.run(manager.save(saved, path.name))
    return path.read_text(encoding="utf-8")


def _short_diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "committed", "after open+save", n=1, lineterm=""
    )
    return "\n".join(list(lines)[:40])


@pytest.fixture
def isolated_jupyter(tmp_path, monkeypatch):
    """Keep the server's notebook-signature database out of the user's Jupyter folders."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    work = tmp_path / "work"
    work.mkdir()
    return work


def _report_for_recorded_python(report):
    """The kernel's report, with the Python version the notebooks record if this one differs."""
    reported = report["language_info"].get("version")
    if reported == nm.PYTHON_VERSION:
        return report
    warnings.warn(
        f"this environment's kernel runs Python {reported}; the notebooks record "
        f"{nm.PYTHON_VERSION} (the course's CI). Here JupyterLab would also rewrite "
        "metadata.language_info.version; everything else was checked.",
        stacklevel=2,
    )
    return {**report, "language_info": {**report["language_info"], "version": nm.PYTHON_VERSION}}


@pytest.mark.parametrize("path", nm.default_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebook_is_unchanged_by_opening_and_saving(
    path, kernel_report, isolated_jupyter
):
    copy = isolated_jupyter / path.name
    shutil.copyfile(path, copy)
    before = copy.read_text(encoding="utf-8")
    after = open_and_save_in_jupyterlab(copy, _report_for_recorded_python(kernel_report))
    assert after == before, (
        f"opening and saving {path.parent.name}/{path.name} in JupyterLab changes it; fix with "
        f"`python -m course.notebook_metadata --fix`\n{_short_diff(before, after)}"
    )


def test_the_recorded_metadata_is_what_this_kernel_reports(kernel_report):
    report = _report_for_recorded_python(kernel_report)
    assert report == nm.expected_metadata()


def _notebook_as_another_machine_saved_it(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A lesson"), nbformat.v4.new_code_cell("1 + 1")]
    del nb.cells[0]["id"], nb.cells[1]["id"]
    nb.nbformat_minor = 4
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = nm.language_info("3.12.3")
    nbformat.write(nb, path)


def test_a_notebook_with_other_metadata_is_caught_and_fixed(kernel_report, isolated_jupyter):
    path = isolated_jupyter / "lesson.ipynb"
    _notebook_as_another_machine_saved_it(path)
    before = path.read_text()
    found = nm.problems(path)
    assert any("kernelspec.display_name is 'Python 3'" in p for p in found), found
    assert any("language_info.version is '3.12.3'" in p for p in found), found
    report = _report_for_recorded_python(kernel_report)
    assert open_and_save_in_jupyterlab(path, report) != before  # the round trip sees it too

    _notebook_as_another_machine_saved_it(path)
    assert nm.main(["--check", str(path)]) == 1
    assert nm.main(["--fix", str(path)]) == 0
    assert nm.problems(path) == []
    assert nm.main(["--check", str(path)]) == 0
    fixed = path.read_text()
    assert open_and_save_in_jupyterlab(path, report) == fixed
    assert nbformat.read(path, as_version=4).cells[1].source == "1 + 1"  # cells untouched


def test_a_notebook_in_another_json_layout_is_caught(isolated_jupyter):
    path = isolated_jupyter / "lesson.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(nm.expected_metadata())
    path.write_text(json.dumps(nb, indent=2) + "\n")
    assert any("not in the layout Jupyter saves" in p for p in nm.problems(path))
    assert nm.fix(path) and nm.problems(path) == []


def test_cell_ids_in_a_notebook_older_than_4_5_are_caught_and_dropped(isolated_jupyter):
    """nbformat's cell helpers give new cells an id; a 4.4 notebook has none, Jupyter drops it."""
    path = isolated_jupyter / "lesson.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = 4
    nb.metadata.update(nm.expected_metadata())
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1 + 1")]
    path.write_text(nbformat.writes(nb) + "\n")
    assert "id" in json.loads(path.read_text())["cells"][0]
    assert any("2 cells carry an id" in p for p in nm.problems(path)), nm.problems(path)
    assert nm.fix(path) and nm.problems(path) == []
    cells = json.loads(path.read_text())["cells"]
    assert [("id" in c, "".join(c["source"])) for c in cells] == [(False, "# Title"),
                                                                   (False, "1 + 1")]


def test_student_versions_get_the_kernel_metadata():
    solution = nbformat.v4.new_notebook()
    solution.cells = [nbformat.v4.new_code_cell("x = 1")]
    solution.metadata["kernelspec"] = {"display_name": "Python 3", "name": "python3"}
    student = make_student_version(solution, "t.ipynb")
    assert {k: student.metadata[k] for k in ("kernelspec", "language_info")} == (
        nm.expected_metadata()
    )


def test_executed_notebooks_get_the_kernel_metadata(tmp_path):
    from course.execute import execute

    path = tmp_path / "run.ipynb"
    _notebook_as_another_machine_saved_it(path)
    execute(path, path, timeout=120)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "2"
    assert nm.problems(path) == []
