# The two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# The test suite runs against real services; these are the local defaults.
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/oms
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# The demo runs on the embedded default: SQLite and a local-memory cache, no service needed.
# Its legacy side is a SQLite stand-in filled with realistic dirty data by seed_legacy.
DEMO_ENV := DATABASE_URL=sqlite:///$(CURDIR)/var/demo.sqlite3 REDIS_URL= DEBUG=false \
	LEGACY_DATABASE_URL=sqlite:///$(CURDIR)/var/demo_legacy.sqlite3
DEMO_SCALE ?= 3000

.PHONY: demo test bench install install-test clean help

help:
	@echo "make demo   - install, build demo data and serve the admin + API on http://127.0.0.1:$(PORT)"
	@echo "make test   - install and run the whole test suite against PostgreSQL and Redis"
	@echo "make bench  - benchmarks (slow; not part of the tests)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per requirements set: re-installs only when its files change.
$(VENV)/.installed-base: $(VENV)/bin/python requirements/base.txt requirements/legacy.txt requirements/production.txt
	$(PY) -m pip install --quiet -r requirements/production.txt
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed-base requirements/test.txt
	$(PY) -m pip install --quiet -r requirements/test.txt
	@touch $@

install: $(VENV)/.installed-base
install-test: $(VENV)/.installed-test

demo: install
	@mkdir -p var
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0
	@echo "== Building a legacy database of $(DEMO_SCALE) orders with every quirk of the contract"
	$(DEMO_ENV) $(PY) manage.py seed_legacy --scale $(DEMO_SCALE) --replace --no-progress -v 0
	@echo "== Migrating it (re-runs only rewrite what changed)"
	$(DEMO_ENV) $(PY) manage.py migrate_legacy
	@echo "== Reconciling legacy and modern"
	$(DEMO_ENV) $(PY) manage.py reconcile --no-progress || echo "(reconciliation found differences: see the admin)"
	@echo "== Sample data made in the modern system, and the demo users"
	$(DEMO_ENV) $(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput -v 0
	@echo ""
	@echo "  OMS back office:  http://127.0.0.1:$(PORT)/admin/"
	@echo "  login:            demo / demo-oms   (staff superuser, demo only)"
	@echo "  stop with Ctrl-C"
	@echo ""
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload --nostatic

test: install-test
	@bin/install-system-deps
	@DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(PY) bin/check-services
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/.installed-bench: $(VENV)/.installed-test requirements/bench.txt
	$(PY) -m pip install --quiet -r requirements/bench.txt
	@touch $@

bench: $(VENV)/.installed-bench
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
