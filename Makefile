# Two commands on a fresh machine: `make demo` (the main job) and `make test` (every test).
# Both create .venv on first use and install the project into it; nothing else to install by hand.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Quiet TensorFlow's C++ start-up lines; they are noise for a student.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= agg

.PHONY: demo test test-fast check lint lab data clean help release

help:
	@echo "make demo   render the embedded dataset, run the notebooks end to end into outputs/"
	@echo "make test   run every test (pytest + nbval on the notebooks)"
	@echo "make test-fast  the tests without the notebook runs (marked slow)"
	@echo "make check  the assignment's checks in the notebooks (nbval): points so far, exercises to write (NB=02: one notebook)"
	@echo "make lint   ruff"
	@echo "make lab    JupyterLab on the repository with the project's environment (PORT=8888); prints the URL"

$(STAMP): pyproject.toml pose_utils/runtime.py pose_course/lab.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
	@# setuptools' note on editable installs is advice for package authors, not a problem of this one
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev]" 2>&1 \
		| { grep -v "^WARNING: Location" || true; }
	@# oneDNN on for every process of the environment, whatever it imports first (pose_utils/runtime.py)
	@$(BIN)/python -c "import pose_utils.runtime as r; r.install_pth()"
	@# kernels keep TensorFlow's C++ notices out of the cells; JupyterLab saves widget state (pose_course/lab.py)
	@$(BIN)/python -m pose_course.lab >/dev/null
	@# TensorFlow prints its start-up notices (no CUDA driver, oneDNN on) before its log level is read:
	@# shown only if the import fails
	@$(BIN)/python -c "import pose_utils, pose_course, tensorflow, pybullet, papermill, nbval" \
		>$(VENV)/import-check.log 2>&1 || { cat $(VENV)/import-check.log; echo "installation into $(VENV) is incomplete"; exit 1; }
	@touch $(STAMP)

# The marker names the data's style: a checkout whose data/small predates the everyday style (it holds
# the `hard` data) renders it again instead of training the demo on the old data.
DEMO_DATA := data/small/.style-everyday
$(DEMO_DATA): | $(STAMP)
	$(BIN)/python -m pose_utils make-data --preset small --out data/small --format both
	@touch $@

data: $(DEMO_DATA)

demo: $(STAMP) $(DEMO_DATA)
	$(BIN)/python -m pose_utils run-notebooks --out outputs -p data_dir $(CURDIR)/data/small
	@echo
	@echo "Done. Executed notebooks and figures: outputs/  (metrics: outputs/evaluation/metrics.json)"

# Every test: tests/ (the subject and the course's scaffolding), then the notebooks (nbval).
TESTS := tests notebooks
### BEGIN INSTRUCTOR ONLY
# In the instructor's repository the instructor's tests too (pose_course/instructor/tests: grading,
# release, the browser), with the Debian packages they need (pose_course/instructor/system-packages:
# bubblewrap, chromium and chromium-driver, installed when run as root).
TESTS += pose_course/instructor/tests
# nbgrader, in an environment of its own: it pins Jupyter packages that would fight the course's. Built
# here, before the tests, for pose_course/instructor/tests/test_nbgrader.py (docs/assignment.md, nbgrader).
NBGRADER_VENV := .venv-nbgrader
$(NBGRADER_VENV)/.stamp: pose_course/instructor/nbgrader-requirements.txt
	@test -x $(NBGRADER_VENV)/bin/python || $(PYTHON) -m venv $(NBGRADER_VENV)
	$(NBGRADER_VENV)/bin/python -m pip install --quiet -r $< 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@
test: $(NBGRADER_VENV)/.stamp
### END INSTRUCTOR ONLY

test: $(STAMP)
### BEGIN INSTRUCTOR ONLY
	@bash pose_course/instructor/system-packages
### END INSTRUCTOR ONLY
	$(BIN)/lint-imports | tail -n 4
	$(BIN)/python -m pytest $(TESTS) --nbval-lax --nbval-current-env -p no:cacheprovider

# The inner loop: every test but those that execute the notebooks (pytest marker `slow`). ARGS: more
# pytest options, e.g. make test-fast ARGS="-k metrics" for the tests of one module.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider $(ARGS)

# The assignment's public checks as a student runs them before submitting (docs/assignment.md): nbval
# executes the notebooks; the summary gives the points of each check cell, why each failed one failed,
# and the exercises to write. NB=02 checks notebook 02 alone.
# Each check's outcome goes to CHECK_RECORD too, which GitHub Classroom's steps read
# (.github/workflows/classroom.yml, pose_course/classroom.py).
CHECK_RECORD := outputs/check/results.json
check: $(STAMP)
	$(BIN)/python -m pytest $(if $(NB),notebooks/$(NB)_*.ipynb,notebooks) --nbval-lax --nbval-current-env \
		-p no:cacheprovider -q --tb=no -rN --check-record $(CHECK_RECORD)

### BEGIN INSTRUCTOR ONLY
# The student version of this repository (pose_course/instructor/release.py): make release OUT=DIR.
release: $(STAMP)
	$(BIN)/python -m pose_utils release --out $(or $(OUT),release)
### END INSTRUCTOR ONLY

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports | tail -n 4

# JupyterLab on the repository (as root too, as in containers); prints the URL to open.
lab: $(STAMP)
	@$(BIN)/python -m pose_utils lab $(if $(PORT),--port $(PORT))

clean:
	rm -rf outputs data/small
