"""migrate's revision map from cached facts (issue 24): a migrate with nothing to apply imports no version file
whose text an earlier import saw, and still notices every new, changed or removed file; what runs is imported
before anything runs. Real files, real databases; the cache is this test's own (tmp_path)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from migcopy import fixture_copy, one_clean_line
from test_applied_log import heads_of, log_rows

from project.core.conf import load_settings
from project.core.history import revision_facts, scripts
from project.core.history.scripts import CachedModule, alembic_config, cached_script_directory, script_directory

# Module-level code that says each time the file is imported (the file's own text, nothing patched).
IMPORTED = ('import os as _os\nwith open(_os.environ["IMPORT_MARKER"], "a") as _marker:\n'
            '    _marker.write("imported\\n")\n')


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's cache folder: the project's .cache is rewritten by parallel tests' migrates."""
    folder = tmp_path / ".cache"
    monkeypatch.setattr(revision_facts, "cache_dir", lambda settings=None: folder)
    return folder


def graph(script) -> list[tuple]:
    return [(r.revision, r.down_revision, r.branch_labels, r.dependencies, r.doc, r.longdoc, r.path,
             r.is_head, r.is_branch_point) for r in script.walk_revisions()]


def test_cached_map_is_alembics(tmp_path: Path, own_cache: Path) -> None:
    """The same revisions, graph, documentation and paths as Alembic's own map, from a cold and a warm cache; a
    warm one imports no file for any of that."""
    copy = fixture_copy(tmp_path)
    copy.add("0009", "0008", message="a branch")
    labelled = copy.add("0010", "0008", message="another branch, labelled")
    labelled.write_text(labelled.read_text().replace("branch_labels = None", "branch_labels = ('side',)")
                        .replace("depends_on = None", "depends_on = '0009'"))
    copy.add("0011", ("0009", "0010"), message="the merge")
    settings = _settings(copy)
    real = script_directory(alembic_config(settings))
    cold = cached_script_directory(alembic_config(settings), settings)
    assert graph(cold) == graph(real)
    assert (own_cache / scripts.REVISION_MAP_CACHE).exists()
    warm = cached_script_directory(alembic_config(settings), settings)
    assert graph(warm) == graph(real)
    assert warm.get_heads() == real.get_heads() == ["0011"]
    assert [r.revision for r in warm.iterate_revisions("side@head", "base")] == \
           [r.revision for r in real.iterate_revisions("side@head", "base")]
    modules = [r.module for r in warm.walk_revisions()]
    assert all(isinstance(m, CachedModule) for m in modules)
    assert all("_module" not in m.__dict__ for m in modules)  # nothing imported
    assert getattr(modules[0], "phase", None) is None and "_module" not in modules[0].__dict__
    # What the facts lack imports the file: its functions are the file's own.
    upgrade = warm.get_revision("0003").module.upgrade
    assert upgrade.__code__.co_filename == real.get_revision("0003").module.upgrade.__code__.co_filename
    # What a plan runs gets the module itself, as Alembic's own load gives it.
    step = warm.get_revision("0004")
    scripts.import_modules([step])
    assert not isinstance(step.module, CachedModule)
    assert vars(step.module).keys() >= {"upgrade", "downgrade", "op", "revision"}


def _settings(copy):
    """The copy's settings, loaded from its module (on tmp_path)."""
    import sys

    sys.path.insert(0, copy.pythonpath)
    try:
        return load_settings(copy.module)
    finally:
        sys.path.remove(copy.pythonpath)


