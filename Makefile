# Two commands do everything: `make run` and `make test`. Installs are idempotent (stamp files).
PORT ?= 5000
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi

.PHONY: run test lint format bench clean

run: $(VENV)/.stamp-app
	$(FLASK) geoapp init --demo --if-missing
	@echo "geoapp: http://127.0.0.1:$(PORT)/  (the demo district is synthetic data)"
	PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.stamp-dev
	$(PY) -m bench

$(VENV)/.stamp-venv:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "geoapp needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.stamp-app: requirements.txt $(VENV)/.stamp-venv
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-app
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
