# vpndoctor: `make demo` and `make test` install what they need (Debian packages, .venv) and run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# inputs per harness for `make fuzz`; FUZZ_ARGS adds fuzz/run.py options (harness names, --jobs 2, --fresh)
FUZZ_RUNS ?= 1000000
FUZZ_ARGS ?=

.PHONY: install demo test test-unit test-lab bench fuzz lint clean

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

fuzz: install
	nice -n 19 $(PY) -m fuzz.run --runs $(FUZZ_RUNS) $(FUZZ_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench scripts setup.py fuzz
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

clean:
	-$(VENV)/bin/vpndoctor lab down 2>/dev/null
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info build
	find src -name '*.so' -delete -o -name __pycache__ -prune -exec rm -rf {} +
