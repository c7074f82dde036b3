"""Sphinx settings for the browser check's fixture pages: the book's extensions, theme and options.

``tests/test_book_browser.py`` copies this file, the book's favicon and the pages of ``pages/``
(as they are, or first passed through the book's preparation) into a fresh folder and builds it.
"""

project = "browser check fixtures"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
exclude_patterns = ["_build"]
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
html_theme = "sphinx_book_theme"
html_favicon = "favicon.svg"
html_context = {"default_mode": "auto"}
html_theme_options = {"navbar_persistent": []}
