"""Is a raw SQL string in a version file the same statement on SQLite, MySQL/MariaDB and PostgreSQL?

Lint rule P101 flags raw SQL in `op.execute` without a dialect guard, because it fails wherever the SQL is not
understood. Real histories also send plain statements every engine reads alike (`INSERT INTO t (v) VALUES (1)`,
`CREATE VIEW v AS SELECT * FROM t`): those are not a portability problem. sqlglot decides: the text must parse
in each dialect, render to the same SQL in each, use only statement kinds all three have and only functions
sqlglot knows (an unknown function may exist on one engine only). Anything else stays flagged.
"""

from __future__ import annotations

from typing import Any

DIALECTS = ("sqlite", "mysql", "postgres")
# Statements every engine has; CREATE/DROP only of these kinds (no functions, triggers, extensions, schemas).
PORTABLE_KINDS = {"TABLE", "VIEW", "INDEX"}


def is_portable_sql(text: str) -> bool:
    """True when `text` reads and renders as the same plain statements on all three engines."""
    import sqlglot
    from sqlglot import exp

    from project.core.inspection.destructive import quiet_library_logs

    quiet_library_logs()
    try:
        rendered = set()
        for dialect in DIALECTS:
            statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
            if not statements or not all(_plain(s, exp) for s in statements):
                return False
            rendered.add(tuple(s.sql(dialect=dialect) for s in statements))
        return len(rendered) == 1
    except Exception:  # whatever sqlglot cannot read is not known to be portable: the rule stays
        return False


def _plain(statement: Any, exp: Any) -> bool:
    if isinstance(statement, exp.Insert | exp.Update | exp.Delete | exp.Select):
        pass
    elif isinstance(statement, exp.Create | exp.Drop):
        if str(statement.args.get("kind") or "").upper() not in PORTABLE_KINDS:
            return False
    else:  # exp.Command (sqlglot could not read it) and everything else
        return False
    return not any(True for _ in statement.find_all(exp.Anonymous))
