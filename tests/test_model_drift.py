"""Models changed without makemigrations: `migrate` (at head) and `runserver` say so, as Django's migrate does,
instead of "No migrations to apply." and an app whose routes then answer 500. The answer is cached
(project.core.inspection.models): a change to the models after a cached "no changes" must still be seen."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from migcopy import MigrationsCopy, fixture_copy
from servers import ROOT, find_free_port, serve, wait_until_up

WARNING = "Your models have changes that are not yet reflected in a migration, and so won't be applied"
HINT = "Run 'manage.py makemigrations' to make new migrations, and then re-run 'manage.py migrate' to apply them."

# The fixture application's models, by a module of this test's own, so that the test can change them.
MODELS = "from fixture_app.models import Base  # noqa: F401\n"
BADGES = textwrap.dedent("""
    import sqlalchemy as sa

    sa.Table("badges", Base.metadata, sa.Column("id", sa.Integer(), primary_key=True),
             sa.Column("label", sa.String(40), nullable=False))
""")


def _copy(tmp_path: Path, target_metadata: str | None = "drift_models:Base.metadata") -> MigrationsCopy:
    copy = fixture_copy(tmp_path)
    (tmp_path / "drift_models.py").write_text(MODELS)
    settings = tmp_path / f"{copy.module}.py"
    settings.write_text(settings.read_text() + f"TARGET_METADATA = {target_metadata!r}\n")
    return copy


def _ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_migrate_and_runserver_say_the_models_have_unmigrated_changes(db_url: str, tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    applied = _ok(copy.manage("migrate", db_url=db_url))
    assert "Applying 0008" in applied and WARNING not in applied
    at_head = _ok(copy.manage("migrate", db_url=db_url))  # the answer "no changes" is cached now
    assert "No migrations to apply." in at_head and WARNING not in at_head

    # The models gain a table; no makemigrations.
    (tmp_path / "drift_models.py").write_text(MODELS + BADGES)
    drifted = _ok(copy.manage("migrate", db_url=db_url))
    assert "No migrations to apply." in drifted
    assert f"  {WARNING} (create table badges)." in drifted and f"  {HINT}" in drifted, drifted
    assert drifted.index("No migrations to apply.") < drifted.index(WARNING)
    assert WARNING not in _ok(copy.manage("migrate", "-v", "0", db_url=db_url))

    port = find_free_port()
    env = {**copy.env(db_url), "MIGRATE_ON_STARTUP": "0", "NO_COLOR": "1"}
    argv = [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"]
    with serve(argv, env, tmp_path / "runserver.log", port) as server:
        wait_until_up(server)
    assert f"{WARNING} (create table badges)." in server.log and HINT in server.log, server.log
    assert server.log.index(WARNING) < server.log.index("Starting server at")

    # makemigrations writes it, migrate applies it: nothing left to say.
    _ok(copy.manage("makemigrations", "-m", "badges"))
    migrated = _ok(copy.manage("migrate", db_url=db_url))
    assert "badges... OK" in migrated and WARNING not in migrated, migrated


def test_nothing_said_without_target_metadata_or_below_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    copy = _copy(tmp_path, target_metadata=None)
    (tmp_path / "drift_models.py").write_text(MODELS + BADGES)
    plain = _ok(copy.manage("migrate", db_url=url))
    assert WARNING not in plain and "Note:" not in plain

    with_models = _copy(tmp_path / "with_models")
    (tmp_path / "with_models" / "drift_models.py").write_text(MODELS + BADGES)
    # A target below head: the models describe head, not that revision.
    below = _ok(with_models.manage("migrate", "0005", db_url=f"sqlite:///{tmp_path / 'other.sqlite3'}"))
    assert "Applying 0005" in below and WARNING not in below


def test_models_that_cannot_be_compared_are_a_note_not_a_failure(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    (tmp_path / "drift_models.py").write_text(MODELS + "raise RuntimeError('models broken on purpose')\n")
    result = copy.manage("migrate", db_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    out = _ok(result)
    assert "Applying 0008" in out
    [note] = [line for line in out.splitlines() if "Note:" in line]
    assert "the models could not be compared with the migrations" in note and "models broken on purpose" in note


def test_models_changed_in_memory_are_compared_afresh(tmp_path: Path, monkeypatch) -> None:
    """call_command in a process that already imported the models (a test, an application): what is compared is
    the MetaData in memory, never an answer cached for the files."""
    from io import StringIO

    import sqlalchemy as sa
    from fixture_app.models import Base

    from project.core.management import call_command

    copy = fixture_copy(tmp_path)  # TARGET_METADATA: fixture_app.models, imported above
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SETTINGS_MODULE", copy.module)
    monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")

    def migrate() -> str:
        out = StringIO()
        call_command("migrate", stdout=out)
        return out.getvalue()

    assert WARNING not in migrate()
    labels = sa.Table("labels", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        assert f"{WARNING} (create table labels)." in migrate()
    finally:
        Base.metadata.remove(labels)
    assert WARNING not in migrate()


def test_models_the_migrate_itself_imported_are_answered_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    """A migrate that applies revisions imports the models through env.py, from their files: its warning then comes
    from the kept answer when nothing changed (no autogenerate against the replayed history after every deploy;
    issue 24), and is still the comparison's answer."""
    from io import StringIO

    from project.core.inspection import models
    from project.core.management import call_command

    copy = _copy(tmp_path, "drift_models:metadata")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SETTINGS_MODULE", copy.module)
    monkeypatch.setattr(models, "DRIFT_CACHE", tmp_path / "model-drift.json")
    compared: list[int] = []
    real = models.unmigrated_changes
    monkeypatch.setattr(models, "unmigrated_changes", lambda settings: compared.append(1) or real(settings))
    # The fixture's tables on a MetaData of the module's own (it is imported afresh by each migrate), plus a table
    # no migration creates.
    (tmp_path / "drift_models.py").write_text(textwrap.dedent("""
        import sqlalchemy as sa
        from fixture_app.models import Base

        metadata = sa.MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(metadata)
        Base = sa.orm.declarative_base(metadata=metadata)
    """) + BADGES)

    def migrate(database: str) -> str:
        monkeypatch.delitem(sys.modules, "drift_models", raising=False)  # not loaded before the command
        monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / database}")
        out = StringIO()
        call_command("migrate", stdout=out)
        assert "drift_models" in sys.modules  # env.py imported them while migrating
        return out.getvalue()

    assert f"{WARNING} (create table badges)." in migrate("first.sqlite3")
    assert compared == [1]
    assert f"{WARNING} (create table badges)." in migrate("second.sqlite3")
    assert compared == [1]  # the second fresh database's migrate used the kept answer
