"""`check --locks` against squawk (squawk-cli on PyPI) on a generated history, for the rules both have.

The history: one revision creating the tables, then revisions that each do one kind of operation in its
naive form or its safe form (index, type change, SET NOT NULL, volatile default, foreign key, CHECK, unique
constraint, rename of a column or a table, raw SQL index, work on a table created in the same revision,
and operations only MySQL or SQLite care about). Every revision's PostgreSQL SQL is rendered offline by
Alembic (the revision's upgrade() under an as_sql MigrationContext), written to a file and given to
squawk; our lint reads the same revision (project.core.inspection.lock_rules, engine postgresql).

Per revision and shared rule: squawk's flags are the reference; recall = flagged by both / flagged by
squawk (must be 1.0), precision = flagged by both / flagged by ours. Both tools are also scored against
the generator's own label (naive forms should be flagged, safe forms not).

    .venv/bin/python bench/lock_peer.py [N]      # N revisions (default 60); prints JSON, updates RESULTS.md
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# squawk's rule -> ours, for the PostgreSQL rules both have.
SHARED = {
    "require-concurrent-index-creation": "L201",
    "changing-column-type": "L202",
    "adding-not-nullable-field": "L203",
    "adding-field-with-default": "L204",
    "constraint-missing-not-valid": "L205",
    "disallowed-unique-constraint": "L206",
    "renaming-column": "L207",
    "renaming-table": "L207",
}

HEADER = '''"""{message}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError("a generated lint benchmark")
'''

BASE = """\
op.create_table("u", sa.Column("id", sa.Integer(), primary_key=True))
for i in range(TABLES):
    op.create_table(f"t{i:02d}", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("a", sa.Integer()),
                    sa.Column("s", sa.String(length=50)), sa.Column("u_id", sa.Integer()),
                    sa.Column("e", sa.Enum("x", "y", name=f"e{i:02d}", native_enum=False)))"""

# kind: (rule expected on PostgreSQL when naive, naive body, safe body); {t} is an existing table.
KINDS: list[tuple[str, str | None, str, str]] = [
    ("index", "L201", 'op.create_index("ix_{t}_a", "{t}", ["a"])',
     'with op.get_context().autocommit_block():\n'
     '    op.create_index("ix_{t}_a", "{t}", ["a"], postgresql_concurrently=True)'),
    ("raw index", "L201", 'op.execute("CREATE INDEX ix_{t}_s ON {t} (s)")',
     'with op.get_context().autocommit_block():\n    op.execute("CREATE INDEX CONCURRENTLY ix_{t}_s ON {t} (s)")'),
    ("type change", "L202",
     'with op.batch_alter_table("{t}") as b:\n'
     '    b.alter_column("a", existing_type=sa.Integer(), type_=sa.BigInteger())',
     'op.add_column("{t}", sa.Column("a_big", sa.BigInteger(), nullable=True))'),
    ("set not null", "L203",
     'with op.batch_alter_table("{t}") as b:\n'
     '    b.alter_column("a", existing_type=sa.Integer(), existing_nullable=True, nullable=False)',
     'op.create_check_constraint("ck_{t}_a_nn", "{t}", "a IS NOT NULL", postgresql_not_valid=True)'),
    ("volatile default", "L204",
     'op.add_column("{t}", sa.Column("r", sa.Float(), server_default=sa.text("random()")))',
     'op.add_column("{t}", sa.Column("r", sa.Float(), nullable=True))'),
    ("foreign key", "L205", 'op.create_foreign_key("fk_{t}_u", "{t}", "u", ["u_id"], ["id"])',
     'op.create_foreign_key("fk_{t}_u", "{t}", "u", ["u_id"], ["id"], postgresql_not_valid=True)'),
    ("check", "L205", 'op.create_check_constraint("ck_{t}_a", "{t}", "a > 0")',
     'op.create_check_constraint("ck_{t}_a", "{t}", "a > 0", postgresql_not_valid=True)'),
    ("unique", "L206", 'op.create_unique_constraint("uq_{t}_a", "{t}", ["a"])',
     'with op.get_context().autocommit_block():\n'
     '    op.create_index("uq_{t}_a", "{t}", ["a"], unique=True, postgresql_concurrently=True)\n'
     'op.execute("ALTER TABLE {t} ADD CONSTRAINT uq_{t}_a UNIQUE USING INDEX uq_{t}_a")'),
    ("rename column", "L207",
     'with op.batch_alter_table("{t}") as b:\n'
     '    b.alter_column("s", new_column_name="s2", existing_type=sa.String(50))',
     'op.add_column("{t}", sa.Column("s2", sa.String(length=50), nullable=True))'),
    ("rename table", "L207", 'op.rename_table("{t}", "{t}_renamed")',
     'op.create_table("{t}_next", sa.Column("id", sa.Integer(), primary_key=True))'),
    ("fresh table", None,
     'op.create_table("{t}_new", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("a", sa.Integer()))\n'
     'op.create_index("ix_{t}_new_a", "{t}_new", ["a"])\n'
     'op.create_unique_constraint("uq_{t}_new_a", "{t}_new", ["a"])',
     'op.create_table("{t}_new", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("a", sa.Integer()))'),
    ("enum reorder (MySQL)", None,
     'with op.batch_alter_table("{t}") as b:\n    b.alter_column("e", existing_type=sa.Enum("x", "y", name="e", '
     'native_enum=False), type_=sa.Enum("y", "x", name="e", native_enum=False))',
     'op.add_column("{t}", sa.Column("e2", sa.Enum("x", "y", name="e2", native_enum=False), nullable=True))'),
    ("drop column (SQLite rebuild)", None, 'with op.batch_alter_table("{t}") as b:\n    b.drop_column("u_id")',
     'op.add_column("{t}", sa.Column("z", sa.Integer(), server_default="0"))'),
]


def generate(versions: Path, n: int) -> list[dict[str, Any]]:
    """Revision 0 creates the tables; revisions 1..n cycle through KINDS, naive then safe, each on a table of
    its own (so a rename or a type change never meets an earlier one). Returns each revision's label."""
    versions.mkdir(parents=True, exist_ok=True)
    tables = n + 1
    base = BASE.replace("TABLES", str(tables))
    (versions / "r0000_base.py").write_text(HEADER.format(message="base", rev="r0000", down=None,
                                                          body=_indent(base)))
    labels = []
    for i in range(1, n + 1):
        kind, rule, naive, safe = KINDS[(i - 1) // 2 % len(KINDS)]
        is_naive = (i - 1) % 2 == 0
        body = (naive if is_naive else safe).replace("{t}", f"t{i:02d}")
        rev = f"r{i:04d}"
        message = f"{kind} ({'naive' if is_naive else 'safe'})"
        (versions / f"{rev}.py").write_text(HEADER.format(message=message, rev=rev, down=f"r{i - 1:04d}",
                                                          body=_indent(body)))
        labels.append({"revision": rev, "kind": kind, "naive": is_naive,
                       "expected": rule if is_naive and rule else None})
    return labels


def _indent(body: str) -> str:
    return "\n".join("    " + line if line else line for line in body.splitlines())


def postgresql_sql(script: Any) -> str:
    """The revision's upgrade() as Alembic renders it offline for PostgreSQL."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql",
                                         opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True})
    with Operations.context(context):
        script.module.upgrade()
    return buffer.getvalue()


def squawk_dir() -> str:
    return sysconfig.get_path("scripts")


def squawk(sql_file: Path) -> set[str]:
    """squawk's rule names for one file (its JSON reporter)."""
    # Each revision runs in its own transaction on PostgreSQL (migrate, and migrate --sql's BEGIN/COMMIT).
    out = subprocess.run([str(Path(squawk_dir()) / "squawk"), "--assume-in-transaction", "--reporter", "json",
                          str(sql_file)],
                         capture_output=True, text=True)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise RuntimeError(f"squawk failed on {sql_file}: {out.stderr.strip()}")
    return {item["rule_name"] for item in json.loads(out.stdout)}


def compare(work: Path, revisions: int = 60) -> dict[str, Any]:
    from alembic.script import ScriptDirectory

    from project.core.inspection import lock_rules

    labels = generate(work / "versions", revisions)
    script_dir = ScriptDirectory(str(work))
    rows = []
    for label in labels:
        script = script_dir.get_revision(label["revision"])
        sql_file = work / f"{label['revision']}.sql"
        sql_file.write_text(postgresql_sql(script))
        theirs = {SHARED[name] for name in squawk(sql_file) if name in SHARED}
        ours = {f.rule for f in lock_rules.revision_findings(script, "postgresql")} & set(SHARED.values())
        rows.append({**label, "squawk": sorted(theirs), "ours": sorted(ours)})
    # Per revision (what the issue asks: every revision squawk flags, ours flags), then per (revision, rule).
    squawk_revs = {r["revision"] for r in rows if r["squawk"]}
    our_revs = {r["revision"] for r in rows if r["ours"]}
    truth_revs = {r["revision"] for r in rows if r["expected"]}
    squawk_pairs = {(r["revision"], rule) for r in rows for rule in r["squawk"]}
    our_pairs = {(r["revision"], rule) for r in rows for rule in r["ours"]}
    truth = {(r["revision"], r["expected"]) for r in rows if r["expected"]}
    return {
        "revisions": len(rows),
        "squawk_flagged": len(squawk_revs), "ours_flagged": len(our_revs), "both": len(squawk_revs & our_revs),
        "recall": _ratio(len(squawk_revs & our_revs), len(squawk_revs)),
        "precision": _ratio(len(squawk_revs & our_revs), len(our_revs)),
        "rule_recall": _ratio(len(squawk_pairs & our_pairs), len(squawk_pairs)),
        "rule_precision": _ratio(len(squawk_pairs & our_pairs), len(our_pairs)),
        "ours_vs_labels": _scores(our_pairs, truth), "squawk_vs_labels": _scores(squawk_pairs, truth),
        "ours_vs_labels_by_revision": _scores(our_revs, truth_revs),
        "squawk_vs_labels_by_revision": _scores(squawk_revs, truth_revs),
        "missed_by_ours": sorted(squawk_pairs - our_pairs), "only_ours": sorted(our_pairs - squawk_pairs),
        "rows": rows,
    }


def _scores(found: set[Any], truth: set[Any]) -> dict[str, float]:
    hit = len(found & truth)
    return {"precision": _ratio(hit, len(found)), "recall": _ratio(hit, len(truth))}


def _ratio(a: int, b: int) -> float:
    return round(a / b, 3) if b else 1.0


def _squawk_version() -> str:
    out = subprocess.run([str(Path(squawk_dir()) / "squawk"), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def write_results(result: dict[str, Any]) -> None:
    """Replace (or add) the section of bench/RESULTS.md this script owns."""
    kinds: dict[str, dict[str, list[str]]] = {}
    for row in result["rows"]:
        form = "naive" if row["naive"] else "safe"
        kinds.setdefault(row["kind"], {})[form] = [",".join(row["squawk"]) or "-", ",".join(row["ours"]) or "-"]
    lines = [
        "## Lock lint vs squawk (bench/lock_peer.py)", "",
        f"{result['revisions']} generated revisions (bench/lock_peer.py KINDS, naive and safe forms), PostgreSQL "
        f"SQL rendered offline by Alembic, {_squawk_version()}. Per revision and shared rule "
        f"({', '.join(sorted(set(SHARED.values())))}); squawk is the reference:", "",
        "| measure | value |", "|---|---|",
        f"| revisions flagged by squawk | {result['squawk_flagged']} |",
        f"| revisions flagged by ours | {result['ours_flagged']} |",
        f"| flagged by both | {result['both']} |",
        f"| recall, per revision (ours over squawk's) | {result['recall']} |",
        f"| precision, per revision (ours against squawk's) | {result['precision']} |",
        f"| per (revision, rule): recall / precision | {result['rule_recall']} / {result['rule_precision']} |",
        f"| ours against the generator's labels, per (revision, rule): precision / recall | "
        f"{result['ours_vs_labels']['precision']} / {result['ours_vs_labels']['recall']} |",
        f"| squawk against the generator's labels, per (revision, rule): precision / recall | "
        f"{result['squawk_vs_labels']['precision']} / {result['squawk_vs_labels']['recall']} |", "",
        "Per (revision, rule) pairs squawk has and ours has not: "
        + (", ".join(f"{rev} {rule}" for rev, rule in result["missed_by_ours"]) or "none")
        + ("; squawk reports constraint-missing-not-valid (L205) on ADD CONSTRAINT ... UNIQUE as well as "
           "disallowed-unique-constraint (L206): PostgreSQL has no NOT VALID for UNIQUE, so ours reports L206 only."
           if any(rule == "L205" for _, rule in result["missed_by_ours"]) else "."), "",
        "| kind | naive: squawk / ours | safe: squawk / ours |", "|---|---|---|",
    ]
    for kind, forms in kinds.items():
        naive, safe = forms.get("naive", ["", ""]), forms.get("safe", ["", ""])
        lines.append(f"| {kind} | {naive[0]} / {naive[1]} | {safe[0]} / {safe[1]} |")
    section = "\n".join(lines) + "\n"
    path = Path(__file__).with_name("RESULTS.md")
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(r"## Lock lint vs squawk \(bench/lock_peer.py\)\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section.rstrip("\n") + "\n", text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2 * len(KINDS) * 2
    with tempfile.TemporaryDirectory() as work:
        result = compare(Path(work), n)
    write_results(result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
