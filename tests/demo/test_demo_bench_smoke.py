"""The benchmark suite runs end to end at tiny sizes and writes what RESULTS.md is made from.

Kept with the demo's tests: bench/ builds its histories on top of the project's own revisions (the demo's)
and has not been checked on a project without them.

No timing is asserted: only that every section ran on every engine and produced its numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SECTIONS = {"startup", "migrate", "memory", "at_head", "sqlmigrate", "rebuild", "health", "drivers"}
# Two runs of about the same length (the drivers' load takes half the time), so that the two pytest-xdist
# workers share the bench; together they cover every section.
HALVES = {"drivers": {"drivers"}, "the rest": SECTIONS - {"drivers"}}


@pytest.mark.parametrize("half", HALVES)
def test_bench_runs_every_section_on_every_engine(half: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "3", "--runs", "1", "--warmup", "0",
         "--migrate-runs", "1", "--memory-runs", "1", "--rebuild-runs", "1", "--big-rows", "1000",
         "--load-requests", "40", "--load-rounds", "1", "--no-profiles", "--out", str(tmp_path),
         "--sections", ",".join(sorted(HALVES[half]))],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "config", "sections", "targets", "profiles"} <= set(results)
    sections = results["sections"]
    assert set(sections) == HALVES[half]
    failed = {name: s["error"][-500:] for name, s in sections.items() if "error" in s}
    assert not failed, failed
    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Targets" in report and "## Machine" in report
    if half == "drivers":
        for engine, data in sections["drivers"]["engines"].items():
            pairs = [pair for pair in data if pair != "crud"]
            assert pairs and all(data[pair]["ratio"] > 0 for pair in pairs), engine
            assert all(load["requests"] > 0 and load["p99"] >= load["p50"] > 0 for load in data["crud"].values()), \
                engine
        return

    assert {"manage.py help", "alembic heads"} <= set(sections["startup"]["rows"])
    assert sections["startup"]["heavy_imports"]["help"] == []
    for section in ("migrate", "memory", "at_head"):
        assert set(sections[section]["engines"]) == {"sqlite", "mysql", "postgresql"}, section
    for engine, data in sections["migrate"]["engines"].items():
        rows = data["rows"]
        assert {"manage.py migrate", "manage.py migrate zero", "alembic upgrade head", "alembic downgrade base"} <= set(
            rows), engine
        assert all(r["runs"] == 1 and r["median"] > 0 for r in rows.values()), engine
        assert any(name.startswith("raw SQL floor up") for name in rows), engine
    for engine, data in sections["memory"]["engines"].items():
        assert data["rows"]["manage.py migrate"]["rss_mb"] > 0, engine
    assert sections["at_head"]["version_file_loads"]["manage.py migrate"]["loads"] > 0
    assert sections["rebuild"]["stats"]["by hand"]["runs"] == 1
    # Sections for features that may be missing say so instead of failing.
    for name in ("sqlmigrate", "health"):
        assert "rows" in sections[name] or "rows_ms" in sections[name] or sections[name].get("status", "").startswith(
            "not measured"), name

    targets = {t["target"] for t in results["targets"]}
    assert any("migrate` / `alembic upgrade head" in t for t in targets)
    assert all(set(t) >= {"target", "value", "limit", "met", "note"} for t in results["targets"])
