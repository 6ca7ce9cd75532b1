"""What users see on long work: a line per revision with its time, a progress bar on terminals, a summary.

On the fixture application's history (tests/fixture_app, eight revisions)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, fixture_env, run_manage

SUMMARY = re.compile(r"^Applied 8 migration\(s\) in \d+\.\d\ds; slowest: \w+ .+ \(\d+\.\d{3}s\)\.$", re.M)


def test_piped_output_has_plain_lines_and_a_summary(tmp_path: Path) -> None:
    env = fixture_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run_manage("migrate", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    applied = [line for line in lines if line.startswith("  Applying ")]
    assert len(applied) == 8
    assert all(re.fullmatch(r"  Applying \w+ .+\.\.\. OK \(\d+\.\d{3}s\)", line) for line in applied), applied
    assert SUMMARY.search(result.stdout), result.stdout
    assert "\x1b" not in result.stdout and "━" not in result.stdout

    down = run_manage("migrate", "zero", env=env)
    assert re.search(r"^Unapplied 8 migration\(s\) in .+; slowest: ", down.stdout, re.M), down.stdout


def test_nothing_to_do_prints_no_summary(tmp_path: Path) -> None:
    env = fixture_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    run_manage("migrate", env=env)
    again = run_manage("migrate", env=env)
    assert "No migrations to apply." in again.stdout
    assert "slowest" not in again.stdout


def test_terminal_gets_a_progress_bar_with_count(tmp_path: Path) -> None:
    env = {**os.environ, **fixture_env(f"sqlite:///{tmp_path / 'db.sqlite3'}"),
           "TERM": "xterm", "COLUMNS": "120"}
    env.pop("CI", None)
    env.pop("NO_COLOR", None)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "migrate"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert "8/8" in screen  # the bar's count (rich MofNCompleteColumn)
    assert re.search(r"Applying 0008 .+\.\.\. OK \(\d+\.\d{3}s\)", screen), screen
    assert re.search(r"Applied 8 migration\(s\) in .+; slowest: ", screen), screen
