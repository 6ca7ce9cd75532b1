"""Proof under load (issue 23, item 5): a rolling deploy of tests/rolling_app on each engine, from release 1
(reads and writes items.legacy) to release 2 (items.note instead; 0002 adds note, expand; 0003 drops legacy,
contract), with real uvicorn processes serving a steady read/write load through a client-side balancer
(rolling_app/deploy.py). Phased: not one request fails, and the drop is held while any release 1 instance
lives, applied once the last one left. Naive (the control): the drop applied before the new code breaks the
requests release 1 still serves."""

from __future__ import annotations

from pathlib import Path

from rolling_app.deploy import INSTANCES, rolling_deploy


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
