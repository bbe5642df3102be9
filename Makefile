# vpndoctor: `make demo` and `make test` install what they need (Debian packages, .venv) and run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-unit test-lab bench lint clean

install:
	./scripts/install-deps.sh

demo: install
	./scripts/demo.sh

test: install
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: install
	$(PY) -m pytest -q -m "not lab"

test-lab: install
	$(PY) -m pytest -q -m lab

bench: install
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check src tests bench scripts setup.py
	$(VENV)/bin/mypy src

clean:
	-$(VENV)/bin/vpndoctor lab down 2>/dev/null
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info build
	find src -name '*.so' -delete -o -name __pycache__ -prune -exec rm -rf {} +
