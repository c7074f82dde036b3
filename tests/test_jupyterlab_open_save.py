"""In a real JupyterLab, opening a notebook does not mark it modified, and saving changes nothing.

``test_notebook_metadata.py`` checks this through the server's save path in-process. This test
does what a person does, in headless Chromium: JupyterLab opens each committed notebook, its kernel
starts and reports itself, and then the notebook must not be dirty, and saving it must write the
file back byte for byte. A notebook with the metadata of another machine (display name "Python 3",
another Python version) is opened too, and must be caught: that proves the test can fail.

It needs Chromium (Debian's ``chromium``, or ``CHROMIUM=/path/to/chromium``); without it, it skips.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from course import notebook_metadata as nm

websocket = pytest.importorskip("websocket", reason="websocket-client comes with jupyter_server")
CHROMIUM = (
    os.environ.get("CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or shutil.which("google-chrome")
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
TIMEOUT = 180  # seconds for JupyterLab to load or a kernel to start, on a busy two-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, probe, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, ValueError, RuntimeError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


class Browser:
    """Just enough of the Chrome DevTools protocol: evaluate JavaScript in the page."""

    def __init__(self, url: str):
        self._ws = websocket.create_connection(url, timeout=TIMEOUT)
        self._next_id = 0

    def evaluate(self, expression: str):
        self._next_id += 1
        message = {
            "id": self._next_id,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "awaitPromise": True, "returnByValue": True},
        }
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._next_id:
                break
        if "error" in reply:
            raise RuntimeError(f"the browser refused: {reply['error']}")
        result = reply.get("result", {})
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        self._ws.close()


# Open a notebook, wait until its kernel has reported its info and spec (that is when JupyterLab
# writes them into the metadata), then read the dirty flag, save, and report.
OPEN_AND_SAVE = """(async () => {
  const app = window.jupyterapp;
  const widget = await app.commands.execute('docmanager:open', {path: %s});
  await widget.context.ready;
  await widget.sessionContext.ready;
  const kernel = widget.sessionContext.session.kernel;
  await kernel.info;
  await kernel.spec;
  await new Promise(resolve => setTimeout(resolve, 1000));
  const dirty = widget.context.model.dirty;
  const version = widget.context.model.getMetadata('language_info').version;
  await widget.context.save();
  await widget.sessionContext.shutdown();
  widget.dispose();
  return JSON.stringify({dirty, version});
})()"""


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a folder of notebooks, and a headless Chromium showing it."""
    root = tmp_path_factory.mktemp("jupyterlab")
    work = root / "notebooks"
    work.mkdir()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )
    lab_port, debug_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--expose-app-in-browser",
            f"--port={lab_port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    chromium = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--remote-debugging-port={debug_port}",
            f"--user-data-dir={root / 'chromium'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser = None
    try:
        lab_url = f"http://127.0.0.1:{lab_port}"
        _wait_for("JupyterLab's start", lambda: urllib.request.urlopen(f"{lab_url}/api/status"))
        tabs = _wait_for(
            "Chromium's start",
            lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json")),
        )
        page = next(tab for tab in tabs if tab["type"] == "page")
        browser = Browser(page["webSocketDebuggerUrl"])
        browser.evaluate(f"window.location.href = '{lab_url}/lab'")
        _wait_for("JupyterLab's page", lambda: browser.evaluate("!!window.jupyterapp"))
        browser.evaluate("window.jupyterapp.restored.then(() => true)")
        yield work, browser
    finally:
        if browser:
            browser.close()
        for process in (chromium, server):
            process.terminate()
            process.wait(timeout=30)


def _open_and_save(jupyterlab, name: str, text: str):
    work, browser = jupyterlab
    (work / name).write_text(text, encoding="utf-8")
    result = json.loads(browser.evaluate(OPEN_AND_SAVE % json.dumps(name)))
    return result, (work / name).read_text(encoding="utf-8")


def test_committed_notebooks_open_clean_and_save_unchanged(jupyterlab):
    problems = []
    for path in nm.default_paths():
        text = path.read_text(encoding="utf-8")
        result, saved = _open_and_save(jupyterlab, f"{path.parent.name}-{path.name}", text)
        if result["version"] != nm.PYTHON_VERSION:
            pytest.skip(
                f"this kernel runs Python {result['version']}; the notebooks record "
                f"{nm.PYTHON_VERSION}, so JupyterLab here rewrites language_info.version"
            )
        if result["dirty"]:
            problems.append(f"{path.parent.name}/{path.name}: modified as soon as it opens")
        if saved != text:
            problems.append(f"{path.parent.name}/{path.name}: saving it changes the file")
    assert problems == [], "\n".join(
        problems + ["fix with: python -m course.notebook_metadata --fix"]
    )


def test_a_notebook_with_another_machine_s_metadata_is_caught(jupyterlab):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    del nb.cells[0]["id"]
    nb.nbformat_minor = 4
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = nm.language_info("3.12.3")
    text = nm.render(nb)
    result, saved = _open_and_save(jupyterlab, "other-machine.ipynb", text)
    assert result["dirty"] is True
    assert saved != text
    assert nbformat.reads(saved, as_version=4).metadata["kernelspec"] == nm.KERNELSPEC


# Open a notebook, wait for its first markdown cell to render, and report its folded answers: how
# many <details> blocks the cell shows, their summaries, whether they start closed, and whether a
# click on a summary opens one (JupyterLab sanitises markdown HTML; <details> must survive it).
READ_FOLDED_ANSWERS = """(async () => {
  const app = window.jupyterapp;
  const widget = await app.commands.execute('docmanager:open', {path: %s});
  await widget.context.ready;
  await widget.content.fullyRendered;
  let details = [];
  for (let i = 0; i < 100 && details.length === 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 200));
    details = Array.from(widget.node.querySelectorAll('.jp-MarkdownCell details'));
  }
  const summaries = details.map(d => d.querySelector('summary')?.textContent.trim());
  const closed = details.map(d => !d.open);
  details[0]?.querySelector('summary')?.click();
  await new Promise(resolve => setTimeout(resolve, 200));
  const openedByClick = details.length > 0 && details[0].open;
  const hiddenText = details.length > 0 && details[1] ? details[1].innerText : '';
  widget.dispose();
  return JSON.stringify({count: details.length, summaries, closed, openedByClick, hiddenText});
})()"""


def test_self_check_answers_are_folded_in_jupyterlab(jupyterlab):
    """The lessons' "Check yourself" answers are <details> blocks: in JupyterLab they must render
    folded, with their "Answer" summary, and open on a click."""
    work, browser = jupyterlab
    lesson = nbformat.read(nm.default_paths()[0], as_version=4)
    cell = next(c for c in lesson.cells
                if c.cell_type == "markdown" and "<details>" in c.source)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(cell.source)]
    nb.metadata["kernelspec"] = nm.KERNELSPEC
    (work / "self-check.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    result = json.loads(browser.evaluate(READ_FOLDED_ANSWERS % json.dumps("self-check.ipynb")))
    expected = cell.source.count("<details>")
    assert result["count"] == expected, result
    assert result["summaries"] == ["Answer"] * expected
    assert all(result["closed"]), "an answer is shown before it is asked for"
    assert result["openedByClick"], "clicking 'Answer' did not open the answer"
