"""The history on disk: Alembic's Config built from settings, the ScriptDirectory, and the revisions it names.

Everything here reads version files or alembic_version; nothing takes a lock or runs a plan (project.core.runner).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError as AlembicCommandError
from sqlalchemy import Connection

from project.core.conf import Settings, base_dir, migrations_dir
from project.core.errors import DUPLICATE_REVISION_WARNING, MigrationError, UnknownRevision
from project.core.history import sqlite_batch  # noqa: F401 - registers SQLite's batch copy (its docstring)


def install_warning_filters() -> None:
    """The tool's two warning filters, installed when this module loads (every command that reads revisions loads
    it); a function so that a test running commands in its own process can install them again inside its own
    `warnings.catch_warnings()`, as a new process has them."""
    # Two version files with one revision id: Alembic warns and keeps one of them, so the other revision silently
    # drops out of showmigrations and migrate. An error instead, wherever the revision map is built;
    # errors.describe makes it one line ("`check` names both files").
    warnings.filterwarnings("error", message=DUPLICATE_REVISION_WARNING, category=UserWarning)
    # Autogenerate writes `autoincrement=True` into the alter_column of a primary key whose type changes: MySQL
    # needs it (its MODIFY would drop AUTO_INCREMENT), the other engines ignore it, and Alembic warns there in the
    # middle of migrate's output. Silenced for every run and rendering of revisions.
    warnings.filterwarnings("ignore", message="autoincrement and existing_autoincrement only make sense for MySQL",
                            category=UserWarning)


install_warning_filters()


def alembic_config(
    settings: Settings | None = None,
    *,
    connection: Connection | None = None,
    dialect_name: str | None = None,
    stdout: TextIO | None = None,
    output_buffer: TextIO | None = None,
    **configure_options: Any,
) -> Config:
    """Alembic's Config for these settings; env.py reads everything it needs from `attributes`."""
    cfg = Config(str(base_dir(settings) / "alembic.ini"), stdout=stdout or sys.stdout, output_buffer=output_buffer)
    cfg.set_main_option("script_location", str(migrations_dir(settings)))
    if settings is not None:
        cfg.attributes["settings"] = settings
    if connection is not None:
        cfg.attributes["connection"] = connection
    if dialect_name is not None:
        cfg.attributes["dialect_name"] = dialect_name
    cfg.attributes["configure_options"] = configure_options
    return cfg


def script_directory(cfg: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(cfg or alembic_config())


def single_head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(
            f"The history has {len(heads)} heads ({', '.join(sorted(heads))}): migrate them all with "
            "`manage.py migrate heads` (or one branch with `migrate <label>@head`), or join them with "
            "`manage.py makemigrations --merge`."
        )
    if not heads:
        raise MigrationError("The history has no revisions yet: run `manage.py makemigrations` to write the first.")
    return heads[0]


def history_head(script: ScriptDirectory) -> str | None:
    """The history's one head, or None while it has no revision yet (a new project before its first
    makemigrations). Several heads are an error, as for single_head."""
    return single_head(script) if script.get_heads() else None


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in alembic_version; () on an empty database. Leaves no transaction open."""
    try:
        return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        if connection.in_transaction():
            connection.rollback()


def resolve_revision(script: ScriptDirectory, target: str) -> str | None:
    """An Alembic destination for `target`: head (the one head), heads (every head), <label or rev>@head (the
    head of that branch), zero/base (None), a revision id or a unique prefix of one."""
    if target in {"zero", "base"}:
        return None
    if target == "head":
        return history_head(script)  # an empty history's head is zero: nothing to apply, as in Django
    if target == "heads":
        heads = script.get_heads()
        return (heads[0] if heads else None) if len(heads) <= 1 else "heads"
    if target.endswith("@head"):
        try:
            found = script.get_revisions(target)
        except AlembicCommandError as exc:
            raise MigrationError(f"Unknown branch in '{target}': {exc}. `manage.py showmigrations` lists the "
                                 "revisions and their branch labels.") from None
        return found[0].revision if len(found) == 1 else target
    exact = lookup(script, target)
    if exact is not None and exact.revision == target:
        # A full id is a dict lookup: /health/ready resolves the head on every request.
        return target
    ids = [rev.revision for rev in script.walk_revisions()]
    matches = sorted(i for i in ids if i.startswith(target))
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise MigrationError(f"Ambiguous revision prefix '{target}': it matches {shown}. Give more characters.")
    raise MigrationError(f"Unknown revision '{target}'. `manage.py showmigrations` lists the revisions.")


def check_known(script: ScriptDirectory, heads: tuple[str, ...]) -> None:
    """UnknownRevision when the database records a revision that no version file defines.

    Every command that reads the current revision calls this (or make_plan, which does) before
    walking the history from it, so all of them say it in the same one line.
    """
    for head in heads:
        if lookup(script, head) is None:
            raise UnknownRevision(head)


def lookup(script: ScriptDirectory, rev: str) -> Script | None:
    try:
        return script.get_revision(rev)
    except AlembicCommandError:
        return None




def upgrade_or_downgrade(cfg: Config, script: ScriptDirectory, target: str, forwards: bool, *,
                         as_sql: bool = False, starting_rev: str | None = None) -> None:
    """alembic.command.upgrade/downgrade, on a ScriptDirectory whose revision map is already loaded (or a squashed
    view of the history); `as_sql` from `starting_rev` is their --sql mode (offline.py renders squashes with it)."""
    from alembic.runtime.environment import EnvironmentContext

    def revisions(rev: Any, _context: Any) -> Any:
        # The very calls alembic.command.upgrade/downgrade make: private, so pinned by
        # tests/test_errors_model.py::test_upgrade_revs_is_what_alembic_command_uses.
        return script._upgrade_revs(target, rev) if forwards else script._downgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=revisions, as_sql=as_sql, starting_rev=starting_rev,
                            destination_rev=target):
        script.run_env()
