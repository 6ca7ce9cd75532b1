"""makemigrations compares the models with the history replayed into scratch SQLite: no server needed.

Run on the fixture application (tests/fixture_app). Tests that write revisions work on a copy of its
history in tmp_path (fixture_copy), so the committed versions never change.
"""

from __future__ import annotations

import re
import sys
from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FIXTURE_SETTINGS, TESTS_DIR, run_fixture_manage
from fixture_app.models import Base
from migcopy import MigrationsCopy, fixture_copy

from project.core.management import call_command
from project.core.management.base import CommandError

FIXTURE_VERSIONS = TESTS_DIR / "fixture_app" / "migrations" / "versions"


def test_committed_models_match_history() -> None:
    # A URL that cannot connect: makemigrations must not need the settings' database.
    result = run_fixture_manage("makemigrations", "--check", env={"DEV_DATABASE_URL": "sqlite:////no/such/dir/x.db"},
                                in_process=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No changes detected"


@pytest.fixture
def changed_models():
    """Models with a new table and a new column, restored afterwards."""
    tags = sa.Table(
        "tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.String(40))
    )
    projects = Base.metadata.tables["projects"]
    nickname = sa.Column("nickname", sa.String(30), nullable=True)
    projects.append_column(nickname)
    yield
    Base.metadata.remove(tags)
    projects._columns.remove(nickname)


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationsCopy:
    """A copy of the fixture history whose settings module call_command can import."""
    copy = fixture_copy(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # Loading settings reloads only the named module: import its base afresh, so it reads this test's URL.
    monkeypatch.delitem(sys.modules, "fixture_app.settings.dev", raising=False)
    monkeypatch.setenv("SETTINGS_MODULE", copy.module)
    monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    return copy


def test_check_fails_after_a_model_change(changed_models, monkeypatch) -> None:
    monkeypatch.setenv("SETTINGS_MODULE", FIXTURE_SETTINGS)
    with pytest.raises(CommandError, match="create table tags; add column projects.nickname") as excinfo:
        call_command("makemigrations", check=True, stdout=StringIO())
    assert excinfo.value.returncode == 1


def test_dry_run_renders_batch_operations(changed_models, monkeypatch) -> None:
    monkeypatch.setenv("SETTINGS_MODULE", FIXTURE_SETTINGS)
    before = sorted(FIXTURE_VERSIONS.iterdir())
    out = StringIO()
    call_command("makemigrations", dry_run=True, stdout=out)
    text = out.getvalue()
    assert re.search(r"Would write 0009_[0-9a-f]{6}: create table tags and add column projects nickname", text)
    assert "op.create_table('tags'" in text
    assert "with op.batch_alter_table('projects', schema=None) as batch_op:" in text
    assert "batch_op.add_column(sa.Column('nickname', sa.String(length=30), nullable=True))" in text
    assert sorted(FIXTURE_VERSIONS.iterdir()) == before, "--dry-run wrote a file"


def test_writes_a_revision_that_applies(changed_models, copy) -> None:
    out = StringIO()
    call_command("makemigrations", message="add tags", stdout=out)
    written = sorted(copy.versions.glob("0009_*.py"))
    # The id (project.core.authoring.revision_ids): the next number, and a suffix unique to this revision.
    [(revision, _)] = re.findall(r"  - (0009_[0-9a-f]{6}) (add tags)", out.getvalue())
    assert [p.name for p in written] == [f"{revision}_add_tags.py"]
    source = written[0].read_text()
    assert f"revision: str = '{revision}'" in source
    assert "down_revision: str | Sequence[str] | None = '0008'" in source
    # The new file applies (on the copy's database, tmp_path/db.sqlite3) and the models then match.
    call_command("migrate", stdout=StringIO())
    call_command("makemigrations", check=True, stdout=StringIO())


def test_empty_revision(copy) -> None:
    out = StringIO()
    call_command("makemigrations", empty=True, message="fill by hand", stdout=out)
    [revision] = re.findall(r"  - (0009_[0-9a-f]{6}) fill by hand", out.getvalue())
    source = (copy.versions / f"{revision}_fill_by_hand.py").read_text()
    assert "def upgrade() -> None:\n    pass" in source


# --- a new project: no revision at all yet -----------------------------------------------------------


@pytest.fixture
def empty_history(copy) -> MigrationsCopy:
    for path in copy.versions.glob("*.py"):
        path.unlink()
    return copy


def test_first_revision_on_an_empty_history(empty_history) -> None:
    versions = empty_history.versions
    checked = StringIO()
    with pytest.raises(CommandError, match="create table projects; create table tasks"):
        call_command("makemigrations", check=True, stdout=checked)

    out = StringIO()
    call_command("makemigrations", message="init", stdout=out)
    [revision] = re.findall(r"  - (0001_[0-9a-f]{6}) init", out.getvalue())
    [written] = versions.glob("*.py")
    assert written.name == f"{revision}_init.py"
    source = written.read_text()
    assert "down_revision: str | Sequence[str] | None = None" in source
    assert "op.create_table('projects'" in source and "op.create_table('tasks'" in source
    assert "op.drop_table('tasks')" in source

    # The models now match, `check` accepts the first revision, and it applies.
    call_command("makemigrations", check=True, stdout=StringIO())
    ok = StringIO()
    call_command("check", stdout=ok)
    assert ok.getvalue().strip() == "System check identified no issues."
    applied = StringIO()
    call_command("migrate", stdout=applied)
    assert f"Applying {revision} init... OK" in applied.getvalue()


def test_empty_flag_on_an_empty_history_then_the_models(empty_history) -> None:
    out = StringIO()
    call_command("makemigrations", empty=True, message="start", stdout=out)
    [start] = empty_history.versions.glob("0001_*_start.py")
    call_command("makemigrations", message="init", stdout=out)
    [init] = empty_history.versions.glob("0002_*_init.py")
    assert f"down_revision: str | Sequence[str] | None = '{start.name.removesuffix('_start.py')}'" in init.read_text()
    # A revision that does nothing either way is not a missing downgrade.
    checked = StringIO()
    call_command("check", stdout=checked)
    assert checked.getvalue().strip() == "System check identified no issues."


def test_migrate_on_an_empty_history_has_nothing_to_do(empty_history, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = empty_history.manage("migrate", db_url=url, in_process=True)
    assert result.returncode == 0, result.stderr
    assert "No migrations to apply." in result.stdout
    shown = empty_history.manage("showmigrations", db_url=url, in_process=True)
    assert shown.returncode == 0 and "(no migrations)" in shown.stdout

