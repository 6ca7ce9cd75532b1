"""Revision ids that read in order and never collide across branches (project.core.authoring.revision_ids).

Two developers branch from the same revision and each run makemigrations: after the git merge both revisions
are in the history, `makemigrations --merge` joins them, and the merged history migrates on every engine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from migcopy import MigrationsCopy, fixture_copy, one_clean_line
from servers import table_names, version_rows

from project.core.authoring.revision_ids import next_revision_id, revision_content

NEW_ID = re.compile(r"(\d{4})_[0-9a-f]{6}")


def test_ids_continue_the_sequence_with_a_suffix() -> None:
    old_style = [f"{n:04d}" for n in range(1, 9)]
    alice = next_revision_id(old_style, revision_content(["0008"], "add labels", "op.create_table('labels')"))
    bob = next_revision_id(old_style, revision_content(["0008"], "add badges", "op.create_table('badges')"))
    assert alice and bob and NEW_ID.fullmatch(alice) and alice.startswith("0009_") and bob.startswith("0009_")
    assert alice != bob  # the same parent, two changes: two ids
    # The same revision is the same id: the same models give the same file, run after run.
    assert alice == next_revision_id(old_style, revision_content(["0008"], "add labels", "op.create_table('labels')"))
    # Without content (an --empty revision, filled by hand later): random.
    assert next_revision_id(old_style) != next_revision_id(old_style)
    assert (next_revision_id([]) or "").startswith("0001_")
    # After a merge of two branches that each wrote a 0009: the next number is 0010, whatever the suffixes.
    assert (next_revision_id([*old_style, "0009_3fa2c1", "0009_000123"]) or "").startswith("0010_")
    assert len(next_revision_id([f"{n:04d}" for n in range(1, 20000)]) or "") <= 32  # alembic_version.version_num
    # An id named by hand after a number counts too.
    assert (next_revision_id([*old_style, "0009_fix_totals"]) or "").startswith("0010_")
    # A history with Alembic's random ids keeps getting them (None: Alembic picks).
    assert next_revision_id(["0001", "ae1027a6acf"]) is None


# A models module that is the fixture application's plus whatever tables the extra_*.py files next to it add:
# each branch adds its table in a file of its own, so the git merge of the models has no conflict.
BRANCH_MODELS = '''
import importlib
from pathlib import Path

from fixture_app.models import Base

for extra in sorted(Path(__file__).parent.glob("extra_*.py")):
    importlib.import_module(extra.stem)
'''
EXTRA_TABLE = '''
import sqlalchemy as sa

from fixture_app.models import Base

sa.Table("{name}", Base.metadata, sa.Column("id", sa.Integer(), primary_key=True),
         sa.Column("label", sa.String(40), nullable=False))
'''


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _written(output: str) -> str:
    """The revision id makemigrations reports (`  - <id> <message>`)."""
    [line] = [line for line in output.splitlines() if line.startswith("  - ")]
    return line.split()[1]


def test_two_branches_each_add_a_revision_then_merge(db_url: str, tmp_path: Path) -> None:
    copy: MigrationsCopy = fixture_copy(tmp_path)
    (tmp_path / "branch_models.py").write_text(BRANCH_MODELS)
    settings = tmp_path / f"{copy.module}.py"
    settings.write_text(settings.read_text() + 'TARGET_METADATA = "branch_models:Base.metadata"\n')
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "history at 0008")

    written = {}
    for branch, table in (("alice", "labels"), ("bob", "badges")):
        _git(tmp_path, "checkout", "-q", "-b", branch, "main")
        (tmp_path / f"extra_{table}.py").write_text(EXTRA_TABLE.format(name=table))
        written[branch] = _written(_ok(copy.manage("makemigrations", "-m", f"add {table}")))
        _git(tmp_path, "add", "-A")
        _git(tmp_path, "commit", "-qm", f"add {table}")
    assert NEW_ID.fullmatch(written["alice"]) and NEW_ID.fullmatch(written["bob"]), written
    assert written["alice"].startswith("0009_") and written["bob"].startswith("0009_")
    assert written["alice"] != written["bob"]

    _git(tmp_path, "checkout", "-q", "main")
    _git(tmp_path, "merge", "-q", "--no-edit", "alice")
    _git(tmp_path, "merge", "-q", "--no-edit", "bob")  # a real merge commit: the files do not conflict

    shown = _ok(copy.manage("showmigrations", db_url=db_url))
    for revision in written.values():
        assert f"[ ] {revision} " in shown, shown
    check = copy.manage("check")
    assert "2 heads" in check.stdout and "makemigrations --merge" in check.stdout, check.stdout

    merged = _written(_ok(copy.manage("makemigrations", "--merge")))
    assert merged.startswith("0010_"), merged
    assert _ok(copy.manage("makemigrations", "--check")).strip() == "No changes detected"
    assert _ok(copy.manage("check")).strip() == "System check identified no issues."

    applied = _ok(copy.manage("migrate", db_url=db_url))
    assert all(f"Applying {revision} " in applied for revision in (*written.values(), merged)), applied
    assert {"labels", "badges"} <= table_names(db_url)
    assert version_rows(db_url) == [merged]
    shown = _ok(copy.manage("showmigrations", db_url=db_url))
    assert all(f"[X] {revision} " in shown for revision in (*written.values(), merged)), shown
    # And back: the merge, then each branch's revision, unapplied by prefix as by full id.
    _ok(copy.manage("migrate", "0008", db_url=db_url))
    assert not {"labels", "badges"} & table_names(db_url)
    assert version_rows(db_url) == ["0008"]



def test_two_files_with_one_id_are_named_not_hidden(tmp_path: Path) -> None:
    """Ids written before this scheme (a bare 0009 on each branch) still collide after a merge: Alembic would keep
    one file and ignore the other; every command says so in one line instead, and `check` names both files."""
    copy = fixture_copy(tmp_path)
    first = copy.add("0009", "0008", filename="0009_add_labels.py")
    second = copy.add("0009", "0008", filename="0009_add_badges.py")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for command in (["showmigrations"], ["migrate"], ["makemigrations", "--merge"]):
        line = one_clean_line(copy.manage(*command, db_url=url))
        assert line.startswith("CommandError: Two version files define revision 0009") and "check" in line, line
    checked = copy.manage("check")
    assert checked.returncode == 1
    [line] = [line for line in checked.stdout.splitlines() if "used twice" in line]
    assert "revision id 0009 is used twice" in line and first.name in line and second.name in line, line
