"""Find Debian's Chromium (installing it where that is allowed) and start it headless and offline.

The check needs a real browser: math is typeset by MathJax's JavaScript, widgets are drawn by the
page, and failed requests show only when a browser asks for them. Chromium is found on ``PATH``
(or through the ``CHROMIUM`` environment variable); where it is missing and the machine is a
Debian or Ubuntu one we may change (root, or password-less sudo), ``apt-get install chromium``
installs it. Set ``COURSE_INSTALL_CHROMIUM=0`` to forbid that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .cdp import CDPSession

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",  # containers often run as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",  # no update checks, no safe-browsing lists: offline
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
]


class ChromiumUnavailable(RuntimeError):
    """No Chromium here, and none can be installed: the message says what to do."""


def find_chromium() -> str | None:
    """The path of a Chromium executable, or None."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        return chosen if Path(chosen).exists() else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt_prefix() -> list[str] | None:
    """How to run apt-get with the rights it needs: [] as root, ['sudo', '-n'], or None."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    ):
        return ["sudo", "-n"]
    return None


def install_chromium(timeout: float = 900) -> str:
    """Install Debian's chromium package with apt-get; return its path."""
    if os.environ.get("COURSE_INSTALL_CHROMIUM", "1") == "0":
        raise ChromiumUnavailable(
            "Chromium is not installed and COURSE_INSTALL_CHROMIUM=0 forbids installing it"
        )
    prefix = _apt_prefix()
    if prefix is None:
        raise ChromiumUnavailable(
            "Chromium is not installed and this machine offers no way to install it here (apt-get "
            "as root or with password-less sudo). Install it (Debian/Ubuntu: `sudo apt-get "
            "install chromium`) or set CHROMIUM to a Chromium or Chrome executable."
        )
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium"],
    ):
        result = subprocess.run(
            prefix + command, capture_output=True, text=True, env=environment, timeout=timeout
        )
        if result.returncode != 0:
            raise ChromiumUnavailable(
                f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
            )
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable(
            "apt-get installed chromium, but no chromium executable is on PATH"
        )
    return found


def find_or_install_chromium() -> str:
    """Chromium's path: the one ``CHROMIUM`` names, one on PATH, or one installed now."""
    chosen = os.environ.get("CHROMIUM")
    if chosen and not Path(chosen).exists():
        raise ChromiumUnavailable(f"CHROMIUM={chosen} does not exist: point it at a Chromium")
    return find_chromium() or install_chromium()


class Browser:
    """A headless Chromium with a fresh profile, and a DevTools session on its one page."""

    def __init__(self, executable: str, timeout: float = 30.0):
        # Chromium's helper processes can still write to the profile for a moment after the
        # browser exits; a leftover file must not fail the check that just passed.
        self.profile = tempfile.TemporaryDirectory(
            prefix="course-chromium-", ignore_cleanup_errors=True
        )
        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port(timeout)
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=timeout
            ) as answer:
                targets = json.load(answer)
            page = next(t for t in targets if t.get("type") == "page")
            self.session = CDPSession(page["webSocketDebuggerUrl"], timeout=timeout)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout: float) -> int:
        active = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChromiumUnavailable(
                    f"Chromium exited at start (exit {self.process.returncode})"
                )
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            time.sleep(0.05)
        raise ChromiumUnavailable(f"Chromium did not open its DevTools port within {timeout:.0f} s")

    def close(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            session.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
