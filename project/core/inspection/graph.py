"""Graph problems: several heads, a down_revision no file defines, a revision id used twice, a file that does not
parse. Read from the version files' facts, without Alembic, so a broken graph can still be described."""

from __future__ import annotations

from project.core.inspection.problem import Problem, relative
from project.core.inspection.version_files import VersionFile


def graph_problems(files: list[VersionFile]) -> list[Problem]:
    problems = [vf.error for vf in files if vf.error]
    by_id: dict[str, list[VersionFile]] = {}
    for vf in files:
        if vf.parsed and not vf.revision:
            problems.append(Problem("no `revision = \"...\"` found: is this a revision file?", vf.path, 1))
        elif vf.revision:
            by_id.setdefault(vf.revision, []).append(vf)
    for rev, owners in by_id.items():
        if len(owners) > 1:
            others = ", ".join(relative(o.path) for o in owners[1:])
            problems.append(Problem(f"revision id {rev} is used twice (also in {others}): give one file a new id",
                                    owners[0].path, owners[0].revision_line))
    parents = {p for vf in files for p in vf.down_revisions}
    for vf in files:
        for parent in vf.down_revisions:
            if parent not in by_id:
                problems.append(Problem(f"down_revision {parent!r} is not defined by any version file: "
                                        "restore it or point down_revision at an existing revision",
                                        vf.path, vf.down_line))
    heads = sorted(rev for rev in by_id if rev not in parents)
    # Branches with labels are there by design (expand/contract): `migrate heads` runs them all.
    by_design = any(vf.branch_labels for vf in files)
    if len(heads) > 1 and not by_design and not any(vf.error for vf in files):
        problems.append(Problem(f"the history has {len(heads)} heads ({', '.join(heads)}): "
                                "run `manage.py makemigrations --merge` to join them"))
    return problems
