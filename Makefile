# The project's front door. Every target installs what it needs, idempotently,
# into project-local folders (.venv, tools/js/node_modules); nothing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JS := tools/js
ANVIL := $(JS)/node_modules/.bin/anvil
PYTEST_ARGS ?=

.PHONY: demo incentives test bench lint typecheck setup native setup-js setup-browser setup-pg clean devnet help

help:
	@echo "make demo   - run the end-to-end demo (in-process chain, SQLite node store)"
	@echo "make devnet - anvil, contracts and every node role as processes on 127.0.0.1 (Ctrl-C stops)"
	@echo "make test   - install test dependencies and run the whole suite"
	@echo "make bench  - run benchmarks/ and write out/bench/*.json (ONLY=name for one)"
	@echo "make incentives - incentive simulation, honest vs adversarial (EPISODES=n), out/incentives/summary.json"
	@echo "make lint   - ruff, and mypy --strict on the package"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(ANVIL): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VENV)/.bench-installed: $(VENV)/.installed benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall py_lets_be_rational==1.0.0
	@touch $@

# The order book and the max-loss check compiled with mypyc into clearhouse/.native/ (git-ignored),
# rebuilt only when their sources changed; a missing or stale build means the pure Python modules run.
native: $(VENV)/.installed
	@$(PY) -c "from clearhouse._native import main; main()"

setup: $(VENV)/.installed native
setup-js: $(ANVIL)
# Debian's Chromium for the dashboard's browser tests (apt-get when missing).
setup-browser:
	@tools/chromium.sh >/dev/null

# Debian's PostgreSQL for the store's Postgres suite (apt-get when missing); the tests' session
# fixture starts a throw-away server with tools/pg.sh on 127.0.0.1 and removes it at the end.
setup-pg:
	@tools/pg.sh install

demo: setup
	$(VENV)/bin/clearhouse demo

devnet: setup setup-js
	$(VENV)/bin/clearhouse devnet

test: setup setup-js setup-browser setup-pg lint
	CLEARHOUSE_REQUIRE_NATIVE=1 $(PY) -m pytest $(PYTEST_ARGS)

EPISODES ?= 100
incentives: setup
	$(PY) -m clearhouse.sim.incentives --episodes $(EPISODES)

bench: setup $(VENV)/.bench-installed
	$(PY) -m benchmarks $(ONLY)

lint: setup
	$(VENV)/bin/ruff check clearhouse tests benchmarks
	$(VENV)/bin/mypy clearhouse

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
