# Two commands for people: `make lab` (the main job) and `make test`.
# Each makes the virtual environment .venv if it is missing and installs what it needs there;
# a stamp file per target means a second run installs nothing unless pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := mosquitto mosquitto-clients tshark
PYTEST_ARGS ?=

# What `make lab` opens. The notebooks issue turns this into:
# LAB_COMMAND = $(VENV)/bin/jupyter lab notebooks/00-start-here.ipynb
LAB_COMMAND = $(VENV)/bin/mqttsim demo

.PHONY: lab test

lab: $(VENV)/lab.stamp
	$(LAB_COMMAND)

test: $(VENV)/test.stamp
	@$(debian_packages)
	$(PY) -m pytest $(PYTEST_ARGS)

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

# The Debian tools the network and interop tests use: installed when we are root and they are
# missing; otherwise the command to run is printed, and the tests that need them skip.
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
