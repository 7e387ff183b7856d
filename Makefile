# Two commands matter: `make demo` (set up, then train → decode → score on the synthetic corpus)
# and `make test` (set up, then run the test suite). Everything else is a building block.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
RECIPE_ARGS ?=

.PHONY: setup demo test lint format bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,voices]'
	touch $@

demo: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" bash recipes/synth/run.sh $(RECIPE_ARGS)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) exp outputs multirun
