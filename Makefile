# Data Forge: two commands set up a fresh machine.
#   make up    run the whole platform on embedded PostgreSQL + Redis (http://127.0.0.1:8000);
#              `make up WITH_ML=1` also installs torch + ultralytics for detector models
#   make test  install what the tests need (Debian chromium included) and run the suite
# Uses the active virtualenv if there is one, else creates .venv in the repo root.

VENV ?= .venv
ifdef VIRTUAL_ENV
PY := $(VIRTUAL_ENV)/bin/python
STAMP_DIR := $(VIRTUAL_ENV)
else
PY := $(VENV)/bin/python
STAMP_DIR := $(VENV)
endif
PIP := $(PY) -m pip install --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: up test install install-dev chromium web worker migrate bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP_DIR)/.installed-base: requirements/base.txt pyproject.toml | $(PY)
	$(PIP) -r requirements/base.txt
	$(PIP) --no-deps -e .
	touch $@

$(STAMP_DIR)/.installed-dev: requirements/dev.txt requirements/ml.txt $(STAMP_DIR)/.installed-base
	$(PIP) -r requirements/dev.txt
	# ultralytics pulls opencv-python over opencv-contrib (same cv2/ folder): put contrib back.
	$(PIP) --force-reinstall --no-deps $$(grep '^opencv-contrib-python-headless==' requirements/base.txt)
	touch $@

$(STAMP_DIR)/.installed-ml: requirements/ml.txt $(STAMP_DIR)/.installed-base
	$(PIP) -r requirements/ml.txt
	$(PIP) --force-reinstall --no-deps $$(grep '^opencv-contrib-python-headless==' requirements/base.txt)
	touch $@

install: $(STAMP_DIR)/.installed-base $(if $(WITH_ML),$(STAMP_DIR)/.installed-ml)
install-dev: $(STAMP_DIR)/.installed-dev

# Debian's Chromium for the browser tests (Playwright drives it; browsers are never downloaded by a tool).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

up: install
	$(PY) -m src.cli up

web: install
	$(PY) -m src.cli web

worker: install
	$(PY) -m src.cli worker

migrate: install
	$(PY) -m src.cli migrate

# Test processes (pytest-xdist; 0 runs everything in this one): most tests wait on a browser,
# a worker or a server as much as they compute, so two halve the suite's time on two cores.
PYTEST_WORKERS ?= 2

test: install-dev chromium
	@$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest: no tests were collected (exit 5): failing"; fi; exit $$status

bench: install-dev
	$(PY) bench/propagation.py
	$(PY) bench/review_efficiency.py

clean:
	rm -rf $(VENV) .pytest_cache
