# Two entry points, both idempotent: the virtual environment is (re)built only
# when pyproject.toml changes, so the second call starts at once.
VENV    := .venv
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

.PHONY: run test test-all

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/robot-mirror launch launch/tower.yaml

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m ''
