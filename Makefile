# Two entry points for people (see README): `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	# open3d (perception) needs libusb-1.0 from Debian
	@ldconfig -p | grep -q libusb-1.0 || (apt-get update -qq && apt-get install -y -qq libusb-1.0-0) \
		|| sudo apt-get install -y -qq libusb-1.0-0
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of torch first (a local file on the CI machines); a bare `torch` could pull a multi-GB CUDA build.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[dev,ray]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/embodied run "put the red block in the green bowl" --out runs/demo --video

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q

bench: setup
	$(VENV)/bin/embodied bench sim

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
