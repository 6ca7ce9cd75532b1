"""Command discovery, `execute_from_command_line` for manage.py and `call_command` for code.

Discovery lists module names without importing them, so `help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TextIO

from project.conf import ENVIRONMENT_VARIABLE
from project.management.base import BaseCommand, CommandError, OutputWrapper

COMMANDS_DIR = Path(__file__).parent / "commands"


def get_commands() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(COMMANDS_DIR)]) if not m.name.startswith("_"))


def load_command_class(name: str, **kwargs: Any) -> BaseCommand:
    module = importlib.import_module(f"project.management.commands.{name}")
    return module.Command(**kwargs)


def fetch_command(name: str, prog_name: str = "manage.py") -> BaseCommand:
    if name not in get_commands():
        hint = get_close_matches(name, get_commands(), n=1)
        suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
        raise CommandError(f"Unknown command: '{name}'.{suggestion} Type '{prog_name} help' for usage.", 2)
    return load_command_class(name)


def main_help_text(prog_name: str = "manage.py") -> str:
    lines = [
        f"Type '{prog_name} help <subcommand>' for help on a specific subcommand.",
        "",
        "Available subcommands:",
        "",
        *(f"    {name}" for name in get_commands()),
        "",
        "Options for every subcommand: --settings=dev|test|prod|dotted.path (default: $SETTINGS_MODULE or dev),",
        "--traceback, --verbosity {0,1,2,3}, --no-color.",
    ]
    return "\n".join(lines)


def execute_from_command_line(argv: list[str] | None = None) -> None:
    """The entry point of manage.py."""
    argv = list(sys.argv if argv is None else argv)
    prog_name = os.path.basename(argv[0]) if argv else "manage.py"

    # --settings may stand before or after the subcommand; export it so that every layer
    # (env.py under plain alembic, uvicorn's reloader, worker processes) sees the same choice.
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--settings")
    known, rest = pre.parse_known_args(argv[1:])
    if known.settings:
        os.environ[ENVIRONMENT_VARIABLE] = known.settings

    positionals = [a for a in rest if not a.startswith("-")]
    subcommand = positionals[0] if positionals else "help"

    if subcommand == "help":
        if len(positionals) > 1:
            _run(lambda: fetch_command(positionals[1], prog_name).print_help(prog_name, positionals[1]))
        else:
            sys.stdout.write(main_help_text(prog_name) + "\n")
        return
    if subcommand in {"--help", "-h"} or (not positionals and {"-h", "--help"} & set(rest)):
        sys.stdout.write(main_help_text(prog_name) + "\n")
        return

    command = _run(lambda: fetch_command(subcommand, prog_name))
    rest.remove(subcommand)
    # Keep --settings for the command's own parser too (it is validated there).
    extra = [f"--settings={known.settings}"] if known.settings else []
    # Right after the subcommand: anything after a `--` belongs to the command (dbshell's client).
    command.run_from_argv([prog_name, subcommand, *extra, *rest])


def _run(func: Any) -> Any:
    try:
        return func()
    except CommandError as exc:
        sys.stderr.write(f"CommandError: {exc}\n")
        sys.exit(exc.returncode)


def call_command(
    name: str, *args: str, stdout: TextIO | None = None, stderr: TextIO | None = None, **options: Any
) -> Any:
    """Run a command from Python, as Django's call_command does.

    `call_command("migrate", "zero", settings="prod", stdout=StringIO())`. Errors raise CommandError.
    """
    command = fetch_command(name) if isinstance(name, str) else name
    parser = command.create_parser("", name, called_from_command_line=False)
    defaults = vars(parser.parse_args([str(a) for a in args]))
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"Unknown option(s) for {name}: {', '.join(sorted(unknown))}")
    command.stdout = OutputWrapper(stdout or sys.stdout)
    command.stderr = OutputWrapper(stderr or sys.stderr)
    arg_options = {**defaults, **options}
    positional = arg_options.pop("args", ())
    return command.execute(*positional, **arg_options)
