# The habits: `make run` starts statehq, `make test` proves it, `make lint`, `make bench`.
# Every target creates .venv and installs the package (with dev extras) when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench clean redis7 chromium

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,aiogram]'
	@touch $(STAMP)

# `make run`: the demo members seeded, then the service on http://127.0.0.1:8000
# (STATEHQ_HOST/STATEHQ_PORT to change). Chat with the bot from a second terminal with
# `.venv/bin/statehq chat --as 263770000001`, or point a WhatsApp number's webhook at it.
run: $(STAMP)
	@$(BIN)/statehq ledger seed
	@mkdir -p .statehq && test -s .statehq/admin-token || \
	  $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(18))" > .statehq/admin-token
	@echo "admin token (the page asks for it once): $$(cat .statehq/admin-token)"
	STATEHQ_ADMIN_TOKEN=$${STATEHQ_ADMIN_TOKEN:-$$(cat .statehq/admin-token)} $(BIN)/statehq serve

# The suites run on every topology: the embedded Valkey, Debian's Redis 7, a Valkey
# Cluster and Sentinel (started by the tests on loopback). Redis 7 comes from Debian's
# redis-server package, installed here when missing (the package's own service is not
# used). STATEHQ_TEST_TOPOLOGIES=embedded narrows a quick local run. Two test processes:
# most tests wait on servers, so two share the 2-core CI machine well.
test: $(STAMP) lint redis7 chromium
	$(BIN)/pytest -n 2

redis7:
	@command -v redis-server >/dev/null || { \
	  echo "installing Debian's redis-server (Redis 7) for the test topologies"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# The page's tests drive Debian's chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the page's tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests examples
	$(BIN)/ruff format src tests examples

# `make bench`: statehq beside aiogram, pywa and the seed design, every figure measured in
# one run on one private Valkey (a few minutes on 2 cores): docs/benchmarks/results.json,
# README.md and contention.png, and the headline table in this README. The peers come
# with the bench extra, installed here only: `make test` does not need them.
BENCH_STAMP := $(VENV)/.bench-installed-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/statehq bench --output docs/benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
