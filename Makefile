# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/monitor.yaml

.PHONY: run test quick lint types pytest deploy-check bench mutants clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so an unchanged pyproject does not reinstall on every call.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/news-monitor -c $(CONFIG) run

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks

types: $(VENV)/.installed-dev
	$(BIN)/mypy monitor

# Two pytest-xdist workers per core: many tests wait on a daemon process, a server or a timeout
# rather than compute, so two cores stay busy only with four workers (163 s -> 129 s for
# `make test` on two cores). worksteal moves queued tests from a busy worker to an idle one.
# `pytest FILE` stays serial.
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(WORKERS) --dist worksteal

# The inner loop: every test but the long end-to-end proofs (marked `slow`: the crash test, the
# scale-out proof, the deploy install), and a quarter of each property test's examples
# (tests/proptest.py); `make test` and CI run them all.
quick: $(VENV)/.installed-dev
	NEWS_MONITOR_QUICK=1 $(BIN)/pytest -n $(WORKERS) --dist worksteal -m "not slow"

# systemd-analyze verify of deploy/news-monitor.service and its security exposure (at most 1.2).
deploy-check: $(VENV)/.installed
	deploy/verify-unit

test: lint types pytest deploy-check

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks

# Mutation testing (not part of `test`): `make mutants`, or one module with
# `make mutants MODULE=monitor/normalize.py` (or a package: MODULE=monitor/rules). Results stay
# in mutants/; `$(BIN)/mutmut show NAME` prints one mutant's diff.
# TESTS="tests/test_fetch.py ..." makes a fast first pass against those test files only (see
# tests/mutation_profile.py); every mutant that survives it is then run again against all the
# tests that call it, so the verdicts are those of a full run.
# SKIP="[postgres" also leaves out of that first pass the tests whose id contains a word of it.
MODULE ?=
TESTS ?=
SKIP ?=
MUTANTS_PATTERN = $(subst /,.,$(patsubst %.py,%,$(patsubst %/,%,$(MODULE))))
# The tests run in mutants/, where `../shared` is not the folder beside the repository: name it.
NEWS_MONITOR_FIXTURES ?= $(abspath $(CURDIR)/../shared/fixtures)
mutants: export NEWS_MONITOR_FIXTURES := $(NEWS_MONITOR_FIXTURES)
mutants: $(VENV)/.installed-dev
	$(if $(TESTS),MUTANTS_TESTS="$(TESTS)" MUTANTS_SKIP="$(SKIP)") $(BIN)/mutmut run --max-children 2 $(if $(MODULE),"$(MUTANTS_PATTERN)*")
ifneq ($(TESTS),)
	names=$$($(BIN)/mutmut results --all true | awk -F': ' '$$2 == "survived" || $$2 == "no tests" \
	  { sub(/^ +/, "", $$1); print $$1 }' | grep -F "$(MUTANTS_PATTERN)."); \
	  if [ -n "$$names" ]; then $(BIN)/mutmut run --max-children 2 $$names; fi
endif
	$(BIN)/mutmut results --all true | awk -F': ' '{ m = $$1; sub(/^ +/, "", m); \
	  sub(/\.x(_|ǁ).*/, "", m); n[m]++; s[m, $$2]++ } \
	  END { for (m in n) { d = s[m, "killed"] + s[m, "timeout"]; \
	    printf "%-24s %5d mutants %5d killed %4d timeout %4d survived %4d no tests  score %5.1f%%\n", \
	    m, n[m], s[m, "killed"], s[m, "timeout"], s[m, "survived"], s[m, "no tests"], 100 * d / n[m] } }' | sort

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache mutants
