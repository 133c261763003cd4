# s3csi — set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh
# Debian 12 machine (as root) and then run; see README "Quick start" and DEVELOPERS.md.
#
# The virtual environment lives outside the checkout and outside /root, built from Debian's
# /usr/bin/python3, so that the unprivileged Mountpoint Pod process (uid 1000) can execute it.
# The package is installed non-editable for the same reason: the checkout may sit in a directory
# uid 1000 cannot enter.

SHELL := /bin/bash
VENV ?= /opt/s3csi/venv
PYTHON := $(VENV)/bin/python
SYSTEM_PYTHON ?= /usr/bin/python3
APT_PACKAGES := fuse3 libfuse3-dev pkg-config gcc python3-venv python3-dev util-linux
# Debian's npm only when no npm is there: a nodejs from elsewhere (NodeSource) brings its own, and
# conflicts with Debian's.
BENCH_APT_PACKAGES := s3fs rclone nodejs $(if $(shell command -v npm 2>/dev/null),,npm)
# The npm package s3rver (the benchmark's S3 server) goes here; `make bench BENCH_ARGS=--quick` for a fast check.
BENCH_NODE ?= /opt/s3csi/bench-node
PYTEST_ARGS ?=

.PHONY: all system venv install demo test lint unit bench clean-venv

all: test

# Debian packages, installed only when one is missing (apt-get update runs once, then).
system:
	@[ "$$(id -u)" = 0 ] || { echo "make: run as root (apt-get, FUSE mounts and uid switches need it)" >&2; exit 1; }
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: system
	@if [ ! -x $(PYTHON) ]; then \
		umask 022; mkdir -p $(dir $(VENV)); chmod 755 $(dir $(VENV)); \
		$(SYSTEM_PYTHON) -m venv $(VENV) && $(PYTHON) -m pip install -q --upgrade pip setuptools wheel; \
	fi

install: venv
	umask 022; $(PYTHON) -m pip install -q --upgrade '.[test]'

# ruff and mypy read the checkout, so the CSI stubs are generated there too (setup.py; git ignores them).
lint: install
	$(PYTHON) setup.py -q build_py --inplace
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/s3csi demo

bench:
	$(MAKE) install EXTRA_APT="$(BENCH_APT_PACKAGES)"
	@[ -f $(BENCH_NODE)/node_modules/s3rver/bin/s3rver.js ] || \
		{ umask 022; npm install --no-audit --no-fund --prefix $(BENCH_NODE) s3rver@3 >/dev/null; }
	S3RVER_JS=$(BENCH_NODE)/node_modules/s3rver/bin/s3rver.js $(PYTHON) -m bench $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
