# The two commands of a fresh machine: `make demo` and `make test`.
# Each creates .venv by itself and installs what it needs; torch is installed
# first and pinned, so nothing can pull a multi-GB CUDA build of it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0

.PHONY: demo test test-slow lint chromium bench notebook clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[all]"
	touch $@

# llama-cpp-python compiles llama.cpp: CPU only, no -march=native, no curl.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/thermoscope demo

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests bench scripts examples
	$(VENV)/bin/ruff format --check src tests bench scripts examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The browser tests drive Debian's chromium (installed with apt-get when
# missing); under `make test` they fail rather than skip without it.
# axe-core (npm) checks the explorer's accessibility in the browser tests.
AXE := $(VENV)/npm/node_modules/axe-core/axe.min.js

chromium: $(AXE)
	@scripts/install_chromium.sh

$(AXE): | $(PY)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm axe-core@4.14.1

# `make test` leaves out the tests marked slow (long training runs, load tests);
# `make test-slow` runs only those; CI (.ci/run) runs both.
test: lint chromium
	THERMOSCOPE_REQUIRE_BROWSER=1 $(PY) -m pytest -n 2 -m "not slow"

test-slow: $(VENV)/.test-installed chromium
	THERMOSCOPE_REQUIRE_BROWSER=1 $(PY) -m pytest -n 2 -m slow

bench: $(VENV)/.test-installed
	$(PY) bench/sampling.py
	$(PY) bench/calibration.py
	$(PY) bench/generation.py
	$(PY) bench/explorer_load.py

# Re-executes examples/temperature_tour.ipynb and stores it with its outputs.
notebook: $(VENV)/.test-installed
	$(PY) scripts/execute_notebook.py

clean:
	rm -rf $(VENV) out build dist
