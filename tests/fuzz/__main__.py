"""The long fuzz run (`make fuzz`): many seeds on throwaway servers, then the figures.

    python -m tests.fuzz --seeds 50 --steps 8        # seeds 1..50
    python -m tests.fuzz --seed 17 --steps 8 -v     # replay one seed, showing each step's changes
    python -m tests.fuzz --seed 17 --keep           # ... and keep its project copy to read the generated files

Exit status 1 when anything failed. Kinds that tests/test_fuzz.py's KNOWN lists are marked with their issue item.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .harness import ENGINES, ROOT, Databases, SeedResult, run_seed
from .report import summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50, help="Run seeds 1..N (default 50).")
    parser.add_argument("--first", type=int, default=1, help="The first seed of --seeds (default 1).")
    parser.add_argument("--seed", type=int, action="append", help="Run this seed only (repeatable): a replay.")
    parser.add_argument("--steps", type=int, default=8, help="Steps (makemigrations) per seed (default 8).")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"Comma-separated, among {', '.join(ENGINES)} (default: all three).")
    parser.add_argument("--keep", action="store_true", help="Keep each seed's project copy and print where.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Show each step's changes as it runs.")
    args = parser.parse_args(argv)
    engines = tuple(e for e in args.engines.split(",") if e)
    unknown = set(engines) - set(ENGINES)
    if unknown:
        print(f"error: unknown engine {', '.join(sorted(unknown))}: choose among {', '.join(ENGINES)}",
              file=sys.stderr)
        return 2
    seeds = args.seed or list(range(args.first, args.first + args.seeds))

    sys.path.insert(0, str(ROOT / "scripts"))
    import dbservers

    base = Path(tempfile.mkdtemp(prefix="fuzz-"))
    servers = {}
    try:
        if "postgresql" in engines:
            servers["postgresql"] = dbservers.start_postgres(base / "postgres")
        if "mysql" in engines:
            servers["mysql"] = dbservers.start_mariadb(base / "mariadb")
        results: list[SeedResult] = []
        started = time.monotonic()
        for seed in seeds:
            workdir = base / f"seed-{seed}"
            workdir.mkdir()
            result = run_seed(seed, args.steps, Databases(workdir, servers), workdir, engines,
                              log=print if args.verbose else None)
            results.append(result)
            kinds = sorted({f.kind for f in result.failures})
            print(f"seed {seed}: {result.revisions} revisions, {len(result.failures)} failures"
                  f"{' (' + '; '.join(kinds) + ')' if kinds else ''}, {result.seconds:.0f} s", flush=True)
            if args.keep:
                print(f"  project copy: {result.project}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        print(f"\n{summary(results, _known())}\n(wall clock {time.monotonic() - started:.0f} s)")
        return 1 if any(r.failures for r in results) else 0
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _known() -> dict[str, str]:
    """tests/test_fuzz.py's allow-list, to mark the kinds already reported (nothing when it cannot be read)."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_fuzz import KNOWN
    except Exception:
        return {}
    return dict(KNOWN)


if __name__ == "__main__":
    sys.exit(main())
