from __future__ import annotations

from typing import Any

from project.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "List every revision in apply order, [X] when applied to the selected database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plan", "-p", action="store_true", help="Show the revisions as a plan, with parents.")

    def handle(self, *args: Any, **options: Any) -> None:
        from alembic.util import to_tuple

        from project.core.history.scripts import alembic_config, check_known, script_directory
        from project.core.runner import migrator

        script = script_directory(alembic_config(self.settings))
        heads, dialect = migrator.database_heads(self.settings)
        # A revision no file defines cannot be walked from: say so in migrate's words.
        check_known(script, heads)
        applied: set[str] = set()
        for head in heads:
            applied.update(s.revision for s in script.iterate_revisions(head, "base"))
        revisions = list(reversed(list(script.walk_revisions())))
        log = self._log(options["verbosity"])
        if not options["plan"]:
            self.stdout.write("migrations", self.style.HEADING)
        if not revisions:
            self.stdout.write(" (no migrations)")
        branched = len(script.get_heads()) > 1 or any(rev.is_merge_point for rev in revisions)
        for rev in revisions:
            mark = "X" if rev.revision in applied else " "
            title = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
            entry = log.get(rev.revision)
            if entry is not None and entry.failed and rev.revision not in applied:
                mark = "!"
            if entry is not None:
                from project.core.history.applied_log import describe

                title += f"  ({describe(entry)})"
            if branched:
                title += _shape(rev, script)
            if options["plan"]:
                parents = ", ".join(to_tuple(rev.down_revision, default=()))
                suffix = f" ... (parent: {parents})" if parents and options["verbosity"] >= 2 else ""
                self.stdout.write(f"[{mark}]  {rev.revision} {title}{suffix}")
                if rev.revision not in applied:
                    self._mark_destructive(rev, dialect)
            else:
                self.stdout.write(f" [{mark}] {rev.revision} {title}")
        from project.core.history import squash

        for line in squash.describe(script):  # squashes stand beside the originals (docs/history.md)
            self.stdout.write(f" squashed: {line}", self.style.MUTED)

    def _log(self, verbosity: int) -> dict[str, Any]:
        """-v 2: the applied log's newest row per revision (when, how long, a failure and what ran)."""
        if verbosity < 2:
            return {}
        from project.core.history.applied_log import read_log

        return read_log(self.settings)

    def _mark_destructive(self, rev: Any, dialect: str) -> None:
        """A pending revision that destroys data when applied says what it drops on this database, judged as
        `migrate --plan` and the policy judge it (the plan to the heads, on this database)."""
        from project.core.inspection import destructive

        if not hasattr(self, "_judged"):
            from project.core.errors import MigrationError
            from project.core.runner import migrator

            try:
                preview = migrator.preview(self.settings, "heads", judged=True)
                self._judged = {j.step.revision: j for j in preview.judged or [] if j.step.forwards}
            except MigrationError:  # tables but no revision recorded (migrate refuses that): judged offline
                self._judged = {}
        judged = self._judged.get(rev.revision)
        findings = [f.text for f in judged.destroys] if judged else destructive.classify_revision(rev, True, dialect)
        if findings:
            self.stdout.write(f"      DESTRUCTIVE: {destructive.summary(findings)}", self.style.WARNING)
        for finding, why in judged.spared if judged else []:
            self.stdout.write(f"      NOTHING LOST: {finding.text} ({why})", self.style.MUTED)


def _shape(rev: Any, script: Any) -> str:
    """Where a revision sits in a branched history: its branch labels, a branch point and its children,
    a merge and its parents, a head."""
    from alembic.util import to_tuple

    marks = []
    # Alembic hands a label down to the branch's later revisions: show it where the branch starts.
    inherited = {label for parent in to_tuple(rev.down_revision, default=())
                 for label in script.get_revision(parent).branch_labels}
    labels = sorted(set(rev.branch_labels) - inherited)
    if labels:
        marks.append(f"branch {', '.join(labels)}")
    if rev.is_branch_point:
        marks.append(f"branches to {', '.join(sorted(rev.nextrev))}")
    if rev.is_merge_point:
        marks.append(f"merges {', '.join(to_tuple(rev.down_revision, default=()))}")
    if rev.is_head:
        marks.append("head")
    return f"  ({'; '.join(marks)})" if marks else ""
