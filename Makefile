# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run   - install into .venv, migrate the dev SQLite database, serve the app
#   make test  - install what the tests need (PostgreSQL, MariaDB, sqlite3 included) and run the suite
.PHONY: run install install-test test test-failover lint bench fuzz clean docs docs-build

PYTHON := .venv/bin/python

run: install
	$(PYTHON) manage.py migrate
	$(PYTHON) manage.py showmigrations
	$(PYTHON) manage.py runserver

install:
	bash scripts/venv.sh

install-test:
	bash scripts/install-deps.sh
	bash scripts/venv.sh test

# Each test runs once: the demo's tests (tests/demo) here, the tool's tests (the rest of tests/) in a copy
# of the work tree with the demo removed (scripts/check_without_demo.sh). Both on PYTEST_WORKERS pytest-xdist
# workers; tests that share a costly fixture stay on one worker (--dist loadgroup, tests/conftest.py).
# A started project (scripts/start_project.py run here) has no tests/demo: then only the copy runs.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadgroup

test: install-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
	.venv/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --quiet --site-dir .cache/site
	if [ -d tests/demo ]; then $(PYTHON) -m pytest $(PYTEST_PARALLEL) tests/demo; fi
	bash scripts/check_without_demo.sh $(PYTEST_PARALLEL)

# The failover tests alone (tests/test_topology_patroni.py: etcd, two Patroni nodes, HAProxy; primaries killed
# mid-revision and under the app's workers; tests/test_topology_pgpool_failover.py: pgpool-II failing over by
# itself); `make test` runs them too.
test-failover: install-test
	$(PYTHON) -m pytest -m failover tests/test_topology_patroni.py tests/test_topology_pgpool_failover.py

# The benchmark suite (bench/run.py): real servers, peers side by side, writes bench/RESULTS.md + results.json.
bench: install-test
	bash scripts/venv.sh test,bench
	$(PYTHON) bench/run.py

# The model-evolution fuzzer's long run (tests/fuzz/, docs/testing.md): generated model histories through
# makemigrations and migrate on SQLite, MariaDB and PostgreSQL, then the failures by kind, each with the seed that
# replays it. FUZZ_ARGS overrides the run, e.g. `make fuzz FUZZ_ARGS="--seed 17 --steps 8 -v --keep"`.
FUZZ_ARGS ?= --seeds 50 --steps 8

fuzz: install-test
	$(PYTHON) -m tests.fuzz $(FUZZ_ARGS)

lint:
	$(PYTHON) -m ruff check .

# The manual (docs/, mkdocs.yml): `make docs` serves it on http://127.0.0.1:8001 (`make run` has 8000), rebuilt on
# every edit; `make docs-build` builds it strictly into .cache/site/ (git-ignored): a broken link or anchor fails it.
docs:
	bash scripts/venv.sh docs
	$(PYTHON) -m mkdocs serve --dev-addr 127.0.0.1:8001

docs-build:
	bash scripts/venv.sh docs
	$(PYTHON) -m mkdocs build --strict --site-dir .cache/site

clean:
	rm -rf .venv .pytest_cache .ruff_cache dev.sqlite3 *.egg-info
