"""Settings of the fixture application, one module per environment as in the project's settings/.

Self-contained on purpose: the tool's tests must not change meaning when a project edits its own
settings. `--settings=fixture_app.settings.dev` (tests/ on PYTHONPATH); the URLs come from the same
variables as the project's (DEV_DATABASE_URL, TEST_DATABASE_URL, PROD_DATABASE_URL).
"""
