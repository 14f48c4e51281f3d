# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System binaries the suite and the demo use, as binary:debian-package.
SYSTEM_DEPS := mosquitto:mosquitto snmpd:snmpd snmpget:snmp snmptrap:snmp chromium:chromium \
	chromedriver:chromium-driver gcc:gcc mkfs.ext4:e2fsprogs e2fsck:e2fsprogs
STAMP := $(VENV)/.installed

.PHONY: demo test test-long lint typecheck pytest sysdeps venv clean bench scenarios

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[agent,collector,sim,dev]'
	touch $(STAMP)

venv: $(STAMP)

sysdeps:
	@scripts/ensure-system-deps.sh $(SYSTEM_DEPS)

demo: venv sysdeps
	$(BIN)/shelterwatch demo

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

# Two workers (pytest-xdist): most tests wait on brokers and processes, so two cores do twice
# the work; the full counts (test-long) stay in one process.
pytest: venv sysdeps
	$(BIN)/pytest -m "not long" -n 2 --durations=10

test: lint typecheck pytest

# The full counts the issues ask for (kill campaigns, property tests, fuzzing).
test-long: venv sysdeps
	SHELTERWATCH_BUDGET=long $(BIN)/pytest

# The whole scenario library against the real agent, broker and collector (18 minutes measured:
# the broker outage alone lasts 10); `make test` runs the scenarios marked fast.
# Every benchmark in turn (about 40 minutes; scale needs PostgreSQL): figures in docs/benchmarks.md.
bench: venv sysdeps
	for b in outbox agent_footprint fleet api telemetry ingest scale; do \
		$(BIN)/python -m benchmarks.$$b || exit 1; done

scenarios: venv sysdeps
	$(BIN)/shelterwatch sim run simulators/scenarios/*.yaml --junit artifacts/scenarios/junit.xml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
