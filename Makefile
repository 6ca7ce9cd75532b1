# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run   - install into .venv, migrate the dev SQLite database, serve the app
#   make test  - install what the tests need (PostgreSQL, MariaDB, sqlite3 included) and run the suite
.PHONY: run install install-test test lint bench clean

PYTHON := .venv/bin/python

run: install
	$(PYTHON) manage.py migrate
	$(PYTHON) manage.py showmigrations

install:
	bash scripts/venv.sh

install-test:
	bash scripts/install-deps.sh
	bash scripts/venv.sh test

test: install-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .

clean:
	rm -rf .venv .pytest_cache .ruff_cache dev.sqlite3 *.egg-info
