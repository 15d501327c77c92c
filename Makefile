# One command each: `make demo` (set up + main job), `make test` (set up + tests). Both create .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(PY) -m training.train --method scratch --model resnet20 --epochs 6 --lr-milestones 2 4 --out-dir runs/demo-scratch

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/train_speed.py --quick
