"""Command discovery, `execute_from_command_line` for manage.py and `call_command` for code.

Discovery lists module names without importing them, so `help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from typing import Any, TextIO

from project.core.conf import ENVIRONMENT_VARIABLE
from project.core.management.base import BaseCommand, CommandError, OutputWrapper

CORE_COMMANDS = "project.core.management.commands"


def get_commands() -> dict[str, str]:
    """{command name: package}: the tool's own commands, then those of the settings' COMMAND_PACKAGES
    (a later package's command of the same name wins, as an app's does in Django).

    Module names are listed without importing the modules, so `help` stays fast. Settings that
    cannot load (prod without its URL) still leave the tool's own commands and the shared settings'.
    """
    commands = {name: CORE_COMMANDS for name in _command_names(CORE_COMMANDS)}
    for package in _command_packages():
        commands.update((name, package) for name in _command_names(package))
    return dict(sorted(commands.items()))


def _command_names(package: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return []
    return [m.name for m in pkgutil.iter_modules(list(spec.submodule_search_locations)) if not m.name.startswith("_")]


def _command_packages() -> list[str]:
    from project.core.conf import ImproperlyConfigured, load_settings, shared_settings

    try:
        settings = load_settings()
    except ImproperlyConfigured:
        try:
            settings = shared_settings()
        except ImproperlyConfigured:
            return []
    return list(settings.get("COMMAND_PACKAGES", None) or [])


def fetch_command(name: str, prog_name: str = "manage.py") -> BaseCommand:
    commands = get_commands()
    if name not in commands:
        from difflib import get_close_matches  # only for a mistyped command

        hint = get_close_matches(name, list(commands), n=1)
        suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
        raise CommandError(f"Unknown command: '{name}'.{suggestion} Type '{prog_name} help' for usage.", 2)
    command: BaseCommand = importlib.import_module(f"{commands[name]}.{name}").Command()
    return command


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
    leading, subcommand, rest = split_argv(argv[1:])
    settings = _settings_option(leading + rest)
    if settings:
        os.environ[ENVIRONMENT_VARIABLE] = settings

    if subcommand in {None, "--help", "-h"}:
        sys.stdout.write(main_help_text(prog_name) + "\n")
        return
    if subcommand == "help":
        topics = [a for a in rest if not a.startswith("-")]
        if topics:
            _run(lambda: fetch_command(topics[0], prog_name).print_help(prog_name, topics[0]))
        else:
            sys.stdout.write(main_help_text(prog_name) + "\n")
        return

    command = _run(lambda: fetch_command(subcommand, prog_name))
    # Options given before the subcommand (`-v 2 migrate`) go to the command's own parser, after it.
    command.run_from_argv([prog_name, subcommand, *leading, *rest])


# Options every command takes, and whether each takes a value: they may stand before the subcommand.
GLOBAL_OPTIONS = {"--settings": True, "-v": True, "--verbosity": True, "--traceback": False, "--no-color": False}


def split_argv(args: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(global options before the subcommand, subcommand, everything after it).

    As Django, the subcommand is the first word; unlike Django, the options every command takes may
    come first (`manage.py -v 2 showmigrations`, `manage.py --settings prod migrate`).
    """
    leading: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in {"-h", "--help"} or not arg.startswith("-"):
            return leading, arg, args[i + 1:]
        # --name=value, or a short option with its value attached as argparse allows (-v2).
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if name not in GLOBAL_OPTIONS:
            raise_usage(f"Unknown option '{arg}' before the command: give a command first, "
                        "e.g. 'manage.py migrate " + arg + "'.")
        attached = "=" in arg if arg.startswith("--") else len(arg) > 2
        takes_value = GLOBAL_OPTIONS[name] and not attached
        if takes_value and i + 1 >= len(args):
            raise_usage(f"Option '{arg}' needs a value.")
        leading += args[i:i + 2] if takes_value else [arg]
        i += 2 if takes_value else 1
    return leading, None, []


def raise_usage(message: str) -> None:
    sys.stderr.write(f"CommandError: {message}\n")
    sys.exit(2)


def _settings_option(args: list[str]) -> str | None:
    """The value of --settings in `args`, up to a `--` (what follows belongs to dbshell's client)."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--settings" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--settings="):
            value = arg.split("=", 1)[1]
    return value


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
