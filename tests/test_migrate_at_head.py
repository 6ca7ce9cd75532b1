"""A migrate with nothing to apply, answered from the cached facts of the version files without importing
Alembic (runner.at_head, issue 24), and everything at head that must still go through the full migrate: a log
to heal, a checksum mismatch, the fleet table missing, a revision pending. Real databases, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT
from migcopy import fixture_copy, one_clean_line
from test_applied_log import execute, heads_of, log_rows

from project.core.bookkeeping import FLEET_TABLE
from project.core.db import create_engine_for
from project.core.history import applied_log, revision_facts
from project.core.runner import at_head


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's revision-map cache (the project's .cache is rewritten by parallel tests' migrates)."""
    folder = tmp_path / ".cache"
    monkeypatch.setattr(revision_facts, "cache_dir", lambda settings=None: folder)
    return folder


def fast(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record what runner.at_head.migrate gave for each migrate: an AtHead when it answered, else the full
    migrate's Plan (or what it raised)."""
    answers: list[object] = []
    real = at_head.migrate

    def recording(*args, **kwargs):
        try:
            answers.append(real(*args, **kwargs))
        except Exception as exc:
            answers.append(exc)
            raise
        return answers[-1]

    monkeypatch.setattr(at_head, "migrate", recording)
    return answers


def taken(answer: object) -> bool:
    return isinstance(answer, at_head.AtHead)


def test_at_head_prints_what_the_full_migrate_prints(db_url: str, tmp_path: Path, own_cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    copy = fixture_copy(tmp_path)
    answers = fast(monkeypatch)
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert len(answers) == 1 and not taken(answers[0])  # an empty database: the full migrate, which keeps
    # the facts
    (own_cache / revision_facts.REVISION_MAP_CACHE).unlink()
    full = copy.manage("migrate", db_url=db_url, in_process=True)
    assert full.returncode == 0 and not taken(answers[-1])  # no facts kept: the full migrate, at head
    assert "  Target: head (0008), currently at 0008\nRunning migrations:\n  No migrations to apply." in full.stdout
    for target in ("head", "heads"):
        answered = copy.manage("migrate", target, db_url=db_url, in_process=True)
        assert taken(answers[-1])
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout == full.stdout.replace("Target: head (", f"Target: {target} (")
        assert answered.stderr == full.stderr
    # What the full migrate would do is still done: a revision pending is applied.
    copy.add("0009", "0008")
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    assert not taken(answers[-1]) and heads_of(db_url) == ("0009",)


def test_at_head_imports_no_alembic(db_url: str, tmp_path: Path) -> None:
    """The point of it: a whole `manage.py migrate` process at head imports neither Alembic's package nor any
    version file."""
    copy = fixture_copy(tmp_path)
    env = {**os.environ, "NO_COLOR": "1", **copy.env(db_url)}
    command = [sys.executable, "-X", "importtime", str(ROOT / "manage.py"), "migrate", "-v0"]

    def imported() -> list[str]:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time")]

    assert "alembic" in imported()  # the first one applies the history: Alembic runs it
    again = imported()
    assert "sqlalchemy" in again
    # (A version file imports alembic's `op`: none was imported either.)
    assert not [name for name in again if name.split(".")[0] == "alembic"]


def test_what_the_full_migrate_must_do_at_head_is_done(db_url: str, tmp_path: Path, own_cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thing a migrate at head checks or writes: at_head() gives way to the full migrate, which does it."""
    copy = fixture_copy(tmp_path)
    answers = fast(monkeypatch)

    def migrate(**env: str):
        return copy.manage("migrate", "-v0", db_url=db_url, env=env, in_process=True)

    assert migrate().returncode == 0
    assert migrate().returncode == 0 and taken(answers[-1])
    log = applied_log.TABLE_NAME
    # A revision applied but not logged (plain `alembic`, a migrate killed before its row): backfilled.
    execute(db_url, f"DELETE FROM {log} WHERE revision = '0005'")
    assert migrate().returncode == 0 and not taken(answers[-1])
    assert [(r.direction, r.state) for r in log_rows(db_url) if r.revision == "0005"] == [("up", "backfilled")]
    assert migrate().returncode == 0 and taken(answers[-1])
    # A checksum that differs from the file's: stopped (CHECKSUM_MISMATCH=error), worded as ever.
    execute(db_url, f"UPDATE {log} SET checksum = '{'0' * 64}' WHERE revision = '0003'")
    refused = migrate(CHECKSUM_MISMATCH="error")
    assert not taken(answers[-1])
    assert "0003" in one_clean_line(refused, sa.make_url(db_url).password)
    assert "was edited after it was applied" in refused.stderr
    warned = migrate(CHECKSUM_MISMATCH="warn")
    assert warned.returncode == 0 and not taken(answers[-1])
    execute(db_url, f"DELETE FROM {log} WHERE revision = '0003' AND checksum = '{'0' * 64}'")
    # No log at all: created, every applied revision backfilled.
    execute(db_url, f"DROP TABLE {log}")
    assert migrate().returncode == 0 and not taken(answers[-1])
    assert {r.revision for r in log_rows(db_url) if r.state == "backfilled"} == {f"000{i}" for i in range(1, 9)}
    # The fleet table dropped: made again (runner.fleet.ensure).
    execute(db_url, f"DROP TABLE {FLEET_TABLE}")
    assert migrate().returncode == 0 and not taken(answers[-1])
    engine = create_engine_for(db_url)
    try:
        assert sa.inspect(engine).has_table(FLEET_TABLE)
    finally:
        engine.dispose()
    assert migrate().returncode == 0 and taken(answers[-1])


def test_a_history_the_facts_cannot_answer_for(db_url: str, tmp_path: Path, own_cache: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two heads for `head`, a file changed since its facts were kept, a version location set in alembic.ini:
    the full migrate, as before."""
    copy = fixture_copy(tmp_path)
    answers = fast(monkeypatch)
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    copy.add("0009", "0007", message="a second head")
    assert copy.manage("migrate", "-v0", "heads", db_url=db_url, in_process=True).returncode == 0
    assert not taken(answers[-1])
    assert copy.manage("migrate", "-v0", "heads", db_url=db_url, in_process=True).returncode == 0
    answered = answers[-1]
    assert isinstance(answered, at_head.AtHead) and answered.target == "heads"
    assert set(answered.current.split(", ")) == {"0008", "0009"}
    two = copy.manage("migrate", "-v0", db_url=db_url, in_process=True)
    assert not taken(answers[-1]) and "2 heads" in one_clean_line(two, sa.make_url(db_url).password)
    # A file edited: its facts are not known, so the full migrate reads it (and reports the mismatch).
    path = copy.versions / "0009_test.py"
    path.write_text(path.read_text() + "\n# edited\n")
    assert copy.manage("migrate", "-v0", "heads", db_url=db_url, in_process=True).returncode == 0
    assert not taken(answers[-1])


def test_check_at_head_without_alembic(db_url: str, tmp_path: Path, own_cache: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`migrate --check` (CI's "is anything unapplied?") at head is answered as migrate is, and a revision
    pending is still reported by the full check, in its own words."""
    copy = fixture_copy(tmp_path)
    told: list[bool] = []
    real = at_head.checked
    monkeypatch.setattr(at_head, "checked", lambda *args, **kwargs: told.append(real(*args, **kwargs)) or told[-1])
    assert copy.manage("migrate", "-v0", db_url=db_url, in_process=True).returncode == 0
    at_head_check = copy.manage("migrate", "--check", db_url=db_url, in_process=True)
    assert at_head_check.returncode == 0 and told == [True]
    assert at_head_check.stdout == at_head_check.stderr == ""
    copy.add("0009", "0008")
    pending = copy.manage("migrate", "--check", db_url=db_url, in_process=True)
    assert not told[-1]
    assert "1 migration(s) unapplied" in one_clean_line(pending, sa.make_url(db_url).password)
