# Two entry points for people (see README): `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
BROWSER_DEBS := chromium
ROS_DEBS := python3-rospy python3-rosmaster python3-sensor-msgs python3-geometry-msgs python3-std-msgs python3-tf2-msgs

.PHONY: setup system-deps demo test lint bench clean

setup: system-deps $(STAMP)

# Debian packages, checked on every run (a no-op when present): open3d (perception) needs libusb-1.0; the ROS
# bridge needs ROS 1 (rospy, a master, the message packages), about 6 MB; the web app's browser tests drive
# Debian's Chromium through Playwright (`playwright install` cannot download here).
system-deps:
	@ldconfig -p | grep -q libusb-1.0 || (apt-get update -qq && apt-get install -y -qq libusb-1.0-0) \
		|| sudo apt-get install -y -qq libusb-1.0-0
	@(command -v rosmaster >/dev/null && test -d /usr/lib/python3/dist-packages/tf2_msgs) || \
		((apt-get update -qq && apt-get install -y -qq --no-install-recommends $(ROS_DEBS)) \
		|| sudo apt-get install -y -qq --no-install-recommends $(ROS_DEBS))
	@test -x /usr/bin/chromium || ((apt-get update -qq && apt-get install -y -qq --no-install-recommends \
		$(BROWSER_DEBS)) || sudo apt-get install -y -qq --no-install-recommends $(BROWSER_DEBS))

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of torch first (a local file on the CI machines); a bare `torch` could pull a multi-GB CUDA build.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[dev,ray,ros2,web]"
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
