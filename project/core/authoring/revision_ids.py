"""The ids of the revisions makemigrations writes: `0010_3fa2c1`, a sequence number and a suffix.

The number makes ids, and the files named after them (`0010_3fa2c1_add_tags.py`), read in the order they
were written, as Django's `0010_add_tags` do. The suffix makes them unique across branches: two developers
who branch from 0009 and each run makemigrations get `0010_3fa2c1` and `0010_9b07e4`, so after the git merge
both revisions are in the history (two heads, which `makemigrations --merge` joins), where a bare `0010` in
both would have left Alembic one of the two files and silently ignored the other. Alembic's own ids are
unique too, but random: they do not read in order.

The suffix is six hex digits of a hash of what the revision is: its parents, its message and its rendered
operations. Different revisions get different ids, and the same models on the same history give the same
file, id included, run after run. Two branches that write the very same revision (same parent, same change,
same message) get the same id and file name: git then shows one file changed on both sides, and one
revision is what the merged models need. An empty revision (`--empty`) is filled by hand afterwards, so
its content says nothing yet: its suffix is random. 16.7 million values make a clash between the few
revisions written in parallel negligible; `check` still names any id two files share.

Histories written before keep their ids: `0001`-style ids count in the sequence (the next is `0009_...`
after `0008`), as do ids named by hand after a number (`0011_fix_totals`); a history with any other id
(Alembic's random hex ids) keeps getting Alembic's ids. Every id
is far below the 32 characters of `alembic_version.version_num`, and a unique prefix (`migrate 0010`) still
names a revision wherever one is asked for.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

# 0008 (the ids written before), 0010_3fa2c1 (written since) or 0011_fix_totals (named by hand, Django's way).
# Alembic's own ids (12 hex digits, no underscore) are not numbered, unless all their digits happen to be.
_SEQUENCED = re.compile(r"(?P<number>\d+)(?:_\w+)?")
SUFFIX_DIGITS = 6


def next_revision_id(existing: Iterable[str], content: str | None = None) -> str | None:
    """The id for a new revision after `existing` (every id in the history), its suffix derived from `content`
    (random without); None for a history whose ids are not numbered: Alembic's random id."""
    numbers = []
    for revision in existing:
        match = _SEQUENCED.fullmatch(revision)
        if match is None:
            return None
        numbers.append(int(match["number"]))
    if content is None:
        suffix = secrets.token_hex(SUFFIX_DIGITS // 2)
    else:
        suffix = hashlib.sha256(content.encode()).hexdigest()[:SUFFIX_DIGITS]
    return f"{max(numbers, default=0) + 1:04d}_{suffix}"


def revision_content(parents: Iterable[str], message: str, *code: str) -> str:
    """What a revision is, for its id: its parents, its message and its operations as the file renders them."""
    return "\0".join([",".join(sorted(parents)), message, *code])
