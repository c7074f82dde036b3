"""Serve a built site on 127.0.0.1, open every page in headless Chromium, and list its problems.

Every request a page makes is intercepted: one to the site goes on, one that would leave it is
refused and reported (a reader offline or behind a firewall would not get it either). A request
that fails or answers an error status is reported, and so is every console error and uncaught
exception. When the page has loaded and MathJax has finished, ``page_checks.js`` looks at what a
reader sees: literal ``$`` signs (math that was not parsed), math left untypeset, MathJax errors,
nbgrader solution markers, printed output split into one box per line,
and widget areas with nothing drawn in them.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from .cdp import CDPSession
from .chromium import Browser

PAGE_CHECKS = (Path(__file__).parent / "page_checks.js").read_text()
NOT_PAGES = ("_static", "_sources", "_images", "jupyter_execute", "_downloads")
WAIT_FOR_MATHJAX = """
new Promise((done) => {
  const finished = () => done(true);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(finished, finished);
  } else { finished(); }
})
"""


@dataclass(frozen=True)
class Screenshot:
    """A PNG of the window, at the top of the page or with the first ``selector`` match in view."""

    path: Path
    selector: str | None = None


@dataclass(frozen=True)
class Problem:
    page: str
    kind: str  # failed request, request leaving the site, console error, unrendered math, ...
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to it."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        relative = path.relative_to(site)
        if relative.parts[0] not in NOT_PAGES:
            pages.append(relative.as_posix())
    return pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the check reports failures itself
        pass


class SiteServer:
    """Serves ``site`` on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, site: Path):
        handler = functools.partial(_QuietHandler, directory=str(site))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SiteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PageChecker:
    """Visits pages of one site in one browser session and collects their problems."""

    def __init__(self, session: CDPSession, origin: str, load_timeout: float = 30.0):
        self.session = session
        self.origin = origin
        self.load_timeout = load_timeout
        self.problems: list[Problem] = []
        self.page = ""
        self.urls: dict[str, str] = {}  # request id -> URL
        for domain in ("Page", "Runtime", "Log", "Network"):
            session.send(f"{domain}.enable")
        session.send("Fetch.enable", patterns=[{"urlPattern": "*"}])
        session.on("Fetch.requestPaused", self._on_request)
        session.on("Network.requestWillBeSent", self._on_request_sent)
        session.on("Network.responseReceived", self._on_response)
        session.on("Network.loadingFailed", self._on_failure)
        session.on("Runtime.consoleAPICalled", self._on_console)
        session.on("Runtime.exceptionThrown", self._on_exception)
        session.on("Log.entryAdded", self._on_log)

    def _report(self, kind: str, detail: str) -> None:
        self.problems.append(Problem(self.page, kind, detail))

    def _inside(self, url: str) -> bool:
        return url.startswith(self.origin + "/") or url.startswith(("data:", "blob:", "about:"))

    def _on_request(self, params: dict) -> None:
        url = params["request"]["url"]
        if self._inside(url):
            self.session.send_nowait("Fetch.continueRequest", requestId=params["requestId"])
        else:
            self._report("request leaving the site", url)
            self.session.send_nowait(
                "Fetch.failRequest", requestId=params["requestId"], errorReason="BlockedByClient"
            )

    def _on_request_sent(self, params: dict) -> None:
        self.urls[params["requestId"]] = params["request"]["url"]

    def _on_response(self, params: dict) -> None:
        response = params["response"]
        if response.get("status", 200) >= 400:
            self._report("failed request", f"{response['url']} answered {response['status']}")

    def _on_failure(self, params: dict) -> None:
        url = self.urls.get(params["requestId"], "?")
        if self._inside(url):  # those leaving the site are reported when refused
            self._report("failed request", f"{url}: {params.get('errorText', 'failed')}")

    def _on_console(self, params: dict) -> None:
        if params.get("type") in ("error", "assert"):
            text = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
            )
            self._report("console error", text)

    def _on_exception(self, params: dict) -> None:
        details = params.get("exceptionDetails", {})
        exception = details.get("exception", {})
        self._report("console error", exception.get("description") or details.get("text", "?"))

    def _on_log(self, params: dict) -> None:
        entry = params.get("entry", {})
        # Network errors are reported above, with their URL, when their request fails.
        if entry.get("level") == "error" and entry.get("source") != "network":
            self._report("console error", entry.get("text", "?"))

    def visit(self, page: str, screenshots: list[Screenshot] = ()) -> list[Problem]:
        """Load ``page`` (relative to the site), check it, and return the problems it has."""
        self.page = page
        start = len(self.problems)
        self.session.events()
        self.session.send("Page.navigate", url=f"{self.origin}/{page}")
        if self.session.wait_for("Page.loadEventFired", self.load_timeout) is None:
            self._report("failed request", f"the page did not load within {self.load_timeout} s")
            return self.problems[start:]
        self.session.send(
            "Runtime.evaluate", expression=WAIT_FOR_MATHJAX, awaitPromise=True, timeout=20000
        )
        self.session.pump(0.3)  # late requests and console messages
        found = self.session.send("Runtime.evaluate", expression=PAGE_CHECKS, returnByValue=True)
        value = found.get("result", {}).get("value")
        if value is None:
            self._report("console error", f"the page checks did not run: {found}")
        else:
            for kind, detail in json.loads(value):
                self._report(kind, detail)
        for screenshot in screenshots:
            self.screenshot(screenshot)
        return self.problems[start:]

    def screenshot(self, screenshot: Screenshot) -> None:
        if screenshot.selector:
            found = self.session.send(
                "Runtime.evaluate",
                expression=f"(e => e ? (e.scrollIntoView({{block: 'start'}}), true) : false)"
                f"(document.querySelector({json.dumps(screenshot.selector)}))",
                returnByValue=True,
            )
            if not found.get("result", {}).get("value"):
                self._report("screenshot", f"nothing matches {screenshot.selector!r}")
                return
            self.session.pump(0.3)
        shot = self.session.send("Page.captureScreenshot", format="png")
        screenshot.path.parent.mkdir(parents=True, exist_ok=True)
        screenshot.path.write_bytes(base64.b64decode(shot["data"]))


def check_site(
    site: Path,
    executable: str,
    pages: list[str] | None = None,
    screenshots: dict[str, list[Screenshot]] | None = None,
) -> list[Problem]:
    """Serve ``site``, open each of ``pages`` (default: all) in Chromium, return every problem.

    ``screenshots`` maps a page to the pictures to take of it. Those pages are opened first, in
    a fresh browser: the theme keeps the sidebar's scroll position from one page to the next.
    """
    pages = site_pages(site) if pages is None else pages
    screenshots = screenshots or {}
    first = [page for page in screenshots if page in pages]
    with SiteServer(site) as server, Browser(executable) as browser:
        checker = PageChecker(browser.session, server.origin)
        for page in first + [page for page in pages if page not in first]:
            checker.visit(page, screenshots.get(page, []))
        return checker.problems
