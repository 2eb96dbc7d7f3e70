# Two commands for people: `make lab` (the main job) and `make test`.
# Each makes the virtual environment .venv if it is missing and installs what it needs there;
# a stamp file per target means a second run installs nothing unless pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := mosquitto mosquitto-clients tshark chromium chromium-driver iproute2 openssl
PYTEST_ARGS ?=
# The suite runs on more workers than cores (pytest-xdist, work stealing): a third of it
# sleeps on real clocks, so three workers per two cores fill the waits. The tests that judge
# real timers against a model carry the `timing` marker and run at a raised CPU priority
# (tests/conftest.py), so the CPU-bound tests beside them do not make them lose their races.
PYTEST_WORKERS ?= -n $(shell echo $$(( $$(nproc) * 3 / 2 ))) --dist worksteal
# Python caches compiled modules (__pycache__) unless PYTHONDONTWRITEBYTECODE is set, as it is
# on some machines (this one): then every subprocess of the suite (CLIs, brokers, kernels)
# compiles mqttsim again and pytest rewrites every test module's asserts on every run.
unexport PYTHONDONTWRITEBYTECODE

# What `make lab` opens: JupyterLab on the first notebook, in work/: the student's own copies
# of notebooks/ (made by mqttsim.lab.workspace: missing notebooks are copied, a copy is never
# overwritten; git ignores work/). So notebooks/ stays as committed and `make test`, which
# checks notebooks/, passes however the lab was used. It prints the URL to open (with
# its access token), which leads straight to 00-start-here. Extra options go in LAB_ARGS:
# `make lab LAB_ARGS=--no-browser` on a machine without a display,
# `LAB_ARGS="--no-browser --port 8889"`, ... As root (a container) JupyterLab refuses to start
# without --allow-root, so it is added then.
LAB_ARGS ?=
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
WORKSPACE := work
LAB_START := /lab/tree/00-start-here.ipynb
LAB_COMMAND = $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(WORKSPACE) \
	--LabApp.default_url=$(LAB_START) $(LAB_ROOT) $(LAB_ARGS)

.PHONY: lab test

lab: $(VENV)/lab.stamp
	$(PY) -m mqttsim.lab.workspace notebooks $(WORKSPACE)
	@echo "Starting JupyterLab on $(WORKSPACE)/00-start-here.ipynb; open the http://... URL it prints"
	@echo "(with its token). Stop it with Ctrl-C."
	$(LAB_COMMAND)

test: $(VENV)/test.stamp
	@$(debian_packages)
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

$(VENV)/lab.stamp: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[lab]'
	touch $@

$(VENV)/test.stamp: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[test]'
	touch $@

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
	  echo "mqttsim needs Python 3.10 or newer; '$(PYTHON)' is: $$($(PYTHON) --version 2>&1)."; \
	  echo "Install a newer Python, or name one: make PYTHON=python3.11 $(MAKECMDGOALS)"; \
	  exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  echo "Could not create $(VENV). On Debian/Ubuntu install the venv module first:"; \
	  echo "  sudo apt-get install python3-venv"; \
	  exit 1; }

# The Debian tools the network, interop and browser tests use: installed when we are root and
# they are missing; otherwise the command to run is printed, and the tests that need them skip
# (the browser test fails instead when CI is set: it must run there).
define debian_packages
missing=""; \
if command -v dpkg-query >/dev/null 2>&1; then \
  for pkg in $(DEB_PACKAGES); do \
    dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'install ok installed' \
      || missing="$$missing $$pkg"; \
  done; \
else \
  echo "No dpkg here: install $(DEB_PACKAGES) yourself, or the tests that need them skip."; \
fi; \
if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
  echo "Installing Debian packages:$$missing"; \
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$$missing; } \
    || echo "apt-get failed: the tests that need$$missing will skip."; \
elif [ -n "$$missing" ]; then \
  echo "Some tests need Debian packages that are missing:$$missing"; \
  echo "Install them with:"; \
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y$$missing"; \
  echo "Going on without them: the tests that need them will skip."; \
fi
endef
