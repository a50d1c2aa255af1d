# Glassbox developer tasks: `make run` serves the app on http://localhost:8501,
# `make test` runs the whole test suite (unit, app and browser tests), `make demo-models`
# retrains the shipped demo models (models/demo_runs) from scratch, on the CPU with fixed seeds.

VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv run chromium test demo-models

venv: $(STAMP)

# The stamp is rebuilt whenever a requirements file changes.
$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -r requirements.txt
	$(PYTHON) -m pip install --no-deps -r requirements-nodeps.txt
	touch $@

run: $(STAMP)
	$(PYTHON) -m streamlit run app.py --server.port 8501 --server.headless true

# The browser tests drive Debian's /usr/bin/chromium (`playwright install` needs a download
# site we cannot reach). Without it they skip; under CI (CI=true) a failed install is an error.
chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else sudo="none"; fi; \
	if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1 \
	   && $$sudo apt-get update \
	   && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then exit 0; fi; \
	echo "*** Could not install chromium (needs apt-get, and root or sudo)." >&2; \
	if [ -n "$${CI:-}" ]; then echo "*** CI is set: the browser tests must run here." >&2; exit 1; fi; \
	echo "*** The browser tests will be skipped." >&2

test: $(STAMP) chromium
	$(PYTHON) -m pytest $(PYTEST_ARGS)

demo-models: $(STAMP)
	$(PYTHON) -m training.demos
