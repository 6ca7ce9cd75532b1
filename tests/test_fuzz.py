"""The model-evolution fuzzer (tests/fuzz/, docs/testing.md) on a few seeds, and its own checks shown able to fail.

`test_fuzz_seeds` runs SEEDS for STEPS steps each on SQLite, MariaDB and PostgreSQL: per step makemigrations
(renames answered on a pseudo-terminal), migrate with rows, the schema compared with create_all() of the same
models; then back to zero, up again, and a squash compared with the originals. `make fuzz` is the long run.

KNOWN is the allow-list of failure kinds the tool still has: empty. An entry would name a kind and why it still
fails; the test prints the figures every run, and fails
- on a failure of a kind KNOWN does not list (a new bug, or a known one failing another way), and
- on a kind KNOWN lists that no longer occurs on these seeds: its fix landed, so delete its entry.
Only a difference that is inherent and documented belongs there; better, the schema comparison normalises it
explicitly (tests/fuzz/schema.py does for SQLite's rowid keys).
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT

from tests.fuzz.harness import ENGINES, Databases, run_seed
from tests.fuzz.models import KINDS, NATIVE_ENUMS, _Generator, generate, render
from tests.fuzz.report import summary
from tests.fuzz.schema import differences, snapshot

# Seeds 1..3 as they come (not picked for what they find), 3 steps each: about a minute on a 2-core machine
# (`make fuzz` runs the long walk: 8 steps, 50 seeds).
SEEDS = (1, 2, 3)
STEPS = 3

# kind -> why it still fails. Delete an entry when the test says that its kind no longer occurs.
KNOWN: dict[str, str] = {}


# --- the fuzzer's own checks ---------------------------------------------------------------------------------------


def _scaffold_header() -> str:
    """start_project.py's models module, as a started project has it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import start_project

    return start_project.REWRITTEN["project/app/models.py"]


def _load(source: str, tmp_path: Path) -> sa.MetaData:
    name = f"fuzz_check_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module.Base.metadata


def test_same_seed_same_steps() -> None:
    header = _scaffold_header()
    first, again, other = generate(7, 6), generate(7, 6), generate(8, 6)
    assert first == again
    assert [render(s.tables, header) for s in first] == [render(s.tables, header) for s in again]
    assert [s.changes for s in first] != [s.changes for s in other]


def test_generated_models_are_valid_and_cover_every_change(tmp_path: Path) -> None:
    """What the harness runs must be valid models (a failure is then the tool's): each step of 30 seeds imports,
    creates its tables on SQLite, names nothing twice or longer than PostgreSQL allows; across them every change
    and every column kind occurs."""
    header = _scaffold_header()
    changes, kinds = set(), set()
    for seed in range(1, 31):
        for step in generate(seed, 8):
            metadata = _load(render(step.tables, header), tmp_path)
            engine = sa.create_engine("sqlite://")
            metadata.create_all(engine)
            engine.dispose()
            names = [str(n) for t in metadata.tables.values()
                     for n in [*(i.name for i in t.indexes), *(c.name for c in t.constraints)]]
            assert len(names) == len(set(names)), (seed, step.number, names)
            assert max(map(len, names)) <= 63, (seed, step.number, names)
            changes |= set(step.kinds)
            kinds |= {c.kind for t in step.tables for c in t.columns}
    assert changes == {change.__name__ for change in _Generator.CHANGES}
    assert kinds == {*KINDS, "fk"}
    assert len(NATIVE_ENUMS) >= 2  # enum classes shared between columns: one PostgreSQL type, several columns


@pytest.mark.parametrize("engine", ENGINES)
def test_comparison_sees_types_indexes_and_defaults(engine: str, request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    """The schema comparison is exact where schema_compare is not: BIGINT vs INTEGER, timestamptz vs timestamp."""
    servers = {engine: request.getfixturevalue("pg_server" if engine == "postgresql" else "mysql_server")} \
        if engine != "sqlite" else {}
    databases = Databases(tmp_path, servers)

    def build(big: bool, aware: bool, indexed: bool, default: str) -> dict:
        metadata = sa.MetaData()
        sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("n", sa.BigInteger if big else sa.Integer, server_default=default),
                 sa.Column("at", sa.DateTime(timezone=aware)),
                 sa.Column("s", sa.String(20), index=indexed))
        url = databases.create(engine, "cmp")
        try:
            db = sa.create_engine(url)
            metadata.create_all(db)
            db.dispose()
            return snapshot(url)
        finally:
            databases.drop(url)

    base = build(False, True, True, "0")
    assert differences(base, build(False, True, True, "0")) == []
    found = differences(build(True, False, False, "1"), base)
    categories = sorted({category for category, _ in found})
    expected = ["default", "index", "type"]
    assert categories == expected, found
    texts = [text for category, text in found if category == "type"]
    assert any("column t.n: BIGINT" in text for text in texts), texts
    if engine == "postgresql":
        assert any("TIMESTAMP WITHOUT TIME ZONE migrated, TIMESTAMP WITH TIME ZONE models" in t for t in texts), texts


def test_rows_check_tells_a_conversion_from_a_loss() -> None:
    """A retyped column keeps its values when they convert (a day to its midnight, a number to a wider one); SQLite's
    CAST of '2020-01-06' to DATETIME (2020, a number) is a loss."""
    from tests.fuzz.harness import _same_converted

    assert _same_converted("2020-01-06", "2020-01-06 00:00:00.000000")
    assert _same_converted(dt.date(2020, 1, 6), dt.datetime(2020, 1, 6, tzinfo=dt.UTC))
    assert _same_converted(decimal.Decimal("12.25"), decimal.Decimal("12.2500"))
    assert _same_converted(12, 12) and _same_converted(None, None)
    assert not _same_converted("2020-01-06", 2020)
    assert not _same_converted("v12", None)
    assert not _same_converted(decimal.Decimal("12.25"), decimal.Decimal("12.2"))


# --- the fuzzer -----------------------------------------------------------------------------------------------------


def test_fuzz_seeds(pg_server, mysql_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    databases = Databases(tmp_path, {"postgresql": pg_server, "mysql": mysql_server})
    results = [run_seed(seed, STEPS, databases, tmp_path / f"seed-{seed}") for seed in SEEDS]
    found = {failure.kind for result in results for failure in result.failures}
    unknown = sorted(found - KNOWN.keys())
    gone = sorted(KNOWN.keys() - found)
    with capsys.disabled():  # the figures and the allow-list, every run
        print(f"\n{summary(results, KNOWN, each=False)}")
        print(f"KNOWN: {len(KNOWN) - len(gone)} of {len(KNOWN)} listed kinds still occur"
              + (f"; no longer: {', '.join(gone)}" if gone else ""))
    unknown_failures = [f for r in results for f in r.failures if f.kind in unknown]
    assert not unknown, "failures of kinds KNOWN does not list:\n" + "\n".join(
        f"- seed {f.seed} {f.where}{f' [{f.engine}]' if f.engine else ''}: {f.kind}\n    {f.what}"
        + (f"\n    file: {f.file}" if f.file else "") + "".join(f"\n    {d}" for d in f.details)
        for f in unknown_failures)
    assert not gone, (f"fixed: these KNOWN kinds no longer occur on seeds {SEEDS}; delete their entries: "
                      + "; ".join(f"{kind} ({KNOWN[kind]})" for kind in gone))
