# s3csi — set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh
# Debian 12 machine (as root) and then run; see README "Quick start" and DEVELOPERS.md.
#
# The virtual environment lives outside the checkout and outside /root, built from Debian's
# /usr/bin/python3, so that the unprivileged Mountpoint Pod process (uid 1000) can execute it.
# The package is installed non-editable for the same reason: the checkout may sit in a directory
# uid 1000 cannot enter.
#
# Every Python package comes from requirements.lock (exact versions and sha256 hashes, transitive ones and
# the build requirements included) with hash checking; `make lock` rewrites it. See DEVELOPERS.md.

SHELL := /bin/bash
VENV ?= /opt/s3csi/venv
PYTHON := $(VENV)/bin/python
SYSTEM_PYTHON ?= /usr/bin/python3
APT_PACKAGES := fuse3 libfuse3-dev pkg-config gcc python3-venv python3-dev util-linux
# The everyday tools the file system tests run through a mount (tests/integration/test_fs_tools.py,
# test_fs_staged_writes.py), and the two other S3 file systems its interoperability tests read and write with.
APT_PACKAGES += tar rsync zip unzip git sqlite3 s3fs rclone
# Debian's npm only when no npm is there: a nodejs from elsewhere (NodeSource) brings its own, and
# conflicts with Debian's.
BENCH_APT_PACKAGES := s3fs rclone nodejs $(if $(shell command -v npm 2>/dev/null),,npm)
# Prometheus for `make dashboard-picture` (bench/dashboard.py runs its own server on a free port of 127.0.0.1,
# with its own configuration and storage; the Debian service, started or not, plays no part).
BENCH_APT_PACKAGES += prometheus
# `make dashboard-picture DASHBOARD_ARGS="--seconds 120"`: see `python -m bench.dashboard --help`.
DASHBOARD_ARGS ?=
# The npm package s3rver (the benchmark's S3 server) goes here; `make bench BENCH_ARGS=--quick` for a fast check.
BENCH_NODE ?= /opt/s3csi/bench-node
PYTEST_ARGS ?=
LOCK := requirements.lock
# What the image installs: the runtime dependencies, the build requirements and pip, at requirements.lock's
# versions (it constrains the resolution); written by `make lock` after requirements.lock.
RUNTIME_LOCK := requirements/runtime.lock
# The lock's own tool (uv), installed with hash checking from requirements/tools.lock.
TOOLS_VENV ?= /opt/s3csi/lock-tools
TOOLS_LOCK := requirements/tools.lock
# checkov (the chart's policy checks in tests/unit/test_helm_chart.py) pins boto3 and packaging far below what
# s3csi uses, so it lives in a venv of its own, built from requirements/checkov.lock with hash checking.
CHECKOV_VENV ?= /opt/s3csi/checkov
CHECKOV_LOCK := requirements/checkov.lock
# `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`): without it, the versions already locked stay.
LOCK_ARGS ?=

.PHONY: all system venv install demo test lint unit bench bench-setup dashboard-picture clean-venv lock checkov image

# `make image`: the container image (Containerfile), built without any image registry: each stage's base root
# file system comes from Debian's packages (mmdebstrap --variant=minbase), imported with `podman import`. The
# bases are kept (tarball in IMAGE_CACHE, image in podman's store) under a name derived from their package list,
# so a second `make image` rebuilds only what changed (the image it replaces is removed, not the build's cached
# layers). podman runs with runc (crun refuses hybrid cgroups) and lowered limits (root here may only lower
# them). See docs/install.md, "Build the image".
IMAGE_APT_PACKAGES := podman runc mmdebstrap uidmap
IMAGE_CACHE ?= /var/cache/s3csi-image
IMAGE_VERSION := $(shell $(SYSTEM_PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])' 2>/dev/null)
IMAGE ?= localhost/s3csi:$(IMAGE_VERSION)
DEBIAN_SUITE ?= bookworm
DEBIAN_MIRROR ?= http://deb.debian.org/debian
IMAGE_BASE_PACKAGES := python3,fuse3,libfuse3-3,ca-certificates,util-linux,mount
IMAGE_BUILD_BASE_PACKAGES := gcc,libc6-dev,libfuse3-dev,pkg-config,python3,python3-dev,python3-venv,ca-certificates
PODMAN_LIMITS := --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
# The host's CA bundle, mounted for pip during the build only (PyPI may be reached through a TLS-inspecting proxy).
IMAGE_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

