# Two commands on a fresh machine: `make serve` and `make test`; each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080

.PHONY: serve test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools' build-time advice ("Editable installation: be careful with folders...") is for
	@# its own users, noise in a first run's output: UserWarnings are silenced for the build.
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The sources byte-compiled, as pip does for an installed package (an editable install is not), so a
# start does not compile them each time where PYTHONDONTWRITEBYTECODE is set. Only stale files are
# rewritten; a stale or missing .pyc only costs time.
.PHONY: bytecode
bytecode: $(BIN)/.installed
	@$(BIN)/python -m compileall -q baas_sandbox handlers >/dev/null

serve: bytecode
	$(BIN)/baas-sandbox serve --port $(PORT)

# Two workers (pytest-xdist): the suite starts many servers and waits on real sockets, so it takes
# half the time on two cores (CI's machine has two). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(BIN)/.installed
	$(BIN)/pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS))

# The contract run of CI against a sandbox it starts (URL=http://host:port to check a running one).
.PHONY: fuzz
fuzz: $(BIN)/.installed
	$(BIN)/baas-sandbox fuzz $(if $(URL),--url $(URL)) --report reports/junit-contract.xml

# Side by side with Prism (installs wrk and Prism if missing); writes bench/RESULTS.md. About 35 min:
# the Redis section stores 1,000,000 keys through the store's own operations (--redis-fill-budget).
.PHONY: bench
bench: bytecode
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
