#!/usr/bin/env python
"""Management commands for this project, as Django's manage.py: `python manage.py help`."""

import os
import sys


def main() -> None:
    os.environ.setdefault("SETTINGS_MODULE", "dev")
    from project.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
