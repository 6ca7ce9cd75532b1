"""makemigrations compares the models with the history replayed into scratch SQLite: no server needed."""

from __future__ import annotations

from io import StringIO

import pytest
import sqlalchemy as sa
from conftest import ROOT, run_manage

from project.app.models import Base
from project.core.management import call_command
from project.core.management.base import CommandError


def test_committed_models_match_history() -> None:
    # A URL that cannot connect: makemigrations must not need the settings' database.
    result = run_manage("makemigrations", "--check", env={"DEV_DATABASE_URL": "sqlite:////no/such/dir/x.db"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No changes detected"


@pytest.fixture
def changed_models():
    """Models with a new table and a new column, restored afterwards."""
    tags = sa.Table(
        "tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.String(40))
    )
    users = Base.metadata.tables["users"]
    nickname = sa.Column("nickname", sa.String(30), nullable=True)
    users.append_column(nickname)
    yield
    Base.metadata.remove(tags)
    users._columns.remove(nickname)


def test_check_fails_after_a_model_change(changed_models) -> None:
    with pytest.raises(CommandError, match="create table tags; add column users.nickname") as excinfo:
        call_command("makemigrations", check=True, stdout=StringIO())
    assert excinfo.value.returncode == 1


def test_dry_run_renders_batch_operations(changed_models) -> None:
    before = sorted((ROOT / "migrations" / "versions").iterdir())
    out = StringIO()
    call_command("makemigrations", dry_run=True, stdout=out)
    text = out.getvalue()
    assert "Would write 0009: create table tags and add column users nickname" in text
    assert "op.create_table('tags'" in text
    assert "with op.batch_alter_table('users', schema=None) as batch_op:" in text
    assert "batch_op.add_column(sa.Column('nickname', sa.String(length=30), nullable=True))" in text
    assert sorted((ROOT / "migrations" / "versions").iterdir()) == before, "--dry-run wrote a file"


def test_writes_a_revision_that_applies(changed_models, tmp_path, monkeypatch) -> None:
    versions = ROOT / "migrations" / "versions"
    out = StringIO()
    try:
        call_command("makemigrations", message="add tags", stdout=out)
        written = sorted(versions.glob("0009_*.py"))
        assert [p.name for p in written] == ["0009_add_tags.py"]
        source = written[0].read_text()
        assert "down_revision: str | Sequence[str] | None = '0008'" in source
        # The new file applies and the models then match.
        monkeypatch.setenv("DEV_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
        call_command("migrate", settings="dev", stdout=StringIO())
        call_command("makemigrations", check=True, stdout=StringIO())
    finally:
        for path in versions.glob("0009_*.py"):
            path.unlink()


def test_empty_revision(tmp_path) -> None:
    versions = ROOT / "migrations" / "versions"
    try:
        out = StringIO()
        call_command("makemigrations", empty=True, message="fill by hand", stdout=out)
        assert "0009 fill by hand" in out.getvalue()
        source = (versions / "0009_fill_by_hand.py").read_text()
        assert "def upgrade() -> None:\n    pass" in source
    finally:
        for path in versions.glob("0009_*.py"):
            path.unlink()
