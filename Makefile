# Two commands on a fresh machine (see README):
#   make repro   # create .venv, install, run the whole DVC pipeline on params.yaml's model
#   make test    # create .venv, install, run the test suite
# Everything else is plain `dvc`/`aipc`/`pytest` inside the venv (`source .venv/bin/activate`).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
export PATH := $(abspath $(VENV))/bin:$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: install repro test lint clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade "pip>=24"
	$(VENV)/bin/pip install -e ".[dev]"
	touch $@

repro: install
	dvc repro

test: install
	pytest

lint: install
	ruff check . && ruff format --check .

clean-venv:
	rm -rf $(VENV)
