"""``python -m browser_check SITE [--screenshots DIR]``: check a built site; exit 1 on a problem."""

import argparse
import sys
from pathlib import Path

from .chromium import ChromiumUnavailable, find_or_install_chromium
from .site import Screenshot, check_site, site_pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("site", type=Path, help="the built site, e.g. book/_build/html")
    parser.add_argument("--screenshots", type=Path, help="write a PNG of each page here")
    arguments = parser.parse_args()
    try:
        executable = find_or_install_chromium()
    except ChromiumUnavailable as error:
        print(f"cannot check the site in a browser: {error}", file=sys.stderr)
        return 2
    pages = site_pages(arguments.site)
    shots = {}
    if arguments.screenshots:
        shots = {
            page: [
                Screenshot(arguments.screenshots / page.replace("/", "_").replace(".html", ".png"))
            ]
            for page in pages
        }
    problems = check_site(arguments.site, executable, pages, shots)
    for problem in problems:
        print(problem)
    print(f"{len(pages)} pages opened in {executable}: {len(problems)} problems")
    return 1 if problems else 0


sys.exit(main())
