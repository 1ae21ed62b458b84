# The course's commands. From a fresh clone: `make lab` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAB_STAMP  := $(VENV)/.lab-installed
TEST_STAMP := $(VENV)/.test-installed
# TensorFlow reads its log level at start-up: set it for every kernel these commands start.
export TF_CPP_MIN_LOG_LEVEL := 3
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: lab test lessons test-fast refresh costs bench student grade bench-grade lint format clean

# JupyterLab refuses to run as root unless told to (containers often run as root).
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(LAB_STAMP)  ## Create the environment and open JupyterLab on lesson 1
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/01_explore_mnist.ipynb

# The lesson check: nbval compares every stored output except those of cells tagged
# nbval-ignore-output (trained results), which the next cell checks in code.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout 900
# Another machine's settings, under which the lessons must pass too.
OTHER_MACHINE := TF_NUM_INTRAOP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0

test: $(TEST_STAMP)  ## Create the environment and run every test, notebooks included
	$(BIN)/python -m pytest tests notebooks/[0-9]*.ipynb $(NBVAL) --durations 20
	@echo "The lessons again, with another machine's settings: $(OTHER_MACHINE)"
	$(OTHER_MACHINE) $(BIN)/python -m pytest -p no:cacheprovider \
		notebooks/[0-9]*.ipynb $(NBVAL)

lessons: $(TEST_STAMP)  ## Only the lesson check; prefix TF_NUM_INTRAOP_THREADS=1 etc. to try a machine
	$(BIN)/python -m pytest notebooks/[0-9]*.ipynb $(NBVAL)

test-fast: $(TEST_STAMP)  ## Only the tests that take seconds
	$(BIN)/python -m pytest -m "not slow"

refresh: $(TEST_STAMP)  ## Re-run every lesson from a fresh kernel and store its outputs
	for nb in notebooks/[0-9]*.ipynb; do \
		$(BIN)/jupytext --sync $$nb && \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=900 --NotebookClient.record_timing=False $$nb \
		|| exit 1; \
	done

costs: $(TEST_STAMP)  ## Each lesson's run time and peak memory, as a table (build/lesson_costs.md)
	$(BIN)/python benchmarks/lesson_costs.py --output build/lesson_costs.md

# PyTorch is optional: it is only the benchmark's third variant. `make bench BENCH_TORCH=`
# skips installing it, and the benchmark then reports that variant as skipped.
BENCH_TORCH ?= torch==2.13.0

bench: $(TEST_STAMP)  ## Time the course's training three ways: naive, the course's, PyTorch (minutes)
	@test -z "$(BENCH_TORCH)" || $(BIN)/python -c 'import torch' 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet "$(BENCH_TORCH)" \
		|| echo "could not install $(BENCH_TORCH): the PyTorch variant is skipped"
	$(BIN)/python benchmarks/train_speed.py --out build/train_speed.md \
		--out build/train_speed.json

EXERCISES := notebooks/exercises

student: $(TEST_STAMP)  ## Write the student version of every exercise to notebooks/exercises/release
	$(BIN)/python -m grader release --course $(EXERCISES)

GRADE_ARGS ?=
grade: $(TEST_STAMP)  ## Grade every submission in notebooks/exercises/submitted, sandboxed and in parallel: report + grades.csv
	$(BIN)/python -m grader grade --course $(EXERCISES) $(GRADE_ARGS)

bench-grade: $(TEST_STAMP)  ## Time grading a generated class of 40 submissions per exercise, 1 worker against 2 (minutes)
	$(BIN)/python benchmarks/grade_speed.py --out build/grade_speed.md --out build/grade_speed.json

lint: $(TEST_STAMP)  ## ruff on the package, the tests and the paired lessons
	$(BIN)/ruff check course_utils grader tests notebooks benchmarks
	$(BIN)/ruff format --check course_utils grader tests notebooks benchmarks

format: $(TEST_STAMP)
	$(BIN)/ruff format course_utils grader tests notebooks benchmarks
	$(BIN)/ruff check --fix course_utils grader tests notebooks benchmarks

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "the course needs Python 3.11 or newer; run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)

$(LAB_STAMP): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

$(TEST_STAMP): $(LAB_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