all: test

# Debian packages, installed only when one is missing (apt-get update runs once, then).
system:
	@[ "$$(id -u)" = 0 ] || { echo "make: run as root (apt-get, FUSE mounts and uid switches need it)" >&2; exit 1; }
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The venv holds exactly the lock (pip itself included): it is built anew when it is missing or differs from
# the lock in any package (the lock changed, or something was installed by hand; the differences are printed),
# so that an old venv cannot go on passing with other versions.
venv: system
	@if ! [ -x $(PYTHON) ] || ! $(PYTHON) -m tests.lock_support $(LOCK); then \
		echo "building $(VENV) from $(LOCK)"; \
		umask 022; rm -rf $(VENV); mkdir -p $(dir $(VENV)); chmod 755 $(dir $(VENV)); \
		$(SYSTEM_PYTHON) -m venv $(VENV) \
		&& $(PYTHON) -m pip install -q --require-hashes --no-deps -r $(LOCK); \
	fi

# s3csi itself, built by the locked setuptools and grpcio-tools (no build isolation) without touching the
# dependencies; then the venv is checked against the lock, version for version (tests/lock_support.py).
install: venv
	umask 022; $(PYTHON) -m pip install -q --no-deps --no-build-isolation --force-reinstall .
	$(PYTHON) -m tests.lock_support $(LOCK)

