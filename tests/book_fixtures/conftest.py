"""The fixture pages are inputs of the browser check, not lessons: nbval must not run them."""

collect_ignore_glob = ["pages/*"]
