# mcn-scp: the two Quick start commands (README) and a few helpers.
#   make run   - the node on embedded defaults (embedded PostgreSQL, console SMS sink)
#   make test  - installs what the tests need (venv, tshark, the test SMSC) and runs them all
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONFIG ?= conf/example.toml
PYTEST_ARGS ?=
# root installs system packages directly; a normal user goes through sudo when it is allowed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: run test install deps-test tshark smsc chromium lint typecheck bench clean inap-asn

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed

run: install
	@echo "mcn-scp: starting the SCP on $(CONFIG) (embedded PostgreSQL under $${MCN_HOME:-~/.local/share/mcn-scp}, console SMS);"
	@echo "         M3UA/TCP on 127.0.0.1:2905, web on http://127.0.0.1:8080/ (carrier API: /api/v1/docs); the demo replays a missed call against it. Ctrl-C stops it."
	$(VENV)/bin/mcn-scp run --config $(CONFIG) --demo

tshark:
	@command -v tshark >/dev/null || { \
	  echo "installing tshark (Wireshark's decoder, the tests' independent oracle)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get update -qq && \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | $(SUDO) debconf-set-selections && \
	  $(SUDO) apt-get install -y -qq tshark >/dev/null; }
	@tshark --version | head -1

chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing chromium and chromium-driver (the browser tests of the portal and console)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

smsc:
	@command -v npm >/dev/null || { \
	  echo "installing Node.js and npm (the test SMSC is the npm package smpp)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	@if [ ! -d tests/smppd/node_modules ]; then \
	  npm ci --prefix tests/smppd --no-audit --no-fund --loglevel=error; fi

deps-test: install tshark smsc chromium

test: deps-test lint
	$(PY) -m scp.codecs.asn.regen --check
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check scp tests bench
	$(VENV)/bin/ruff format --check scp tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy scp

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b; done

inap-asn: install
	$(PY) -m scp.codecs.asn.regen

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .import_linter_cache build *.egg-info tests/smppd/node_modules
