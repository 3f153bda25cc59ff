# `make run`: the whole service locally. `make test`: the whole suite. Both set up a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run run-fleet reset test test-unit lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	$(PY) scripts/devstack.py db
	$(PY) scripts/devstack.py schema
	$(PY) scripts/devstack.py jq
	@# Procfile's `ready` prints where the API is once the api, a worker and the relay are all up.
	@# honcho pipes the processes' output (not a terminal: JSON by default); a person reads these lines.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" IMAGES_LOG_FORMAT="$${IMAGES_LOG_FORMAT:-console}" exec $(VENV)/bin/honcho -f Procfile start

# A clean slate for `make run`: its database (IMAGES_DB_DSN, `images` by default) dropped and made
# again, its files (var/) removed. The broker keeps nothing: it forgets all when `make run` stops.
reset: install
	$(PY) scripts/devstack.py db
	$(PY) scripts/devstack.py reset
	rm -rf var

# compose's topology natively, on object storage: nginx, 3 api, 2 workers, 2 relays, MariaDB,
# the broker and moto's S3 server (scripts/fleet.py). nginx is Debian's, installed when missing.
run-fleet: install
	$(PY) scripts/devstack.py db
	$(PY) scripts/devstack.py schema
	$(PY) scripts/devstack.py nginx
	IMAGES_LOG_FORMAT="$${IMAGES_LOG_FORMAT:-console}" exec $(PY) scripts/fleet.py

test: install
	$(PY) scripts/devstack.py db
	$(PY) scripts/devstack.py tools
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install
	$(PY) scripts/devstack.py db
	@command -v wrk >/dev/null || echo "wrk not found: the ingest benchmark falls back to a Python client (apt-get install wrk)"
	cd bench && ../$(PY) ingest.py && ../$(PY) relay.py && ../$(PY) conversion.py && ../$(PY) scaling.py && ../$(PY) confirm.py && ../$(PY) storage.py && ../$(PY) auth.py && ../$(PY) fuzz.py && ../$(PY) crash.py && ../$(PY) overload.py --unbounded && ../$(PY) report.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache
