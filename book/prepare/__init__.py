"""Build-time steps that write the book's generated pages before Sphinx reads its sources.

``lessons`` turns the solution notebooks into the pages a reader sees (no solution markers, one
output box per printed stream, a static picture for every interactive view, display math that
parses); ``results`` writes the page of measured benchmark tables; ``course_map`` outlines the
lessons. ``conf.py`` runs all three.
"""
