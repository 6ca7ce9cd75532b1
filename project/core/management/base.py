"""The command framework: BaseCommand, CommandError and styled output, after Django's."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from project.core.conf import ImproperlyConfigured, Settings, load_settings

# The error model lives in project.core.errors; commands import CommandError from here, as in Django.
from project.core.errors import CommandError

__all__ = ["BaseCommand", "CommandError", "CommandParser", "OutputWrapper"]


class CommandParser(argparse.ArgumentParser):
    """Raises CommandError instead of exiting when called from code (call_command)."""

    def __init__(self, *, called_from_command_line: bool = True, **kwargs: Any):
        self.called_from_command_line = called_from_command_line
        super().__init__(**kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"Error: {message}", returncode=2)


StyleFunc = Callable[[str], str]


class Style:
    """ANSI colours, or nothing when the stream is not a terminal or --no-color is given."""

    CODES = {"SUCCESS": "32;1", "ERROR": "31;1", "WARNING": "33;1", "NOTICE": "31", "HEADING": "1", "MUTED": "2"}
    SUCCESS: StyleFunc
    ERROR: StyleFunc
    WARNING: StyleFunc
    NOTICE: StyleFunc
    HEADING: StyleFunc
    MUTED: StyleFunc

    def __init__(self, enabled: bool):
        for name, code in self.CODES.items():
            setattr(self, name, (lambda text, c=code: f"\x1b[{c}m{text}\x1b[0m") if enabled else str)


class OutputWrapper:
    """Writes whole lines: `write(msg, style)` adds the newline unless `ending` says otherwise."""

    def __init__(self, out: TextIO):
        self._out = out

    def isatty(self) -> bool:
        return hasattr(self._out, "isatty") and self._out.isatty()

    def write(self, msg: str = "", style_func: Any = None, ending: str = "\n") -> None:
        if ending and not msg.endswith(ending):
            msg += ending
        try:
            self._out.write(style_func(msg) if style_func else msg)
            self._out.flush()
        except BrokenPipeError:
            # The reader went away (`migrate | head`): losing our output must not abort a migration
            # half-way, so the rest of the output goes nowhere and the work carries on.
            self._discard()

    def _discard(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


class BaseCommand:
    help = ""
    # Commands that need no settings (help, version) turn this off.
    requires_settings = True
    # SIGTERM stops the command as Ctrl-C does (one line, exit 143) instead of killing it outright, and a
    # second signal while it cleans up ends the process at once: for commands that write to the database.
    stops_on_sigterm = False

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None, no_color: bool = False):
        self.stdout = OutputWrapper(stdout or sys.stdout)
        self.stderr = OutputWrapper(stderr or sys.stderr)
        self.style = Style(not no_color and self.stdout.isatty() and "NO_COLOR" not in os.environ)
        self._settings: Settings | None = None

    # -- parser ---------------------------------------------------------------------------
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = CommandParser(
            prog=f"{os.path.basename(prog_name)} {subcommand}",
            description=self.help or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        parser.add_argument(
            "--settings",
            help="Settings module: dev, test, prod or a dotted path. Default: $SETTINGS_MODULE or dev.",
        )
        parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=1)
        parser.add_argument("--traceback", action="store_true", help="Show the full traceback on errors.")
        parser.add_argument("--no-color", action="store_true", help="Don't colorize the output.")
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        """Add the command's own arguments."""

    def print_help(self, prog_name: str, subcommand: str) -> None:
        self.create_parser(prog_name, subcommand).print_help()

    # -- running --------------------------------------------------------------------------
    def run_from_argv(self, argv: list[str]) -> None:
        """Parse argv[2:], run, and turn failures into one line and an exit status."""
        parser = self.create_parser(argv[0], argv[1])
        options = parser.parse_args(argv[2:])
        cmd_options = vars(options)
        args = cmd_options.pop("args", ())
        try:
            with _signals_interrupt(self.stops_on_sigterm):
                self.execute(*args, **cmd_options)
        except KeyboardInterrupt as exc:
            from project.core.errors import Interrupted

            self.stderr.write(str(exc) if isinstance(exc, Interrupted) else "Interrupted.")
            sys.exit(exc.returncode if isinstance(exc, Interrupted) else 130)
        except Exception as exc:
            if options.traceback:
                raise
            from project.core.errors import describe

            message, returncode = describe(exc, self._settings)
            self.stderr.write(f"CommandError: {message}", self.style.ERROR)
            sys.exit(returncode)

    def execute(self, *args: Any, **options: Any) -> Any:
        if options.get("no_color"):
            self.style = Style(False)
        if options.get("verbosity", 1) >= 2:
            # Library log lines (sqlglot's, Alembic's) reach stderr only when asked for.
            import logging

            logging.getLogger("sqlglot").setLevel(logging.DEBUG if options["verbosity"] >= 3 else logging.WARNING)
        if self.requires_settings:
            self._settings = load_settings(options.get("settings"))
        output = self.handle(*args, **options)
        if output:
            self.stdout.write(output)
        return output

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise ImproperlyConfigured(f"{type(self).__module__} runs without settings.")
        return self._settings

    def handle(self, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError("subclasses of BaseCommand must provide a handle() method")


@contextmanager
def _signals_interrupt(enabled: bool) -> Iterator[None]:
    """While the block runs: the first SIGINT or SIGTERM raises errors.Interrupted where the code is (the
    block's cleanup runs: locks released, a half-run revision reported), any further one exits at once,
    printing nothing (a cleanup that hangs on a dead server can still be stopped), until the process exits. Main
    thread only."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    from project.core.errors import Interrupted

    fired = []

    def interrupt(signum: int, _frame: Any) -> None:
        fired.append(signum)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda number, _f: os._exit(128 + number))
        name = signal.Signals(signum).name
        raise Interrupted(signal_name=name, returncode=128 + signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not fired:  # once stopped, a further signal still exits at once while the line is printed
            for sig, handler in previous.items():
                signal.signal(sig, handler)
