# One command each: `make demo` (set up + main job), `make test` (set up + tests). Both create .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,study]'
	touch $@

demo: setup
	$(PY) -m figures.study --demo --tables 1 2 3 6 7 8 --out-dir runs/demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/train_speed.py --quick
	$(PY) bench/landscape_speed.py --quick
	$(PY) bench/diversity_speed.py --quick
