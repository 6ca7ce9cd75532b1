"""Proof under load (issue 23, item 5): a rolling deploy of tests/rolling_app on each engine, from release 1
(reads and writes items.legacy) to release 2 (items.note instead; 0002 adds note, expand; 0003 drops legacy,
contract), with real uvicorn processes serving a steady read/write load through a client-side balancer
(rolling_app/deploy.py). Phased: not one request fails, and the drop is held while any release 1 instance
lives, applied once the last one left. Naive (the control): the drop applied before the new code breaks the
requests release 1 still serves.

The rename: release 2 reads and writes items.note where release 1 has items.legacy (NOT NULL), the same value.
Its history is what makemigrations writes for the models, answered "in two phases" on a terminal: an expand
revision (note, legacy made nullable, triggers keeping them in step), the backfill, the contract revision (the
triggers and legacy dropped, note NOT NULL). Every read must give back the value written, whichever release
wrote it and whichever reads it."""

from __future__ import annotations

from pathlib import Path

from rolling_app.deploy import INSTANCES, rename_history, rolling_deploy


def test_phased_rolling_deploy_fails_no_request(db_url: str, tmp_path: Path) -> None:
    outcome = rolling_deploy(db_url, tmp_path, phased=True)
    assert outcome.failures == [], outcome.failures[:5]
    assert set(outcome.served_by) == {1, 2}, outcome.served_by  # the load went through both releases
    steps = dict(outcome.migrates)
    held = [step for step, _ in outcome.migrates][:-1]  # every migrate while a release 1 instance lived
    assert len(held) == INSTANCES + 1
    for step in held:
        assert "Applying 0003" not in steps[step] and "Waiting: 0003" in steps[step], (step, steps[step],
                                                                                        outcome.fleet)
        assert dict(outcome.versions)[step] == ["0002"], step
    assert "Applying 0002" in steps["pre-deploy"]
    last = outcome.migrates[-1][0]
    assert "Applying 0003" in steps[last] and "Waiting" not in steps[last], steps[last]
    assert dict(outcome.versions)[last] == ["0003"]


def test_naive_deploy_breaks_the_old_instances(db_url: str, tmp_path: Path) -> None:
    """The control: the same deploy with the drop applied before the new code (what the gate refuses, forced)."""
    outcome = rolling_deploy(db_url, tmp_path, phased=False)
    assert "Applying 0003" in outcome.migrates[0][1] and outcome.versions[0][1] == ["0003"]
    assert len(outcome.failures) > 0
    assert all("-> 500" in failure for failure in outcome.failures), outcome.failures[:5]


def test_rename_in_two_phases_rolls_out_with_no_failed_request(db_url: str, tmp_path: Path) -> None:
    history, (expand, backfill, contract) = rename_history(tmp_path)
    outcome = rolling_deploy(db_url, tmp_path, phased=True, history=history, check_values=True)
    assert outcome.failures == [], outcome.failures[:5]
    assert set(outcome.served_by) == {1, 2}, outcome.served_by
    steps = dict(outcome.migrates)
    assert f"Applying {expand}" in steps["pre-deploy"] and f"Applying {backfill}" in steps["pre-deploy"]
    for step, _ in outcome.migrates[:-1]:  # while a release 1 instance lived
        assert f"Applying {contract}" not in steps[step] and f"Waiting: {contract}" in steps[step], steps[step]
        assert dict(outcome.versions)[step] == [backfill], step
    last = outcome.migrates[-1][0]
    assert f"Applying {contract}" in steps[last] and dict(outcome.versions)[last] == [contract], steps[last]


def test_rename_without_triggers_reads_nulls(tmp_path: Path) -> None:
    """The control, on SQLite: the same phased deploy with the expand revision's triggers taken out, and the
    backfill (without the triggers it chases release 1's inserts, each a row to fill, for as long as they come).
    The rows one release writes have NULL in the column the other release reads, which the value check catches
    (and the contract revision then fails: note cannot be made NOT NULL)."""
    history, (expand, backfill, _) = rename_history(tmp_path)
    for revision, call in ((expand, "sync_columns("), (backfill, "backfill(")):
        [path] = (history / "versions").glob(f"{revision}_*.py")
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join("    pass\n" if line.strip().startswith(call) else line for line in lines))
    outcome = rolling_deploy(f"sqlite:///{tmp_path / 'control.db'}", tmp_path, phased=True, history=history,
                             check_values=True, migrate_may_fail=True)
    assert "NOT NULL constraint failed" in outcome.migrates[-1][1], outcome.migrates[-1][1]
    assert any("-> None, not the" in failure for failure in outcome.failures), outcome.failures[:5]
