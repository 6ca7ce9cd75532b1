"""The questions makemigrations asks, after Django's django/db/migrations/questioner.py.

Autogenerate sees only the difference between two schemas: a column gone and a column new look like a drop
and an add, and a NOT NULL column added to a table with rows cannot be filled by the database. Django asks the
person at the terminal; so do we. `MigrationQuestioner` is the answer when nobody can be asked (`--noinput`, no
TTY): no rename (drop + add, as Django does) and a refusal, naming both ways out, for a NOT NULL column with no
default. `InteractiveMigrationQuestioner` asks on the terminal.
"""

from __future__ import annotations

import ast
import sys
from typing import Any, TextIO

from project.core.errors import CommandError


class MigrationQuestioner:
    """Answers without asking: what `makemigrations --noinput` (or no TTY) does."""

    interactive = False

    def ask_rename(self, table: str, old: str, new: str, type_name: str) -> bool:
        """Was column table.old renamed to table.new? Unasked: no, so the file drops and adds."""
        return False

    def ask_rename_table(self, old: str, new: str) -> bool:
        return False

    def ask_rename_in_two_phases(self, table: str, old: str, new: str) -> bool:
        """A confirmed column rename: made in two phases that break no running code (True), or as a rename in
        one release (False). Unasked: never reached, nothing is renamed without a terminal."""
        return False

    def ask_not_null_addition(self, table: str, column: Any) -> str:
        """The one-off default (SQL literal text) for existing rows of a new NOT NULL column."""
        raise CommandError(
            f"Cannot add the NOT NULL column {table}.{column.name} without a default: the table's existing rows "
            "need a value. Give the column a server_default in the model, or run makemigrations on a terminal "
            "to give a one-off default."
        )

    def ask_not_null_alteration(self, table: str, column: Any) -> str | None:
        """The one-off value for the rows holding NULL in a nullable column made NOT NULL. Unasked: none, as
        Django's non-interactive questioner: such rows make the migration fail (and roll back) until a data
        migration fills them."""
        return None

    def ask_not_null_restore(self, table: str, column: Any) -> str | None:
        """The one-off default for the rows a downgrade finds when it adds back a dropped NOT NULL column.
        Unasked: the type's empty value (0, '', false...), None when the type has none (the downgrade then
        needs the table empty, as before)."""
        return empty_value(column.type)

    def ask_phase(self, why: str, mixed: bool) -> str | None:
        """The phase of a revision whose operations do not say it (`why`: what they do; `mixed`: they both
        expand and contract, which no phase suits). Unasked: none, so the revision runs as it would without
        phases (docs/phases.md)."""
        return None


class InteractiveMigrationQuestioner(MigrationQuestioner):
    """Asks on the terminal, with Django's wording where it fits."""

    interactive = True

    def __init__(self, prompt_output: Any, stdin: TextIO | None = None):
        self.prompt_output = prompt_output
        self.stdin = stdin or sys.stdin

    def ask_rename(self, table: str, old: str, new: str, type_name: str) -> bool:
        return self._boolean_input(f"Was {table}.{old} renamed to {table}.{new} (a {type_name})? [y/N]", False)

    def ask_rename_table(self, old: str, new: str) -> bool:
        return self._boolean_input(f"Was the table {old} renamed to {new}? [y/N]", False)

    def ask_rename_in_two_phases(self, table: str, old: str, new: str) -> bool:
        # One release first: what Django's RenameField does, and what a yes to the rename meant before.
        choice = self._choice_input(
            f"How should {table}.{old} become {table}.{new}?",
            ["In one release: rename it (phase contract). Code running before it breaks once migrate applies it, "
             "and code written after it needs it: stop the old instances, migrate, then start the new code",
             f"In two phases, breaking no running code: add {new} kept in step with {old} by triggers and "
             f"backfill it (expand: migrate applies it before the new code starts), then drop {old} (contract: "
             "migrate applies it once no old instance runs)"])
        return choice == 2

    def ask_not_null_addition(self, table: str, column: Any) -> str:
        choice = self._choice_input(
            f"It is impossible to add the NOT NULL column {table}.{column.name} without a default: "
            "the table's existing rows need a value.\nPlease select a fix:",
            ["Provide a one-off default now (existing rows get it)",
             "Quit, and let me add a server_default to the column in the model"],
        )
        if choice == 2:
            raise CommandError(f"Quit: give {table}.{column.name} a server_default in the model, then run "
                               "makemigrations again.")
        return self._ask_default(table, column)

    def ask_not_null_alteration(self, table: str, column: Any) -> str | None:
        choice = self._choice_input(
            f"It is impossible to change the nullable column {table}.{column.name} to NOT NULL without a default: "
            "rows holding NULL there need a value.\nPlease select a fix:",
            ["Provide a one-off default now (rows holding NULL get it)",
             "Ignore for now (rows holding NULL make the migration fail: fill them in a data migration first)",
             "Quit, and let me change the model"],
        )
        if choice == 3:
            raise CommandError(f"Quit: {table}.{column.name} stays as the model says; run makemigrations again "
                               "when it is as you want.")
        return self._ask_default(table, column) if choice == 1 else None

    def ask_not_null_restore(self, table: str, column: Any) -> str | None:
        empty = empty_value(column.type)
        choices = ["Provide a one-off default now (the rows get it when the downgrade runs)"]
        if empty is not None:
            choices.append(f"Use {empty!r}, the column type's empty value")
        choice = self._choice_input(
            f"The downgrade adds back the NOT NULL column {table}.{column.name}, which this revision drops: the "
            "rows it finds then need a value.\nPlease select a fix:", choices)
        return empty if choice == 2 else self._ask_default(table, column)

    def ask_phase(self, why: str, mixed: bool) -> str | None:
        none = "none: migrate applies it at once, as a revision without a phase"
        if mixed:  # old code needs what it drops, new code what it creates: no moment of a rollout suits it
            choice = self._choice_input(
                f"This revision breaks the code running before it and adds what the new code needs: {why}.\n"
                "Please select a fix:",
                [none, "Quit, and let me make the change in two revisions: the additions first (expand), then "
                       "the rest (contract)"])
            if choice == 2:
                raise CommandError("Quit: change the models for the additions, run makemigrations, then for the "
                                   "rest, and run makemigrations again.")
            return None
        choice = self._choice_input(
            f"Cannot tell whether this revision breaks the code still running before it: {why}.\n"
            "Please select its phase:",
            ["contract: migrate applies it once no live instance runs code older than it",
             "expand: migrate applies it at once, before the new code starts", none],
        )
        return ("contract", "expand", None)[choice - 1]

    # --- terminal input ---------------------------------------------------------------------------------------

    def _write(self, text: str, ending: str = "\n") -> None:
        self.prompt_output.write(text, ending=ending)

    def _input(self, prompt: str) -> str:
        self._write(prompt, ending="")
        line = self.stdin.readline()
        if not line:  # end of input: nobody is left to answer
            raise CommandError("makemigrations was asked a question, but the input ended.")
        return line.strip()

    def _boolean_input(self, question: str, default: bool) -> bool:
        answer = self._input(f"{question} ")
        if not answer:
            return default
        while answer[:1].lower() not in ("y", "n"):
            answer = self._input("Please answer yes or no: ")
        return answer[:1].lower() == "y"

    def _choice_input(self, question: str, choices: list[str]) -> int:
        self._write(question)
        for number, choice in enumerate(choices, 1):
            self._write(f" {number}) {choice}")
        answer = self._input("Select an option: ")
        while not (answer.isdigit() and 1 <= int(answer) <= len(choices)):
            answer = self._input("Please select a valid option: ")
        return int(answer)

    def _ask_default(self, table: str, column: Any) -> str:
        self._write("Please enter the default value as a Python literal (e.g. 0, 'draft', True, 1.5); "
                    "existing rows get it once, the column keeps no default.")
        self._write("Type 'exit' to exit this prompt")
        while True:
            code = self._input(">>> ")
            if code == "exit":
                raise CommandError(f"Quit: give {table}.{column.name} a server_default in the model, "
                                   "then run makemigrations again.")
            if not code:
                self._write("Please enter a value, or 'exit' (without quotes) to exit.")
                continue
            try:
                return sql_default(ast.literal_eval(code), column.type)
            except (ValueError, SyntaxError, TypeError) as error:
                self._write(f"Invalid input: {error}")


