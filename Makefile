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

.PHONY: lab test unit notebooks student check-student book gpu-test bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "the course needs Python 3.11 or newer"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,gpu,book]"
	touch $(STAMP)

# Jupyter refuses to run as root unless told to (containers often run as root).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=. notebooks/01_vector_add.ipynb

test: $(STAMP)
	$(BIN)/python -m course.student_notebooks --check
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax --nbval-current-env tests $(NOTEBOOKS)

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

# On a machine with an NVIDIA GPU: the same suite, with the GPU in use and full problem sizes.
gpu-test: $(STAMP)
	$(BIN)/python -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU visible to torch"'
	$(BIN)/python -m pytest -n 1 --dist loadscope --nbval-lax --nbval-current-env tests $(NOTEBOOKS)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) book/_build .pytest_cache
