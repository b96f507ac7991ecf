# Partner Console. `make run` serves the demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app console
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_PARTICIPANTS ?= 5000
STAMP := $(VENV)/.installed-stamp

.PHONY: install oidc-provider run test test-sqlite test-postgresql bench lint messages clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# panva's oidc-provider, the identity provider the PKCE tests run (needs Node 20+ and npm).
OIDC_PROVIDER := tests/oidc_provider
oidc-provider:
	@if command -v npm >/dev/null 2>&1; then \
		test -d $(OIDC_PROVIDER)/node_modules/oidc-provider || npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is not installed: the tests that need panva's oidc-provider will be skipped."; \
	fi

run: install
	$(FLASK) db upgrade
	$(FLASK) demo seed --if-empty --participants $(DEMO_PARTICIPANTS)
	@if [ "$$CONSOLE_ENV" = "production" ]; then \
		exec $(BIN)/gunicorn --bind $(HOST):$(PORT) --workers $${WORKERS:-2} --access-logfile - wsgi:app; \
	else \
		exec $(FLASK) run --host $(HOST) --port $(PORT); \
	fi

# The suite runs on SQLite and on PostgreSQL (when a server answers at 127.0.0.1:5432).
# The two runs go side by side; the PostgreSQL one, which mostly waits on round trips
# to the server, in two workers (a database each). Its output follows the SQLite
# run's, and either failing fails the target.
PG_LOG := .pytest-postgresql.log
PG_WORKERS ?= 2
test: install oidc-provider
	@if $(BIN)/python -c "from tests.databases import postgres_reachable as r; raise SystemExit(0 if r() else 1)"; then \
		$(BIN)/pytest --database postgresql -n $(PG_WORKERS) --dist loadfile $(PYTEST_ARGS) > $(PG_LOG) 2>&1 & pg=$$!; \
		echo "== SQLite (PostgreSQL runs alongside; its output follows) =="; \
		$(BIN)/pytest --database sqlite $(PYTEST_ARGS); sqlite=$$?; \
		wait $$pg; postgresql=$$?; \
		echo "== PostgreSQL =="; cat $(PG_LOG); rm -f $(PG_LOG); \
		test $$sqlite -eq 0 && test $$postgresql -eq 0; \
	elif [ -n "$$CONSOLE_REQUIRE_POSTGRES" ]; then \
		echo "PostgreSQL is required (CONSOLE_REQUIRE_POSTGRES) but not reachable." >&2; exit 1; \
	else \
		$(BIN)/pytest --database sqlite $(PYTEST_ARGS) && \
		echo "PostgreSQL is not reachable at 127.0.0.1:5432: the PostgreSQL run was skipped."; \
	fi

test-sqlite: install oidc-provider
	$(BIN)/pytest --database sqlite $(PYTEST_ARGS)

test-postgresql: install oidc-provider
	$(BIN)/pytest --database postgresql $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check console tests bench
	$(BIN)/ruff format --check console tests bench

messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot .

clean:
	rm -rf $(VENV) instance/console.db* .pytest_cache $(OIDC_PROVIDER)/node_modules
