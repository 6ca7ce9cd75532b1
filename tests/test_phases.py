"""Phases in the history (docs/phases.md): makemigrations writes the phase its operations show, `check` flags a
revision whose declared phase they contradict, and a value that is not a phase is one line. No server: the
history is replayed on the scratch SQLite database."""

from __future__ import annotations

import re
from pathlib import Path

from test_questioner import TASKS_V1, Project

NOTES = 'sa.Table("notes", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n'


def phase_of(path: Path) -> str | None:
    found = re.findall(r"^phase: str = '(\w+)'", path.read_text(), re.M)
    return found[0] if found else None


def test_makemigrations_writes_the_inferred_phase(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(TASKS_V1 + NOTES)  # a new table: old code does not notice it
    result = project.manage("makemigrations", "--noinput", "-m", "notes")
    assert result.returncode == 0, result.stderr
    assert "(phase: expand)" in result.stdout
    [expand] = project.written()
    assert phase_of(expand) == "expand"

    project.models(NOTES)  # tasks dropped: old code reading it breaks
    result = project.manage("makemigrations", "--noinput", "-m", "drop tasks")
    assert result.returncode == 0, result.stderr
    contract = project.written()[1]
    assert phase_of(contract) == "contract"

    # Both at once cannot be told without asking: --noinput writes no phase (the revision runs as before).
    project.models('sa.Table("tags", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))\n')
    result = project.manage("makemigrations", "--noinput", "-m", "tags for notes")
    assert result.returncode == 0, result.stderr
    assert phase_of(project.written()[2]) is None
    assert project.manage("check").returncode == 0  # phases as inferred: nothing to flag


def test_check_flags_contract_in_expand_mixed_and_unknown_phases(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.models(TASKS_V1 + NOTES)
    assert project.manage("makemigrations", "--noinput", "-m", "notes").returncode == 0
    [path] = project.written()
    source = path.read_text()
    # The same revision, now also dropping tasks.title: a contract operation in a revision marked expand.
    path.write_text(source.replace("    # ### end Alembic commands ###",
                                   "    with op.batch_alter_table('tasks') as batch_op:\n"
                                   "        batch_op.drop_column('title')\n    # ### end Alembic commands ###", 1))
    result = project.manage("check")
    assert result.returncode == 1
    assert re.search(r"0002_\w+\.py: revision 0002_\w+ is marked expand but mixes both phases: it creates table "
                     r"notes \(expand\) and drops column tasks\.title \(contract\).* \[Z301\]", result.stdout), \
        result.stdout
    path.write_text(re.sub(r"(?s)def upgrade\(\) -> None:.*?\n\n\ndef downgrade",
                           "def upgrade() -> None:\n    op.drop_table('tasks')\n\n\ndef downgrade", source))
    result = project.manage("check")
    assert "is marked expand but drops table tasks, which breaks the code still running before it: mark it " \
           "phase = \"contract\"" in result.stdout, result.stdout
    assert "[Z302]" in result.stdout

    path.write_text(source.replace("phase: str = 'expand'", "phase: str = 'later'"))
    result = project.manage("check")
    assert result.returncode == 1
    assert re.search(r"0002_\w+\.py: phase = 'later' is not a phase: write phase = \"expand\" or "
                     r"phase = \"contract\" \(or remove the line\)\.", result.stdout), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
