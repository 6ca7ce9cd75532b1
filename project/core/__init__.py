"""The reusable tool: everything manage.py needs, and nothing of the application.

It reaches the application only through settings (TARGET_METADATA, ASGI_APPLICATION, COMMAND_PACKAGES,
BASE_DIR, MIGRATIONS_DIR); an import contract in pyproject.toml, checked by `make test`, keeps it so.
"""
