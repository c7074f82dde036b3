"""Interactive views (ipywidgets) that the lessons use to show how kernels split their work."""
