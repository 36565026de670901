# The two commands that matter: `make demo` and `make test`. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench venv clean messages

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11+ or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# One process: migrations, demo data, the control plane, the reference executor and a worker (standalone
# migrates and seeds by itself). SQLite in var/ unless DATABASE_URL says otherwise; Ctrl+C stops it.
demo: $(STAMP)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py standalone --port $${PORT:-8000}

test: $(STAMP)
	PYTHON=$(BIN)/python scripts/with-services.sh $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=true $(BIN)/mypy controlplane core rbac agents run_queue runs files gateway observability portal executor
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run

# Every benchmark under bench/ (each prints its figures; about 5 minutes in all on 2 cores). The other files
# there are their helpers: common.py (scratch database, processes), handlers.py (no-op and stamping queue
# handlers), naive_worker.py (queue.py's baseline), publisher.py (runs.py's event source).
BENCHES ?= bench/queue.py bench/rbac.py bench/executor_stream.py bench/runs.py bench/portal.py bench/gateway.py bench/files.py

bench: $(STAMP)
	PYTHON=$(BIN)/python scripts/with-services.sh sh -c 'for b in $(BENCHES); do echo "== $$b"; \
	  start=$$(date +%s); $(BIN)/python "$$b" || exit 1; echo "== $$b: $$(( $$(date +%s) - start )) s"; done'

# The translation catalogues (locale/zh_Hans): every marked string of the project, Python and templates
# (django.po) and the portal's scripts (djangojs.po); then the compiled .mo files, which are committed.
MESSAGES_IGNORE := --ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=docs --ignore=scripts \
	--ignore=executor --ignore=static/vendor --ignore=node_modules
messages: $(STAMP)
	DEBUG=true $(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)
	DEBUG=true $(BIN)/python manage.py makemessages -d djangojs -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)
	DEBUG=true $(BIN)/python manage.py compilemessages -l zh_Hans --ignore=.venv

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