def sql_default(value: Any, type_: Any) -> str:
    """The server default text for `value`, the same on SQLite, MariaDB and PostgreSQL.

    Rendered as a quoted literal ('0', 'draft', '1'): each engine casts the quoted text to the column's type,
    which spares engine-specific spellings of booleans and numbers.
    Raises ValueError for a value the column cannot hold.
    """
    import sqlalchemy as sa

    if isinstance(type_, sa.Boolean):
        if value not in (True, False, 0, 1):
            raise ValueError(f"{value!r} is not a boolean (True or False)")
        return "1" if value else "0"
    if isinstance(type_, sa.Enum) and type_.enums and value not in type_.enums:
        raise ValueError(f"{value!r} is not one of {', '.join(map(repr, type_.enums))}")
    expected: tuple[type, ...] = ()
    if isinstance(type_, sa.Integer):
        expected = (int,)
    elif isinstance(type_, sa.Numeric):
        expected = (int, float)
    elif isinstance(type_, sa.String | sa.Date | sa.DateTime | sa.Time | sa.Uuid):
        expected = (str,)
    if isinstance(value, bool) or (expected and not isinstance(value, expected)) or value is None:
        wanted = " or ".join(t.__name__ for t in expected) or "a literal"
        raise ValueError(f"{value!r} does not fit a {type(type_).__name__} column (give {wanted})")
    return str(value)


def empty_value(type_: Any) -> str | None:
    """A value every row can take in a column of this type, as server default text: 0, '', false, the first
    enum value, the epoch; None for a type without one."""
    import sqlalchemy as sa

    from project.core.authoring.column_types import engine_type

    engine = engine_type(type_, "postgresql")  # a TypeDecorator as what it is, a variant as the server's type
    if isinstance(engine, sa.Enum):
        return str(engine.enums[0]) if engine.enums else None
    # Binary: '' is the empty bytea on PostgreSQL and an empty string MariaDB and SQLite take for a BLOB.
    for kind, value in ((sa.Boolean, "0"), (sa.Integer, "0"), (sa.Numeric, "0"), (sa.String, ""),
                        (sa.LargeBinary, ""),
                        (sa.DateTime, "1970-01-01 00:00:00"), (sa.Date, "1970-01-01"), (sa.Time, "00:00:00"),
                        (sa.Uuid, "00000000000000000000000000000000"), (sa.JSON, "null")):
        if isinstance(engine, kind):
            return value
    return None


def questioner_for(interactive: bool, prompt_output: Any, stdin: TextIO | None = None) -> MigrationQuestioner:
    """Ask only when asked to and a person can answer: stdin is a terminal."""
    stdin = stdin or sys.stdin
    if interactive and hasattr(stdin, "isatty") and stdin.isatty():
        return InteractiveMigrationQuestioner(prompt_output, stdin)
    return MigrationQuestioner()
