# Developer entry points. Needs only python3 (with the venv module) and pip; Dovecot and
# PostgreSQL are used by the tests when present (see tests/conftest.py).

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=

VENV_PYTHON := $(VENV)/bin/python

.PHONY: demo test lint

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

demo: $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet -e .
	$(VENV)/bin/zwxx demo

# pytest exits with 5 when it collected no tests; that fails the target like any other error.
test: $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

# ruff is not a project dependency: install it into the venv on first use.
lint: $(VENV_PYTHON)
	$(VENV_PYTHON) -m ruff --version >/dev/null 2>&1 || $(VENV_PYTHON) -m pip install --quiet ruff
	$(VENV_PYTHON) -m ruff check daemon parsers tests
