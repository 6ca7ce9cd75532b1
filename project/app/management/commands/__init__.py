"""One module per command, each with a `Command` class (see project.core.management.base)."""
