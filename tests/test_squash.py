"""squashmigrations on the three engines: a squash gives the schema the originals give, databases inside the range go
on through the originals, the squash's downgrade returns to before START, data migrations are carried or refused."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ROOT
from migcopy import fixture_copy, one_clean_line

from project.core.bookkeeping import bookkeeping_tables

sys.path.insert(0, str(ROOT / "bench"))
import histories  # noqa: E402 - bench/ on sys.path above


def load(copy: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from project.core.conf import load_settings

    monkeypatch.syspath_prepend(copy.pythonpath)
    monkeypatch.setenv("DEV_DATABASE_URL", db_url)
    for name in [n for n in sys.modules if n.startswith("fixture_app.settings.")]:
        del sys.modules[name]  # the copy's settings import them: they must read this test's URL afresh
    return load_settings(copy.module)


TOOL_TABLES = bookkeeping_tables()  # the version table, the applied log, the lock row, the fleet


def schema(url: str) -> dict[str, Any]:
    """Everything reflection says about the tables (the tool's alembic_version and applied log aside) and, on
    PostgreSQL, the enum types."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            dialect = connection.dialect
            tables: dict[str, Any] = {}
            for name in sorted(set(inspector.get_table_names()) - TOOL_TABLES):
                tables[name] = {
                    "columns": [(c["name"], c["type"].compile(dialect=dialect), c["nullable"], c.get("default"))
                                for c in inspector.get_columns(name)],
                    "pk": inspector.get_pk_constraint(name)["constrained_columns"],
                    "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                                   tuple(fk["referred_columns"])) for fk in inspector.get_foreign_keys(name)),
                    "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                      for i in inspector.get_indexes(name)),
                    "uniques": sorted((u["name"], tuple(u["column_names"]))
                                      for u in inspector.get_unique_constraints(name)),
                }
            enums = inspector.get_enums() if dialect.name == "postgresql" else []  # type: ignore[attr-defined]
            return {"tables": tables, "enums": sorted((e["name"], tuple(e["labels"])) for e in enums)}
    finally:
        engine.dispose()


def rows(url: str, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def migrate(settings: Any, target: str = "head") -> list[str]:
    from project.core.runner import migrator

    return [str(step) for step in migrator.migrate(settings, target).steps]


def test_fixture_history_squashed_gives_the_same_schema(db_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    settings = load(copy, db_url, monkeypatch)
    path = write_squash(settings, "0001", "0008")
    assert path.parent.name == "squashed" and "_upgrade_0007" in path.read_text()  # the data migration, carried

    # A fresh database runs the squash alone and is recorded at END.
    steps = migrate(settings)
    assert len(steps) == 1 and steps[0].startswith("0008 Squashed 0001..0008"), steps
    squashed = schema(db_url)
    assert squashed["tables"].keys() == {"projects", "tasks"}
    # What SQLite reflection would lose survives: the enum type, lengths, server defaults.
    assert squashed["enums"] == ([("task_state", ("open", "done"))] if db_url.startswith("postgresql") else [])
    columns = {c[0]: c for c in squashed["tables"]["tasks"]["columns"]}
    assert "'open'" in str(columns["state"][3]) and "legacy_flag" not in columns
    assert "200" in {c[0]: c for c in squashed["tables"]["projects"]["columns"]}["name"][1]

    # Its downgrade returns to before START (nothing left, the PostgreSQL type included).
    assert len(migrate(settings, "zero")) == 1
    assert schema(db_url) == {"tables": {}, "enums": []}

    # Through the originals (a database that has applied 0001 takes them), the same schema.
    migrate(settings, "0001")
    assert len(migrate(settings)) == 7
    assert schema(db_url) == squashed

    # Databases stopped at three points inside the range go on through the originals, with their data.
    for stop in ("0002", "0004", "0007"):
        migrate(settings, "zero")
        migrate(settings, stop)
        engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (1, 'p', 'P')"))
            notes = "details" if stop >= "0004" else "notes"
            connection.execute(sa.text(f"INSERT INTO tasks (id, project_id, title, {notes}) VALUES (1, 1, 't', 'd')"))
        engine.dispose()
        steps = migrate(settings)
        assert steps[0].startswith(f"{int(stop) + 1:04d} ") and len(steps) == 8 - int(stop), steps
        assert schema(db_url) == squashed
        expected_state = "open" if stop == "0007" else "done"  # 0007's data migration ran only if still pending
        assert rows(db_url, "tasks")[0][-1] == expected_state


def test_plain_alembic_keeps_running_the_originals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command

    from project.core.authoring.squash_writer import write_squash
    from project.core.history.scripts import alembic_config, script_directory

    url = f"sqlite:///{tmp_path / 'plain.db'}"
    copy = fixture_copy(tmp_path)
    settings = load(copy, url, monkeypatch)
    write_squash(settings, "0001", "0008")
    cfg = alembic_config(settings)
    script = script_directory(cfg)
    assert script.get_heads() == ["0008"]  # the squash is no second head
    applied: list[str] = []
    cfg.attributes["configure_options"]["on_version_apply"] = lambda step, **_: applied.append(step.up_revision_id)
    command.upgrade(cfg, "head")
    assert applied == [f"000{i}" for i in range(1, 9)]


def test_generated_history_of_100_squashed(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    ids = histories.generate(copy.versions, 100, base="0008")
    settings = load(copy, db_url, monkeypatch)
    write_squash(settings, ids[0], ids[-1])

    migrate(settings, "0008")
    before = schema(db_url)
    steps = migrate(settings)  # at START's parent, none of the range applied: the squash
    assert len(steps) == 1 and steps[0].startswith(f"{ids[-1]} Squashed"), steps
    squashed = schema(db_url)
    assert len(squashed["tables"]) == 12
    assert len(rows(db_url, "t009")) == histories.ROWS_PER_INSERT  # the bulk inserts, carried
    assert len(migrate(settings, "0008")) == 1
    assert schema(db_url) == before

    for stop in (ids[0], ids[49], ids[98]):
        migrate(settings, stop)
        steps = migrate(settings)
        assert len(steps) == 100 - ids.index(stop) - 1
        assert schema(db_url) == squashed, stop
        assert len(rows(db_url, "t009")) == histories.ROWS_PER_INSERT
        migrate(settings, "0008")  # from END: the squash's downgrade
        assert schema(db_url) == before


def test_data_migrations_refused_with_one_line(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    line = one_clean_line(copy.manage("squashmigrations", "0005", "0008", "--no-data", in_process=True))
    assert "0006, 0007" in line and "--no-data" in line
    assert not (copy.root / "squashed").exists()


def test_bad_ranges_are_one_line(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    assert "does not come after" in one_clean_line(copy.manage("squashmigrations", "0005", "0002", in_process=True))
    assert "same revision" in one_clean_line(copy.manage("squashmigrations", "0003", "0003", in_process=True))
    assert "Unknown revision" in one_clean_line(copy.manage("squashmigrations", "0003", "9999", in_process=True))


def test_showmigrations_and_check_know_the_squash(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    url = f"sqlite:///{tmp_path / 'show.db'}"
    written = copy.manage("squashmigrations", "0002", "0005", db_url=url, in_process=True)
    assert written.returncode == 0, written.stderr
    plan = copy.manage("migrate", "--plan", db_url=url, in_process=True)
    assert plan.returncode == 0, plan.stderr
    assert "Apply 0001" in plan.stdout and "Apply 0005 Squashed 0002..0005" in plan.stdout
    assert "Apply 0006" in plan.stdout and "Apply 0003" not in plan.stdout
    shown = copy.manage("showmigrations", db_url=url, in_process=True)
    assert "0005 squashes 0002..0005 (4 revisions; originals still present)" in shown.stdout, shown.stdout
    checked = copy.manage("check", db_url=url, in_process=True)
    assert checked.returncode == 0 and "heads" not in checked.stdout, checked.stdout + checked.stderr


def test_check_names_a_stale_or_half_deleted_squash(tmp_path: Path) -> None:
    copy = fixture_copy(tmp_path)
    url = f"sqlite:///{tmp_path / 'check.db'}"
    assert copy.manage("squashmigrations", "0002", "0005", db_url=url, in_process=True).returncode == 0
    original = (copy.versions / "0003_widen_projects_name.py").read_text()
    # A cosmetic edit (a comment) leaves the squash valid...
    (copy.versions / "0003_widen_projects_name.py").write_text(original.replace("def upgrade", "# why\ndef upgrade"))
    assert copy.manage("check", db_url=url, in_process=True).returncode == 0
    # ...a change of what the revision does makes it stale.
    (copy.versions / "0003_widen_projects_name.py").write_text(original.replace("length=200", "length=210"))
    stale = copy.manage("check", db_url=url, in_process=True)
    assert stale.returncode == 1 and "originals changed since it was written" in stale.stdout, stale.stdout
    (copy.versions / "0003_widen_projects_name.py").unlink()
    half = copy.manage("check", db_url=url, in_process=True)
    assert "originals 0003 are missing" in half.stdout, half.stdout


def test_after_the_originals_are_deleted(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every database past END: the originals go, the squash moves into versions/, and databases go on (under
    the production checksum policy: the log's rows of the deleted originals are no edit)."""
    from project.core.authoring.squash_writer import write_squash

    monkeypatch.setenv("CHECKSUM_MISMATCH", "error")
    copy = fixture_copy(tmp_path)
    settings = load(copy, db_url, monkeypatch)
    path = write_squash(settings, "0002", "0005")
    assert "_upgrade_0004" in path.read_text()  # a rename is carried, not autogenerate's drop + add
    migrate(settings, "0001")
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO projects (id, slug, name) VALUES (1, 'p', 'P')"))
        connection.execute(sa.text("INSERT INTO tasks (id, project_id, title, notes) VALUES (1, 1, 't', 'kept')"))
    engine.dispose()
    assert migrate(settings, "0006")[0].startswith("0005 Squashed 0002..0005")  # at START's parent: the squash
    assert rows(db_url, "tasks")[0][3] == "kept"  # the renamed column kept its rows
    originals = schema(db_url)
    assert migrate(settings, "0006") == []  # heals the applied log: 0002..0004 recorded as backfilled
    for name in ("0002_add_projects_is_active", "0003_widen_projects_name", "0004_rename_tasks_notes_to_details",
                 "0005_unique_projects_slug_index_tasks_title"):
        (copy.versions / f"{name}.py").unlink()
    path.rename(copy.versions / path.name)
    assert [s.split()[0] for s in migrate(settings)] == ["0007", "0008"]
    pruned = copy.manage("migrate", "--prune", db_url=db_url, env={"CHECKSUM_MISMATCH": "error"}, in_process=True)
    assert [line.split()[1] for line in pruned.stdout.splitlines() if "Pruning 0" in line] == [
        "0002...", "0003...", "0004..."]
    assert [s.split()[0] for s in migrate(settings, "0001")] == ["0008", "0007", "0006", "0005"]
    assert [s.split()[0] for s in migrate(settings, "0006")] == ["0005", "0006"]
    assert schema(db_url) == originals


def test_a_rename_after_rows_were_inserted_is_carried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    copy.add("a001", "0008", 'op.create_table("x", sa.Column("id", sa.Integer(), primary_key=True), '
                             'sa.Column("a", sa.String(length=10)))', 'op.drop_table("x")')
    copy.add("a002", "a001", 'op.bulk_insert(sa.table("x", sa.column("id"), sa.column("a")), [{"id": 1, "a": "v"}])',
             'op.execute(sa.table("x").delete())')
    copy.add("a003", "a002", 'with op.batch_alter_table("x") as b:\n    b.alter_column("a", new_column_name="b", '
                             'existing_type=sa.String(length=10))',
             'with op.batch_alter_table("x") as b:\n    b.alter_column("b", new_column_name="a", '
             'existing_type=sa.String(length=10))')
    url = f"sqlite:///{tmp_path / 'rename.db'}"
    settings = load(copy, url, monkeypatch)
    text = write_squash(settings, "a001", "a003").read_text()
    assert "_upgrade_a002" in text and "_upgrade_a003" in text and "_upgrade_a001" not in text
    migrate(settings, "0008")
    assert migrate(settings)[0].startswith("a003 Squashed")
    assert rows(url, "x") == [(1, "v")]


def test_a_database_that_took_the_squash_passes_the_checksum_policy(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The applied log records what ran: a database migrated through the squash is not an 'edited' END under
    the production policy (CHECKSUM_MISMATCH=error), and `check --database` finds nothing to report."""
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    url = f"sqlite:///{tmp_path / 'squashed.db'}"
    monkeypatch.setenv("CHECKSUM_MISMATCH", "error")
    settings = load(copy, url, monkeypatch)
    write_squash(settings, "0001", "0005")
    assert migrate(settings, "0005")[0].startswith("0005 Squashed 0001..0005")
    env = {"CHECKSUM_MISMATCH": "error"}
    again = copy.manage("migrate", "-v0", db_url=url, env=env, in_process=True)
    assert again.returncode == 0, again.stderr
    checked = copy.manage("check", "--database", db_url=url, env=env, in_process=True)
    assert "checksum" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr


# A history whose types SQLite's reflection cannot tell apart from others: a BigInteger key (INTEGER on SQLite
# through its variant, BIGINT elsewhere), timezone-aware timestamps with a server default, JSON, a Boolean with
# sa.false() (SQLite reflects the text 0, which PostgreSQL refuses for a boolean).
LOANS = """
op.create_table(
    "loans",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("lent_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=True),
    sa.Column("returned", sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
)
"""
ARCHIVE = """
op.create_table(
    "archive",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("archived_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column("kept", sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_archive")),
)
"""
# The project's own type, imported as older makemigrations wrote it: the squash writes what it is on the engines.
EXACT_0010 = """
from project.core.bookkeeping import bookkeeping_tables
from project.core.db import UTCDateTime
with op.batch_alter_table("loans") as batch_op:
    batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    batch_op.add_column(sa.Column("copies", sa.BigInteger(), nullable=True))
    batch_op.add_column(sa.Column("returned_at", UTCDateTime(), nullable=True))
"""


def exact_types(url: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each column's type as the engine itself reports it (information_schema, SQLite's declared type)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                tables = [r[0] for r in connection.execute(sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('loans', 'archive')"))]
                return {(t, r[1]): (r[2].upper(), r[3], r[4]) for t in tables
                        for r in connection.execute(sa.text(f"PRAGMA table_info({t})"))}
            kind = "column_type" if connection.dialect.name == "mysql" else "data_type"
            return {(r[0], r[1]): tuple(r[2:]) for r in connection.execute(sa.text(
                f"SELECT table_name, column_name, {kind}, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name IN ('loans', 'archive')"
                if connection.dialect.name == "postgresql" else
                f"SELECT table_name, column_name, {kind}, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = database() AND table_name IN ('loans', 'archive')"))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("start,end", [("0009", "0011"), ("0010", "0011")])
def test_squash_keeps_the_originals_exact_types_and_defaults(db_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             start: str, end: str) -> None:
    """Upgrade (tables and columns created) and downgrade (a dropped table re-created) give each engine the types
    and defaults the originals give it: BIGINT not INT, timestamptz not timestamp, JSON, boolean false."""
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=LOANS + ARCHIVE, downgrade='op.drop_table("archive")\nop.drop_table("loans")')
    copy.add("0010", "0009", upgrade=EXACT_0010, downgrade=(
        'with op.batch_alter_table("loans") as batch_op:\n'
        '    batch_op.drop_column("returned_at")\n    batch_op.drop_column("copies")\n'
        '    batch_op.drop_column("due_at")'))
    copy.add("0011", "0010", upgrade='op.drop_table("archive")', downgrade=ARCHIVE)
    settings = load(copy, db_url, monkeypatch)
    parent = f"{int(start) - 1:04d}"

    # The originals, on a fresh database: at START's parent, and at END.
    migrate(settings, parent)
    originals_before = exact_types(db_url)
    migrate(settings, end)
    originals_after = exact_types(db_url)
    migrate(settings, "zero")

    assert "UTCDateTime" not in write_squash(settings, start, end).read_text()  # it runs without the project
    migrate(settings, parent)
    steps = migrate(settings)  # at START's parent: the squash alone
    assert len(steps) == 1 and "Squashed" in steps[0], steps
    assert exact_types(db_url) == originals_after
    assert len(migrate(settings, parent)) == 1  # the squash's downgrade: archive re-created as 0009 made it
    assert exact_types(db_url) == originals_before

    dialect = sa.make_url(db_url).get_backend_name()
    if dialect == "postgresql":
        assert originals_after[("loans", "id")][0] == "bigint"
        assert originals_after[("loans", "lent_at")][0] == "timestamp with time zone"
        assert originals_after[("loans", "returned_at")][0] == "timestamp with time zone"
        assert originals_after[("loans", "returned")][2] == "false"
    elif dialect == "mysql":
        assert originals_after[("loans", "id")][0].startswith("bigint")
    # Rows go in on the squash's schema with the key and the defaults filled by the engine.
    migrate(settings)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO loans (details) VALUES ('{}')"))
        assert connection.execute(sa.text("SELECT id, lent_at IS NOT NULL FROM loans")).one() == (1, True)
    engine.dispose()


# A parent and its child table, created by one revision and dropped by the next (child first, as makemigrations
# orders them).
TAGS = """
op.create_table("tags", sa.Column("id", sa.Integer(), nullable=False),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")))
op.create_table("book_tags", sa.Column("tag_id", sa.Integer(), nullable=False),
                sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_book_tags_tag_id_tags")),
                sa.PrimaryKeyConstraint("tag_id", name=op.f("pk_book_tags")))
"""
DROP_TAGS = 'op.drop_table("book_tags")\nop.drop_table("tags")'


def test_tables_dropped_in_a_squash_go_child_first(db_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The squash orders its operations as makemigrations does: it dropped the tables in the order of a set, the
    parent first on some hash seeds, which PostgreSQL and MariaDB refuse while the child still refers to it."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=TAGS, downgrade=DROP_TAGS)
    copy.add("0010", "0009", upgrade=DROP_TAGS, downgrade=TAGS)
    copy.add("0011", "0010")
    texts = []
    for seed in ("1", "2", "3", "4", "5") if db_url.startswith("sqlite") else ("1",):
        written = copy.manage("squashmigrations", "0010", "0011", env={"PYTHONHASHSEED": seed}, in_process=True)
        assert written.returncode == 0, written.stderr
        [path] = (copy.root / "squashed").glob("*.py")
        texts.append(path.read_text())
        path.unlink()
    path.write_text(texts[0])
    for text in texts:
        upgrade, downgrade = text.split("\ndef upgrade() -> None:")[1].split("\ndef downgrade() -> None:")
        assert upgrade.index("op.drop_table('book_tags')") < upgrade.index("op.drop_table('tags')"), upgrade
        assert downgrade.index("op.create_table('tags'") < downgrade.index("op.create_table('book_tags'"), downgrade
    settings = load(copy, db_url, monkeypatch)
    migrate(settings, "0009")
    assert migrate(settings)[0].startswith("0011 Squashed 0010..0011")
    assert schema(db_url)["tables"].keys() == {"projects", "tasks"}
    assert migrate(settings, "0009")[0].startswith("0011 Squashed")  # its downgrade: parent first
    assert schema(db_url)["tables"].keys() == {"projects", "tasks", "tags", "book_tags"}


# A table using the task_state enum type that tasks.state keeps using, written as makemigrations writes it (the
# type exists: PostgreSQL is not to create it), then dropped.
LABELS = """
op.create_table("labels", sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("state", sa.Enum("open", "done", name="task_state").with_variant(
                    postgresql.ENUM("open", "done", name="task_state", create_type=False), "postgresql"),
                    nullable=False),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")))
"""
DROP_LABELS = 'op.drop_table("labels")'


def test_a_dropped_table_comes_back_without_creating_an_enum_type_in_use(db_url: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The squash's downgrade re-creates a dropped table whose enum type other columns still use, leaving the type
    be as makemigrations does: it created it again and PostgreSQL refused ('type "task_state" already exists';
    found by the fuzzer, seed 82)."""
    copy = fixture_copy(tmp_path)
    imports = "from sqlalchemy.dialects import postgresql\n"
    copy.add("0009", "0008", upgrade=imports + LABELS, downgrade=DROP_LABELS)
    copy.add("0010", "0009", upgrade=DROP_LABELS, downgrade=imports + LABELS)
    copy.add("0011", "0010")
    written = copy.manage("squashmigrations", "0010", "0011", in_process=True)
    assert written.returncode == 0, written.stderr
    settings = load(copy, db_url, monkeypatch)
    migrate(settings, "0009")
    assert migrate(settings)[0].startswith("0011 Squashed 0010..0011")
    assert "labels" not in schema(db_url)["tables"]
    assert migrate(settings, "0009")[0].startswith("0011 Squashed")  # its downgrade: labels back
    after = schema(db_url)
    assert "labels" in after["tables"]
    assert after["enums"] == ([("task_state", ("open", "done"))] if db_url.startswith("postgresql") else [])


# A table renamed after another came to refer to it, in a run of plain revisions after a carried one: the new name
# keeps the history's constraint names (pk_members), and loans' foreign key follows the rename. Then a column
# renamed: it keeps its place.
MEMBERS = """
op.create_table("members", sa.Column("id", sa.Integer(), nullable=False),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_members")))
op.create_table("loans", sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("note", sa.String(length=20), nullable=True),
                sa.Column("member_id", sa.Integer(), nullable=False),
                sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_loans_member_id_members")),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")))
"""


def test_renames_inside_the_range_are_carried(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when no row can be in the table: autogenerate's create + drop made the new table with the old one's
    primary key name while the old one still existed (PostgreSQL: relation "pk_members" already exists), and dropped
    the old one while loans still referred to it (SQLite: NoSuchTableError; MariaDB: 1451); its add + drop of a
    column put the column last."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=MEMBERS, downgrade='op.drop_table("loans")\nop.drop_table("members")')
    copy.add("0010", "0009", upgrade='op.execute("UPDATE loans SET id = id")')  # carried: it runs SQL
    copy.add("0011", "0010", upgrade='op.rename_table("members", "patrons")',
             downgrade='op.rename_table("patrons", "members")')
    rename = ('with op.batch_alter_table("loans") as batch_op:\n'
              '    batch_op.alter_column("{}", new_column_name="{}", existing_type=sa.String(length=20))')
    copy.add("0012", "0011", upgrade=rename.format("note", "remark"), downgrade=rename.format("remark", "note"))
    settings = load(copy, db_url, monkeypatch)
    migrate(settings, "0012")
    originals = schema(db_url)
    assert [c[0] for c in originals["tables"]["loans"]["columns"]] == ["id", "remark", "member_id"]
    migrate(settings, "0008")
    from project.core.authoring.squash_writer import write_squash

    text = write_squash(settings, "0009", "0012").read_text()
    assert "_upgrade_0011" in text and "_upgrade_0012" in text
    assert migrate(settings)[0].startswith("0012 Squashed 0009..0012")
    assert schema(db_url) == originals
    assert migrate(settings, "0008")[0].startswith("0012 Squashed")
    assert schema(db_url)["tables"].keys() == {"projects", "tasks"}


# A table with a foreign key and an index on its column, created inside the range: MariaDB keeps that index for the
# key, and refuses to drop it while the key exists (error 1553, "needed in a foreign key constraint").
SHELVES = """
op.create_table(
    "shelves",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=True),
    sa.Column("code", sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_shelves_project_id_projects")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_shelves")),
)
with op.batch_alter_table("shelves") as batch_op:
    batch_op.create_index(batch_op.f("ix_shelves_project_id"), ["project_id"], unique=False)
    batch_op.create_index(batch_op.f("ix_shelves_code"), ["code"], unique=False)
"""


def test_squash_downgrade_drops_a_table_with_its_indexes(mysql_server: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The squash's downgrade drops a table the range created with DROP TABLE alone, as makemigrations writes it:
    dropping its indexes first fails on MariaDB for the index its foreign key needs."""
    from project.core.authoring.squash_writer import write_squash

    url = mysql_server.create_database(f"squash_fk_index_{tmp_path.name[-8:]}")
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade=SHELVES, downgrade='op.drop_table("shelves")')
    copy.add("0010", "0009", upgrade='with op.batch_alter_table("shelves") as batch_op:\n'
                                     '    batch_op.add_column(sa.Column("label", sa.String(length=20)))',
             downgrade='with op.batch_alter_table("shelves") as batch_op:\n    batch_op.drop_column("label")')
    settings = load(copy, url, monkeypatch)
    downgrade = write_squash(settings, "0009", "0010").read_text().split("def downgrade")[1]
    assert "drop_index" not in downgrade, downgrade
    migrate(settings, "0008")
    assert len(migrate(settings)) == 1  # the squash
    assert len(migrate(settings, "0008")) == 1  # its downgrade
    assert "shelves" not in schema(url)["tables"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_squash_sets_a_retyped_columns_default_in_its_new_type(db_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A carried data revision splits the squash in parts; the part that retypes a date column to timestamptz sets
    its default again, as makemigrations writes it: PostgreSQL keeps '2020-01-01'::date through ALTER TYPE."""
    from project.core.authoring.squash_writer import write_squash

    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", upgrade='op.create_table("dues", sa.Column("id", sa.Integer(), primary_key=True), '
                                     'sa.Column("due", sa.Date(), server_default="2020-01-01"))',
             downgrade='op.drop_table("dues")')
    copy.add("0010", "0009", upgrade='op.execute("UPDATE projects SET name = name")',
             downgrade='op.execute("UPDATE projects SET name = name")')
    copy.add("0011", "0010", upgrade=(
        'with op.batch_alter_table("dues") as batch_op:\n'
        '    batch_op.alter_column("due", existing_type=sa.Date(), type_=sa.DateTime(timezone=True),\n'
        '                          server_default="2020-01-01", existing_server_default="2020-01-01")'),
        downgrade=(
        'with op.batch_alter_table("dues") as batch_op:\n'
        '    batch_op.alter_column("due", existing_type=sa.DateTime(timezone=True), type_=sa.Date(),\n'
        '                          server_default="2020-01-01", existing_server_default="2020-01-01")'))
    settings = load(copy, db_url, monkeypatch)
    migrate(settings)
    originals = schema(db_url)["tables"]["dues"]["columns"]
    assert "timestamp with time zone" in str(originals[1][3]), originals
    migrate(settings, "zero")
    write_squash(settings, "0009", "0011")
    migrate(settings, "0008")
    assert "Squashed" in migrate(settings)[0]
    assert schema(db_url)["tables"]["dues"]["columns"] == originals