# Rewrites requirements.lock from pyproject.toml: the runtime dependencies, the `test` and `demo` extras, the
# build requirements ([build-system] requires) and pip, resolved for $(SYSTEM_PYTHON) with every hash; then
# $(RUNTIME_LOCK), the same without the extras.
lock:
	@if [ ! -x $(TOOLS_VENV)/bin/uv ] || [ "$$(cat $(TOOLS_VENV)/tools-lock.sha256 2>/dev/null)" != "$$(sha256sum < $(TOOLS_LOCK))" ]; then \
		umask 022; rm -rf $(TOOLS_VENV); mkdir -p $(dir $(TOOLS_VENV)); \
		$(SYSTEM_PYTHON) -m venv $(TOOLS_VENV) \
		&& $(TOOLS_VENV)/bin/pip install -q --require-hashes --no-deps -r $(TOOLS_LOCK) \
		&& sha256sum < $(TOOLS_LOCK) > $(TOOLS_VENV)/tools-lock.sha256; \
	fi
	$(TOOLS_VENV)/bin/uv pip compile -q requirements/tools.in --generate-hashes --python $(SYSTEM_PYTHON) \
		--custom-compile-command "make lock" -o $(TOOLS_LOCK)
	$(TOOLS_VENV)/bin/uv pip compile -q requirements/checkov.in --generate-hashes --python $(SYSTEM_PYTHON) \
		--custom-compile-command "make lock" -o $(CHECKOV_LOCK)
	$(TOOLS_VENV)/bin/uv pip compile -q requirements/bench-aiobotocore.in --generate-hashes \
		--python $(SYSTEM_PYTHON) --custom-compile-command "make lock" -o requirements/bench-aiobotocore.lock
	{ $(SYSTEM_PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'; \
	  echo pip; } \
	| $(TOOLS_VENV)/bin/uv pip compile -q pyproject.toml - --extra test --extra demo --generate-hashes \
		--python $(SYSTEM_PYTHON) --custom-compile-command "make lock" $(LOCK_ARGS) -o $(LOCK)
	{ $(SYSTEM_PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'; \
	  echo pip; } \
	| $(TOOLS_VENV)/bin/uv pip compile -q pyproject.toml - -c $(LOCK) --generate-hashes \
		--python $(SYSTEM_PYTHON) --custom-compile-command "make lock" -o $(RUNTIME_LOCK)

# ruff and mypy read the checkout, so the CSI stubs are generated there too (setup.py; git ignores them).
lint: install
	$(PYTHON) setup.py -q build_py --inplace
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The real-container tests (tests/e2e/test_containers.py) build the image with `make image`, so `make test`
# installs podman, runc, mmdebstrap and uidmap too (about 1 min of apt on a fresh machine, then the first
# `make image` about 2 min; both are skipped or cached afterwards).
test: EXTRA_APT = $(IMAGE_APT_PACKAGES)
# Rebuilt whenever requirements/checkov.lock changes (its hash is kept beside it).
checkov: system
	@if [ ! -x $(CHECKOV_VENV)/bin/checkov ] || [ "$$(cat $(CHECKOV_VENV)/lock.sha256 2>/dev/null)" != "$$(sha256sum < $(CHECKOV_LOCK))" ]; then \
		echo "building $(CHECKOV_VENV) from $(CHECKOV_LOCK)"; \
		umask 022; rm -rf $(CHECKOV_VENV); mkdir -p $(dir $(CHECKOV_VENV)); \
		$(SYSTEM_PYTHON) -m venv $(CHECKOV_VENV) \
		&& $(CHECKOV_VENV)/bin/pip install -q --require-hashes --no-deps -r $(CHECKOV_LOCK) \
		&& sha256sum < $(CHECKOV_LOCK) > $(CHECKOV_VENV)/lock.sha256; \
	fi

test: lint checkov
	S3CSI_CHECKOV=$(CHECKOV_VENV)/bin/checkov $(VENV)/bin/pytest $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/s3csi demo

bench-setup:
	$(MAKE) install EXTRA_APT="$(BENCH_APT_PACKAGES)"
	@[ -f $(BENCH_NODE)/node_modules/s3rver/bin/s3rver.js ] || \
		{ umask 022; npm install --no-audit --no-fund --prefix $(BENCH_NODE) s3rver@3 >/dev/null; }

bench: bench-setup
	S3RVER_JS=$(BENCH_NODE)/node_modules/s3rver/bin/s3rver.js $(PYTHON) -m bench $(BENCH_ARGS)

# docs/observability-dashboard.svg: the Grafana dashboard drawn from a real run (bench/dashboard.py, about
# 2 minutes); not part of `make test`.
dashboard-picture: bench-setup
	S3RVER_JS=$(BENCH_NODE)/node_modules/s3rver/bin/s3rver.js $(PYTHON) -m bench.dashboard $(DASHBOARD_ARGS)

image: EXTRA_APT = $(IMAGE_APT_PACKAGES)
image: system
	@set -euo pipefail; umask 022; mkdir -p $(IMAGE_CACHE); \
	base() { \
		key=$$(echo "$(DEBIAN_SUITE) $(DEBIAN_MIRROR) minbase $$2" | sha256sum | cut -c1-12); \
		tag=localhost/s3csi-$$1:$(DEBIAN_SUITE)-$$key; tar=$(IMAGE_CACHE)/$$1-$$key.tar; \
		if ! podman image exists $$tag; then \
			if [ ! -f $$tar ]; then \
				echo "mmdebstrap $$1 ($$2)" >&2; rm -f $(IMAGE_CACHE)/partial-$$1.tar; \
				mmdebstrap -q --variant=minbase --include=$$2 $(DEBIAN_SUITE) $(IMAGE_CACHE)/partial-$$1.tar \
					$(DEBIAN_MIRROR) </dev/null >&2; \
				mv $(IMAGE_CACHE)/partial-$$1.tar $$tar; \
			fi; \
			podman import -q $$tar $$tag >/dev/null; \
		fi; \
		echo $$tag; \
	}; \
	build_base=$$(base build-base $(IMAGE_BUILD_BASE_PACKAGES)); \
	run_base=$$(base base $(IMAGE_BASE_PACKAGES)); \
	old=$$(podman image inspect --format '{{.Id}}' $(IMAGE) 2>/dev/null || true); \
	podman --runtime runc build -q $(PODMAN_LIMITS) --network host -f Containerfile \
		$(if $(wildcard $(IMAGE_CA_BUNDLE)),-v $(IMAGE_CA_BUNDLE):/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt) \
		--build-arg BUILD_BASE_IMAGE=$$build_base --build-arg BASE_IMAGE=$$run_base -t $(IMAGE) . >/dev/null; \
	if [ -n "$$old" ] && [ "$$old" != "$$(podman image inspect --format '{{.Id}}' $(IMAGE))" ]; then \
		podman rmi "$$old" >/dev/null 2>&1 || true; \
	fi; \
	podman --runtime runc run --rm $(PODMAN_LIMITS) --network none $(IMAGE) s3csi --version; \
	echo "$(IMAGE): $$(podman image inspect --format '{{.Size}}' $(IMAGE) | numfmt --to=si)B"

clean-venv:
	rm -rf $(VENV)
