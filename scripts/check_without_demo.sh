#!/usr/bin/env bash
# The tool's own tests with the demo gone, as docs/start.md leaves a project:
# copy this work tree (what git tracks or would add, uncommitted edits included) to a temporary
# directory, commit it there, run `scripts/start_project.py`, then run `pytest tests` in the copy.
# `make test` runs the tool's tests only here (the demo's, tests/demo, in the work tree), on pytest-xdist
# workers: it passes `-n 2 --dist loadgroup`; any arguments go to pytest. Uses this project's .venv; leaves
# nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
python="$root/.venv/bin/python"

work="$(mktemp -d -t without-demo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
copy="$work/project"
mkdir "$copy"

# Files git lists that still exist (a deleted, not yet committed file is listed but gone).
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' name; do
    if [ -e "$name" ] || [ -L "$name" ]; then printf '%s\0' "$name"; fi
done | tar --null --no-recursion -T - -cf - | tar -xf - -C "$copy"

cd "$copy"
git init -q
git add -A
git -c user.name=check -c user.email=check@localhost commit -qm "copy of the work tree"

"$python" scripts/start_project.py
# The copy's packages, not the work tree's editable install.
export PYTHONPATH="$copy"
"$python" -c 'import project, sys; sys.exit(0 if project.__file__.startswith(sys.argv[1]) else "project is not the copy")' "$copy"
"$python" manage.py check
# Every module the scaffold leaves imports (tests/test_new_project.py also starts the app on each engine).
"$python" -c 'import importlib, pkgutil, project.app as app
for module in pkgutil.walk_packages(app.__path__, "project.app."): importlib.import_module(module.name)'
started=$(date +%s)
"$python" -m pytest -q -p no:cacheprovider tests "$@"
echo "check_without_demo: the tool's tests passed without the demo in $(( $(date +%s) - started )) s."
