"""Inspection: what `check` and the destructive-step policy find, without changing anything.

`check`'s families, one module each: `graph`, `portability` (with `concurrently`, `data_types`, `portable_sql`),
`models`, `database`, `deploy`, `lock_rules`; what they read: `version_files`, `problem`. Beside them
`destructive` (which steps destroy data), `plan_judge` (what a plan destroys on one database), `schema_compare`
(a live schema against the history's) and `inspectdb` (models from a database). Imports authoring, the history
and the foundation.
"""
