"""Open every page of the built book in headless Chromium and report what a reader would see broken.

* :mod:`.chromium` finds Debian's Chromium (or installs it) and starts it headless and offline;
* :mod:`.cdp` is a minimal client of the Chrome DevTools Protocol, which drives it;
* :mod:`.site` serves the site on 127.0.0.1, visits each page and collects its problems: a failed
  request or one that leaves the site, a console error, math left unrendered, an empty widget area.

``python -m browser_check BUILT_SITE`` (run from ``book/``) checks a built site from the command
line; ``tests/test_book_browser.py`` builds the book, checks it, and proves on small pages with
one defect each that every kind of problem is caught.
"""
