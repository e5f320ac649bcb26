# MicroKWS: two commands on a fresh machine.
#   make flow   the whole lab on the synthetic dataset, headless
#   make test   every test (the grader's quick part and the kit's slow part)
# Both create .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: flow test test-quick bench clean-venv

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 13) else "MicroKWS needs Python 3.10 to 3.13, found %d.%d: run make PYTHON=python3.11 ..." % v)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

flow: $(STAMP)
	$(PY) run_flow.py

# The kit's own tests and the instructor's (reference solution, grading, release), slow ones too.
# The student tests are not run here: with the shipped stubs they fail, as they should; the
# instructor tests prove that they pass with the reference solution and fail with the stubs.
test: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow" tests/kit $(wildcard instructor/tests)

# Only the quick kit tests (no training, no conversion).
test-quick: $(STAMP)
	$(PY) -m pytest -q tests/kit

bench: $(STAMP)
	$(PY) benchmarks/data_pipeline.py

clean-venv:
	rm -rf $(VENV)
