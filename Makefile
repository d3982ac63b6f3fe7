# The habits: `make run` starts statehq, `make test` proves it, `make lint`, `make bench`.
# Every target creates .venv and installs the package (with dev extras) when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Until the service lands (issue 5), `make run` is the terminal chat with the credex bot:
# demo members seeded, you chatting as PHONE (a newcomer by default).
PHONE ?= 263770000001

run: $(STAMP)
	@$(BIN)/statehq ledger seed
	$(BIN)/statehq chat --as $(PHONE)

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

bench: $(STAMP)
	$(BIN)/statehq bench --output docs/benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