def test_values_computed_on_import_are_not_cached(tmp_path: Path, own_cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A down_revision computed when the file is imported could differ next time for the same text: that file is
    imported every time (the others come from the cache)."""
    copy = fixture_copy(tmp_path)
    path = copy.add("0009", "0008")
    path.write_text(path.read_text().replace("down_revision = '0008'", "down_revision = _os.environ['PARENT']")
                    .replace("import sqlalchemy as sa", "import os as _os\nimport sqlalchemy as sa"))
    monkeypatch.setenv("PARENT", "0008")
    settings = _settings(copy)
    cached_script_directory(alembic_config(settings), settings).get_heads()
    monkeypatch.setenv("PARENT", "0007")
    warm = cached_script_directory(alembic_config(settings), settings)
    assert warm.get_revision("0009").down_revision == "0007"
    assert not isinstance(warm.get_revision("0009").module, CachedModule)
    assert isinstance(warm.get_revision("0008").module, CachedModule)
    stored = json.loads((own_cache / scripts.REVISION_MAP_CACHE).read_text())
    assert sum(facts is None for facts in stored.values()) == 1


def test_at_head_imports_nothing_and_notices_every_change(db_url: str, tmp_path: Path, own_cache: Path) -> None:
    copy = fixture_copy(tmp_path)
    marker = tmp_path / "imports.txt"
    marker.write_text("")
    path = copy.add("0009", "0008", message="says when imported")
    path.write_text(path.read_text().replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\n" + IMPORTED))
    env = {"IMPORT_MARKER": str(marker)}

    def migrate(*args: str, **extra: str):
        return copy.manage("migrate", "-v0", *args, db_url=db_url, env={**env, **extra}, in_process=True)

    assert migrate().returncode == 0
    assert heads_of(db_url) == ("0009",)
    imported = marker.read_text().count("imported")
    assert imported >= 1
    # At head: nothing pending, no version file imported.
    assert migrate().returncode == 0
    assert marker.read_text().count("imported") == imported
    # A new file is found and applied; 0009 is not pending, so not imported.
    copy.add("0010", "0009", message="new")
    assert migrate().returncode == 0
    assert heads_of(db_url) == ("0010",)
    assert marker.read_text().count("imported") == imported
    # A changed file is imported again, and an applied one edited is still a checksum mismatch.
    original = path.read_text()
    path.write_text(original.replace("def upgrade() -> None:\n", "def upgrade() -> None:\n    op.get_bind()\n"))
    refused = migrate(CHECKSUM_MISMATCH="error")
    assert "0009" in one_clean_line(refused, sa.make_url(db_url).password)
    assert "was edited after it was applied" in refused.stderr
    assert marker.read_text().count("imported") == imported + 1
    path.write_text(original)
    assert migrate(CHECKSUM_MISMATCH="error").returncode == 0
    # A removed file: the revision the database records is unknown, as before.
    (copy.versions / "0010_test.py").unlink()
    gone = migrate()
    assert "0010" in one_clean_line(gone, sa.make_url(db_url).password)
    assert heads_of(db_url) == ("0010",)


def test_a_pending_file_that_fails_to_import_stops_before_anything_runs(db_url: str, tmp_path: Path,
                                                                        own_cache: Path) -> None:
    """Unchanged text whose import now fails (it reads something else that changed): its Script came from the
    cache, but what runs is imported before the first step, so nothing of the plan ran."""
    copy = fixture_copy(tmp_path)
    flag = tmp_path / "broken"
    path = copy.add("0009", "0008", upgrade='op.create_table("t9", sa.Column("id", sa.Integer(), primary_key=True))',
                    downgrade='op.drop_table("t9")')
    path.write_text(path.read_text().replace(
        "import sqlalchemy as sa\n",
        f"import sqlalchemy as sa\nimport pathlib as _p\nif _p.Path({str(flag)!r}).exists():\n"
        "    raise ImportError('a helper this revision imports is broken')\n"))
    assert copy.manage("migrate", "-v0", "0007", db_url=db_url, in_process=True).returncode == 0
    flag.write_text("")
    failed = copy.manage("migrate", "-v0", db_url=db_url, in_process=True)
    assert failed.returncode == 1
    assert "a helper this revision imports is broken" in failed.stdout + failed.stderr
    assert heads_of(db_url) == ("0007",)  # not even 0008, which comes before it
    assert {r.revision for r in log_rows(db_url)} <= {f"000{i}" for i in range(1, 8)}


def test_alembic_listing_is_what_the_cache_mirrors() -> None:
    """_cached_revisions repeats ScriptDirectory._load_revisions with Alembic's private listing, filter and
    import: when Alembic changes those, so must we."""
    from alembic.script import ScriptDirectory, base

    source = inspect.getsource(ScriptDirectory._load_revisions)
    for call in ("Script._list_py_dir(self, vers)", "file_path.resolve()", "Script._from_path(self, real_path)",
                 "self._version_locations"):
        assert call in source
    assert "_only_source_rev_file.match(filename)" in inspect.getsource(base.Script._from_path)
    assert revision_facts.SOURCE_FILE.pattern == base._only_source_rev_file.pattern
    assert "self.revision_map = revision.RevisionMap(self._load_revisions)" in inspect.getsource(
        ScriptDirectory.__init__)
