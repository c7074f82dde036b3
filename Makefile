# The course's commands. The first two are all a learner needs:
#   make lab    set up on first use, then open JupyterLab at lesson 1
#   make test   set up on first use, then run the unit tests and execute every notebook (nbval)
# Set-up creates .venv with the pinned versions from pyproject.toml; it re-runs when that changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Two workers; nbval needs --dist loadscope so that each notebook runs whole on one worker.
WORKERS ?= 2
NOTEBOOKS := notebooks solutions

.PHONY: lab test test-latest unit notebooks student check-student book book-check gpu-test bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "the course needs Python 3.11 or newer"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,gpu,book]"
	touch $(STAMP)

# nbgrader, for instructors and for the test of the grading round trip; learners never need it.
GRADING_STAMP := $(VENV)/.installed-grading
$(GRADING_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[grading]"
	touch $(GRADING_STAMP)

# Jupyter refuses to run as root unless told to (containers often run as root).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=. notebooks/01_vector_add.ipynb

test: $(STAMP) $(GRADING_STAMP)
	$(BIN)/python -m course.student_notebooks --check
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax --nbval-current-env tests $(NOTEBOOKS)

# The same suite with the newest releases of torch, triton, numpy and nbval, in its own environment
# (.venv-latest), so that a release that breaks the course is seen before a learner sees it. The
# weekly CI job runs exactly this. Every other package keeps its pin. TORCH_INDEX chooses where torch
# comes from; without a GPU, PyTorch's CPU-only wheels keep the download small:
#   make test-latest TORCH_INDEX=https://download.pytorch.org/whl/cpu
LATEST      := .venv-latest
LATEST_BIN  := $(LATEST)/bin
TORCH_INDEX ?=

test-latest:
	test -d $(LATEST) || $(PYTHON) -m venv $(LATEST)
	$(LATEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LATEST_BIN)/python -m pip install --quiet --upgrade $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch
	$(LATEST_BIN)/python .ci/latest_requirements.py dev,gpu,book,grading > $(LATEST)/requirements.txt
	$(LATEST_BIN)/python -m pip install --quiet --upgrade -r $(LATEST)/requirements.txt
	$(LATEST_BIN)/python -m pip install --quiet --no-deps -e .
	$(LATEST_BIN)/python -c 'import importlib.metadata as m; print("testing with", *(f"{p} {m.version(p)}" for p in ("torch", "triton", "numpy", "nbval")))'
	$(LATEST_BIN)/python -m course.student_notebooks --check
	$(LATEST_BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax --nbval-current-env tests $(NOTEBOOKS)

unit: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax --nbval-current-env $(NOTEBOOKS)

# Regenerate the student notebooks after editing solutions/.
student: $(STAMP)
	$(BIN)/python -m course.student_notebooks

# Grade submitted notebooks: the course's checks (hidden tests included) are restored into each
# submission by their nbgrader grade ids, so an edited or deleted check scores 0 (course/grade.py).
#   make grade SUBMISSIONS="submissions/*/01_vector_add.ipynb"
.PHONY: grade
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo 'usage: make grade SUBMISSIONS="path/to/*.ipynb"'; exit 1; }
	$(BIN)/python -m course.grade $(SUBMISSIONS)

book: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[book]"
	$(BIN)/sphinx-build -b html book book/_build/html

# Open every page of the built book in headless Chromium, offline, and fail on what a reader would
# see broken: a failed request or one leaving the site, a console error, unrendered math, an empty
# widget area. Chromium comes from Debian's package (installed if missing, where apt-get may run).
# Screenshots of every page land in book/_build/screenshots. `make test` runs the same check.
book-check: book
	cd book && ../$(BIN)/python -m browser_check _build/html --screenshots _build/screenshots

# On a machine with an NVIDIA GPU: the same suite, with the GPU in use and full problem sizes.
gpu-test: $(STAMP)
	$(BIN)/python -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU visible to torch"'
	$(BIN)/python -m pytest -n 1 --dist loadscope --nbval-lax --nbval-current-env tests $(NOTEBOOKS)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(LATEST) book/_build book/lessons book/generated .pytest_cache
