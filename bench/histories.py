"""Generated migration histories for the benchmarks, and throwaway project trees to run them in.

`generate(versions_dir, n)` writes N dialect-neutral revisions that cycle through the operations
real histories are made of: create_table, add_column (nullable, and with a server_default),
create_index, batch alter_column (type change and rename), batch unique constraint, bulk_insert,
batch drop_column. Every tenth revision starts a new table, so N=1000 makes 100 tables. The cycle
is ten long so that the last revision of N=50/300/1000 is a batch type change: on SQLite that is a
table rebuild, the hardest case for offline SQL.

`make_tree(dest, n)` copies the project (manage.py, alembic.ini, migrations/, project/, settings/)
into `dest` and adds the N generated revisions on top of the project's own (8 today), so `manage.py`
and plain `alembic` run on the very same tree.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CYCLE = 10
ROWS_PER_INSERT = 20

HEADER = '''"""{message}

Revision ID: {rev}
Revises: {down}
Create Date: 2026-11-25 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = {rev!r}
down_revision: str | Sequence[str] | None = {down_repr}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

'''


def revision_id(i: int) -> str:
    return f"b{i:04d}"


def _ops(table: str, step: int) -> tuple[str, str, str]:
    """(message, upgrade body, downgrade body) for step `step` of the cycle on `table`."""
    t = table
    if step == 0:
        return (
            f"create table {t}",
            f"""    op.create_table(
        "{t}",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.Column("counter", sa.Integer(), nullable=True),
    )""",
            f'    op.drop_table("{t}")',
        )
    if step == 1:
        return (
            f"add {t}.note",
            f'    op.add_column("{t}", sa.Column("note", sa.String(length=100), nullable=True))',
            f'    with op.batch_alter_table("{t}") as batch_op:\n        batch_op.drop_column("note")',
        )
    if step == 2:
        return (
            f"add {t}.flag with a server default",
            f'    op.add_column("{t}", sa.Column("flag", sa.Integer(), server_default="0", nullable=False))',
            f'    with op.batch_alter_table("{t}") as batch_op:\n        batch_op.drop_column("flag")',
        )
    if step == 3:
        return (
            f"index {t}.name",
            f'    op.create_index("ix_{t}_name", "{t}", ["name"], unique=False)',
            f'    op.drop_index("ix_{t}_name", table_name="{t}")',
        )
    if step == 4:
        return (
            f"widen {t}.name",
            _batch(t, 'batch_op.alter_column("name", existing_type=sa.String(length=50), '
                      "type_=sa.String(length=200), existing_nullable=True)"),
            _batch(t, 'batch_op.alter_column("name", existing_type=sa.String(length=200), '
                      "type_=sa.String(length=50), existing_nullable=True)"),
        )
    if step == 5:
        return (
            f"rename {t}.note to remark",
            _batch(t, 'batch_op.alter_column("note", new_column_name="remark", '
                      "existing_type=sa.String(length=100), existing_nullable=True)"),
            _batch(t, 'batch_op.alter_column("remark", new_column_name="note", '
                      "existing_type=sa.String(length=100), existing_nullable=True)"),
        )
    if step == 6:
        return (
            f"unique {t}.counter",
            _batch(t, f'batch_op.create_unique_constraint("uq_{t}_counter", ["counter"])'),
            _batch(t, f'batch_op.drop_constraint("uq_{t}_counter", type_="unique")'),
        )
    if step == 7:
        rows = ", ".join(f'{{"id": {k}, "name": "row {k}", "counter": {k}}}' for k in range(1, ROWS_PER_INSERT + 1))
        return (
            f"seed {t}",
            f"""    table = sa.table("{t}", sa.column("id", sa.Integer()), sa.column("name", sa.String(length=50)),
                     sa.column("counter", sa.Integer()))
    op.bulk_insert(table, [{rows}])""",
            f'    op.execute(sa.table("{t}").delete())',
        )
    if step == 8:
        return (
            f"drop {t}.remark",
            _batch(t, 'batch_op.drop_column("remark")'),
            f'    op.add_column("{t}", sa.Column("remark", sa.String(length=100), nullable=True))',
        )
    if step == 9:
        return (
            f"make {t}.counter a bigint",
            _batch(t, 'batch_op.alter_column("counter", existing_type=sa.Integer(), '
                      "type_=sa.BigInteger(), existing_nullable=True)"),
            _batch(t, 'batch_op.alter_column("counter", existing_type=sa.BigInteger(), '
                      "type_=sa.Integer(), existing_nullable=True)"),
        )
    raise ValueError(step)


def _batch(table: str, line: str) -> str:
    return f'    with op.batch_alter_table("{table}") as batch_op:\n        {line}'


def generate(versions_dir: Path, n: int, base: str | None = None) -> list[str]:
    """Write revisions 1..n into `versions_dir`, the first one on top of `base`; return their ids in order."""
    versions_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        rev = revision_id(i + 1)
        down = revision_id(i) if i else base
        message, up, down_body = _ops(f"t{i // CYCLE:03d}", i % CYCLE)
        text = HEADER.format(message=message, rev=rev, down=down or "", down_repr=repr(down))
        text += f"\ndef upgrade() -> None:\n{up}\n\n\ndef downgrade() -> None:\n{down_body}\n"
        (versions_dir / f"{rev}_{message.replace(' ', '_').replace('.', '_')}.py").write_text(text)
        ids.append(rev)
    return ids


def head_models(n: int) -> str:
    """Python source declaring, on the project's Base.metadata, the tables as revision n leaves them.

    Appended to the tree's project/app/models.py so that models and migrations agree (`manage.py check`).
    """
    lines = ["", "", "# --- bench/histories.py: the tables of the generated revisions, as they stand at head ---", ""]
    for j in range((n + CYCLE - 1) // CYCLE):
        steps = min(CYCLE, n - j * CYCLE)  # steps 0..steps-1 of the cycle ran on this table
        t = f"t{j:03d}"
        name_type = "sa.String(length=200)" if steps > 4 else "sa.String(length=50)"
        counter_type = "sa.BigInteger()" if steps > 9 else "sa.Integer()"
        cols = ['sa.Column("id", sa.Integer(), primary_key=True)', f'sa.Column("name", {name_type}, nullable=True)',
                f'sa.Column("counter", {counter_type}, nullable=True)']
        if 1 < steps <= 8:
            cols.append(f'sa.Column("{"remark" if steps > 5 else "note"}", sa.String(length=100), nullable=True)')
        if steps > 2:
            cols.append('sa.Column("flag", sa.Integer(), server_default="0", nullable=False)')
        if steps > 3:
            cols.append(f'sa.Index("ix_{t}_name", "name")')
        if steps > 6:
            cols.append(f'sa.UniqueConstraint("counter", name="uq_{t}_counter")')
        lines.append(f'sa.Table("{t}", Base.metadata, ' + ", ".join(cols) + ")")
    return "\n".join(lines) + "\n"


def make_tree(dest: Path, n: int, source: Path = ROOT) -> Path:
    """A copy of the project in `dest` whose history is the project's own plus `n` generated revisions.

    The generated revisions sit on top of the real ones (and their tables are added to the tree's
    models), so the app, its API and `manage.py check` work on the tree exactly as on the project.
    `source`: the project checkout to copy (another one, e.g. main before a change, for a before/after run).
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("manage.py", "alembic.ini"):
        shutil.copy2(source / name, dest / name)
    for package in ("project", "settings"):
        shutil.copytree(source / package, dest / package, ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(source / "migrations", dest / "migrations", ignore=ignore, dirs_exist_ok=True)
    versions = dest / "migrations" / "versions"
    base = project_head(versions)
    generate(versions, n, base)
    with (dest / "project" / "app" / "models.py").open("a") as models:
        models.write(head_models(n))
    return dest


def project_head(versions: Path) -> str | None:
    """The head of the project's own history (read from the files: no Alembic import needed here)."""
    revs, downs = set(), set()
    for path in versions.glob("*.py"):
        text = path.read_text()
        rev = re.search(r"^revision: str = ['\"](\w+)['\"]", text, re.M)
        down = re.search(r"^down_revision: .*= ['\"](\w+)['\"]", text, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    heads = sorted(revs - downs)
    return heads[-1] if heads else None


# --- the Django peer: the same cycle of operations as Django migrations --------------------------

DJANGO_PEER = Path(__file__).resolve().parent / "peers" / "django_project"


def _django_op(model: str, table: str, step: int) -> str:
    m = f'"{model}"'
    if step == 0:
        return (f'migrations.CreateModel(name={m}, fields=[("id", models.AutoField(primary_key=True)), '
                '("name", models.CharField(max_length=50, null=True)), ("counter", models.IntegerField(null=True))])')
    if step == 1:
        return f'migrations.AddField({m}, "note", models.CharField(max_length=100, null=True))'
    if step == 2:
        return f'migrations.AddField({m}, "flag", models.IntegerField(default=0))'
    if step == 3:
        return f'migrations.AddIndex({m}, models.Index(fields=["name"], name="ix_{table}_name"))'
    if step == 4:
        return f'migrations.AlterField({m}, "name", models.CharField(max_length=200, null=True))'
    if step == 5:
        return f'migrations.RenameField({m}, "note", "remark")'
    if step == 6:
        return (f'migrations.AddConstraint({m}, '
                f'models.UniqueConstraint(fields=["counter"], name="uq_{table}_counter"))')
    if step == 7:
        values = ", ".join(f"({k}, 'row {k}', {k}, 0)" for k in range(1, ROWS_PER_INSERT + 1))
        return (f'migrations.RunSQL("INSERT INTO bench_app_{model.lower()} (id, name, counter, flag) '
                f'VALUES {values}", reverse_sql="DELETE FROM bench_app_{model.lower()}")')
    if step == 8:
        return f'migrations.RemoveField({m}, "remark")'
    if step == 9:
        return f'migrations.AlterField({m}, "counter", models.BigIntegerField(null=True))'
    raise ValueError(step)


def generate_django(migrations_dir: Path, n: int) -> None:
    """N Django migrations in `migrations_dir` doing what generate()'s N revisions do."""
    migrations_dir.mkdir(parents=True, exist_ok=True)
    (migrations_dir / "__init__.py").touch()
    previous = None
    for i in range(n):
        name = f"{i + 1:04d}_step"
        j, step = divmod(i, CYCLE)
        deps = f'[("bench_app", "{previous}")]' if previous else "[]"
        body = (
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = {deps}\n"
            f"    operations = [{_django_op(f'T{j:03d}', f't{j:03d}', step)}]\n"
        )
        (migrations_dir / f"{name}.py").write_text(body)
        previous = name


def make_django_tree(dest: Path, n: int) -> Path:
    """A copy of the peer Django project with N generated migrations."""
    shutil.copytree(DJANGO_PEER, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3"),
                    dirs_exist_ok=True)
    generate_django(dest / "bench_app" / "migrations", n)
    return dest
