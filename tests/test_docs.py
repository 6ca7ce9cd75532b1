"""The manual (docs/ + mkdocs.yml) builds strictly, and a broken link or a broken anchor fails that build.

The build is `make docs-build`'s: `mkdocs build --strict`, where mkdocs.yml's `validation:` makes a link to a
page that does not exist, or to an anchor its page does not have, a warning and --strict makes any warning fatal.
Nothing here needs the demo: docs/ stays when scripts/start_project.py removes it (scripts/check_without_demo.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of project/mkdocs.yml into `site`."""
    # Material's banner about its end of life says nothing about this build.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(project / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real docs, built strictly once for this module."""
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT, out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    return out


def page_html(site: Path, page: str) -> Path:
    """Where MkDocs writes docs/<page> (directory URLs: start.md -> start/index.html)."""
    stem = page.removesuffix(".md")
    return site / "index.html" if stem == "index" else site / stem / "index.html"


def test_the_docs_build_strictly(site: Path) -> None:
    pages = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert "index.md" in pages and len(pages) > 5, pages
    for page in pages:
        assert page_html(site, page).is_file(), f"{page} was not built"


def test_readme_links_into_the_docs_reach_a_page_and_its_anchor(site: Path) -> None:
    """The front page's links into docs/ name pages that exist and anchors those pages have."""
    links = re.findall(r"\]\(docs/([^)#\s]+)(?:#([^)\s]+))?\)", (ROOT / "README.md").read_text())
    assert links, "README.md links to no page of docs/"
    for page, anchor in links:
        html = page_html(site, page)
        assert html.is_file(), f"README.md links to docs/{page}, which is not a page of the site"
        if anchor:
            assert f'id="{anchor}"' in html.read_text(), f"README.md links to docs/{page}#{anchor}: no such anchor"


def docs_copy(tmp_path: Path) -> Path:
    """mkdocs.yml and docs/ alone in a temporary folder: the build needs nothing else of the project."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy2(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", copy / "docs")
    return copy


@pytest.mark.parametrize(
    ("link", "named"),
    [
        ("[a page that is not there](no-such-page.md)", "contains a link 'no-such-page.md'"),
        ("[a section that is not there](start.md#no-such-section)", "does not contain an anchor '#no-such-section'"),
        ("[a section of this page that is not there](#no-such-section)", "contains a link '#no-such-section'"),
    ],
    ids=["page", "anchor-on-another-page", "anchor-on-the-same-page"],
)
def test_a_broken_link_fails_the_strict_build_naming_it(tmp_path: Path, link: str, named: str) -> None:
    copy = docs_copy(tmp_path)
    page = copy / "docs" / "commands.md"
    page.write_text(page.read_text() + f"\nSee {link}.\n")

    result = build(copy, tmp_path / "site")

    output = result.stdout + result.stderr
    assert result.returncode != 0, f"the strict build passed with {link}:\n{output}"
    assert "Aborted with 1 warnings in strict mode" in output, output
    warning = next((line for line in output.splitlines() if named in line), None)
    assert warning is not None, f"no warning names {link}:\n{output}"
    assert "'commands.md'" in warning, warning


def test_the_copy_without_a_broken_link_builds(tmp_path: Path) -> None:
    """The failures above come from the inserted link, not from copying docs/ and mkdocs.yml away."""
    result = build(docs_copy(tmp_path), tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
