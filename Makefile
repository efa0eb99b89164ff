# The two set-up commands of the README: `make all` (install, then the main job) and
# `make test`. Installation is idempotent: stamps skip finished steps.
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
PIP := $(BIN)/pip --disable-pip-version-check -q

# Root in CI; elsewhere apt-get needs sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install all test chromium

install: $(VENV)/.installed .doccano/venv/.installed

# torch 2.13.0 first: it is the CPU build on local disk; anything else pulls CUDA wheels.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev,scale]"
	$(BIN)/python -c "import homs_ner, spacy_transformers, seqeval, torch, ray, duckdb; assert torch.__version__.startswith('2.13.0')"
	touch $@

# Also re-run when the frontend patch (right-to-left by default) changes.
.doccano/venv/.installed: $(VENV)/.installed src/homs_ner/doccano/frontend.py
	$(BIN)/homs-ner doccano install
	touch $@

all: install
	$(BIN)/spacy project run all

# The HTML visualisation and the Doccano annotation page are tested in a real headless
# browser: Debian's Chromium, driven by Playwright's Python driver (no browser download).
chromium:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

test: install chromium
	$(BIN)/python -m pytest
