"""`check --deploy`: production settings sanity, and passwords in committed files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from project.core.conf import ImproperlyConfigured, load_settings, project_dir
from project.core.inspection.problem import Problem

PLACEHOLDER_PASSWORDS = {"password", "***", "secret", "changeme", "xxx", "..."}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Names reserved for documentation and tests (RFC 2606, RFC 6761): never a real server.
RESERVED_DOMAINS = (".invalid", ".example", ".test", ".localhost", "example.com", "example.org", "example.net")
# Test code holds made-up URLs on purpose; only the real production password is looked for there.
HEURISTIC_SKIP_DIRS = {"tests"}


def deploy_problems(settings_name: str = "prod") -> list[Problem]:
    from sqlalchemy.engine import make_url

    try:
        settings = load_settings(settings_name)
    except ImproperlyConfigured as exc:
        return [Problem(f"deploy: {exc}")]
    problems = []
    url = make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        problems.append(Problem(f"deploy: {settings.module_name}.DATABASE_URL is SQLite: production needs a "
                                "server database (PROD_DATABASE_URL=postgresql+psycopg2://...)"))
    if settings.get("DEBUG"):
        problems.append(Problem(f"deploy: DEBUG is on in {settings.module_name}: turn it off in production"))
    if not settings.get("CONFIRM_DESTRUCTIVE"):
        problems.append(Problem(f"deploy: CONFIRM_DESTRUCTIVE is off in {settings.module_name}: a migrate could "
                                "drop data without asking (set CONFIRM_DESTRUCTIVE=1)"))
    problems += committed_secret_problems(url.password)
    return problems


def tracked_files(root: Path | None = None) -> list[Path]:
    root = root or project_dir()
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [root / name for name in out.split("\0") if name]


def committed_secret_problems(password: str | None = None, root: Path | None = None) -> list[Problem]:
    """Tracked files that hold a database password: the production one, or any URL with an inline password.

    Placeholders (PASSWORD, ***...), loopback hosts (a throwaway local server's default), reserved example
    domains (db.invalid, db.example.com) and made-up URLs under tests/ do not count.
    The password itself is never printed.
    """
    root = root or project_dir()
    problems = []
    for path in tracked_files(root):
        if path.name == ".env":
            problems.append(Problem("deploy: .env is committed: remove it from git (keep .env.example)", path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if password and len(password) >= 4 and password in line:
                problems.append(Problem("deploy: the production database password is in a committed file",
                                        path, number))
            elif path.relative_to(root).parts[0] not in HEURISTIC_SKIP_DIRS and _inline_password(line):
                problems.append(Problem("deploy: a database URL with an inline password is committed: "
                                        "read it from the environment instead", path, number))
    return problems


def _inline_password(line: str) -> bool:
    from sqlalchemy.engine import make_url

    for word in line.replace('"', " ").replace("'", " ").replace("=", " ").split():
        if "://" not in word or "@" not in word:
            continue
        try:
            url = make_url(word.strip("(),;"))
        except Exception:
            continue
        password = url.password
        host = (url.host or "").lower()
        if not password or host in LOOPBACK_HOSTS or host.endswith(RESERVED_DOMAINS):
            continue
        if password.lower() in PLACEHOLDER_PASSWORDS or password.startswith(("$", "<", "{")):
            continue
        return True
    return False
