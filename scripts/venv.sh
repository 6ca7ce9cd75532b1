#!/usr/bin/env bash
# Create .venv with Python >= 3.11 and install the project into it (extras in $1, e.g. "test").
# On a fresh Debian, `python3 -m venv` needs the python3-venv package: install it when we can.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv .venv
        else
            echo "error: '$python -m venv' failed: install python3-venv (apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    .venv/bin/python -m pip install -q --upgrade pip
fi

spec="."
[ -n "$extras" ] && spec=".[$extras]"
# Quiet unless something goes wrong: pip's own errors still reach stderr.
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
