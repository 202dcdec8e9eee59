# Two commands do everything: `make run` and `make test`. Every install step is idempotent:
# stamp files and dpkg checks make a second run install nothing.
PORT ?= 5000
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard geoapp/web/translations/*/LC_MESSAGES/messages.po))
ASSETS := node_modules/.stamp
# headless Chromium and a CJK font for the browser tests, nginx and systemd-analyze for the deploy test, and PostgreSQL with
# PostGIS for the second store backend (Debian packages; the tests start a private cluster under build/)
POSTGRES_PACKAGES := postgresql-15 postgresql-15-postgis-3
SYSTEM_PACKAGES := chromium fonts-wqy-microhei nginx systemd $(POSTGRES_PACKAGES)

.PHONY: run run-postgis test lint lock bench system-packages clean

run: $(VENV)/.stamp-app $(ASSETS) $(CATALOGUES)
	$(FLASK) geoapp init --demo --if-missing
	$(FLASK) geoapp db upgrade
	@echo "geoapp: http://127.0.0.1:$(PORT)/  (the demo district is synthetic data)"
	PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

# the same, on PostgreSQL + PostGIS: a private cluster under build/pg (started if it is not running), database geoapp
run-postgis: $(VENV)/.stamp-app $(ASSETS) $(CATALOGUES)
	scripts/apt-install.sh $(POSTGRES_PACKAGES)
	$(MAKE) run GEOAPP_DATABASE=$$($(PY) scripts/pgcluster.py start build/pg geoapp)

test: $(VENV)/.stamp-dev $(ASSETS) $(CATALOGUES) system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.stamp-dev $(ASSETS) $(CATALOGUES)
	$(PY) -m bench

system-packages:
	scripts/apt-install.sh $(SYSTEM_PACKAGES)

$(VENV)/.stamp-venv:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "geoapp needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	touch $@

# every transitive dependency pinned with its hashes: pip refuses anything else
$(VENV)/.stamp-app: requirements.lock $(VENV)/.stamp-venv
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	touch $@

$(VENV)/.stamp-dev: requirements-dev.lock $(VENV)/.stamp-app
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	touch $@

# after changing requirements.txt or requirements-dev.txt (the human lists): pin everything they need
UV_COMPILE := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11
lock: $(VENV)/.stamp-dev
	$(UV_COMPILE) requirements.txt -o requirements.lock
	$(UV_COMPILE) -c requirements.lock requirements-dev.txt -o requirements-dev.lock

# Leaflet and its plugins from the npm registry, served by the app (no CDN at run time)
$(ASSETS): package.json package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

%.mo: %.po $(VENV)/.stamp-app
	$(VENV)/bin/pybabel compile -i $< -o $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache $(CATALOGUES)
