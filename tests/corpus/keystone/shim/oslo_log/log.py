from logging import getLogger  # noqa: F401
