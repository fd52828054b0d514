# Two commands on a fresh machine: `make serve` and `make test`; each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080

.PHONY: serve test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/.installed
	$(BIN)/baas-sandbox serve --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/pytest

# The contract run of CI against a sandbox it starts (URL=http://host:port to check a running one).
.PHONY: fuzz
fuzz: $(BIN)/.installed
	$(BIN)/baas-sandbox fuzz $(if $(URL),--url $(URL)) --report reports/junit-contract.xml

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
