"""The figures of a fuzz run: seeds x steps x engines, failures by kind, and each failure with its replay."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .harness import Failure, SeedResult


def summary(results: list[SeedResult], known: Mapping[str, str] | None = None, *, each: bool = True) -> str:
    """The run's figures; `known` (kind -> the issue item that fixes it) marks the kinds already reported."""
    known = known or {}
    lines = []
    if results:
        steps, engines = results[0].steps, results[0].engines
        seconds = sum(r.seconds for r in results)
        lines.append(f"fuzz: {len(results)} seeds x {steps} steps x {len(engines)} engines ({', '.join(engines)}): "
                     f"{sum(r.engine_steps for r in results)} engine-steps run, "
                     f"{sum(r.revisions for r in results)} revisions written, {seconds:.0f} s")
    failures = [f for r in results for f in r.failures]
    if not failures:
        lines.append("failures: none")
        return "\n".join(lines)
    if each:  # the failures first, the table last: a long run ends on its figures
        lines.append(f"each failure (replay one seed: python -m tests.fuzz --seed N --steps {results[0].steps} -v):")
        lines += list(_each(failures))
    kinds: dict[str, list[Failure]] = {}
    for failure in failures:
        kinds.setdefault(failure.kind, []).append(failure)
    failed_seeds = {f.seed for f in failures}
    lines.append(f"failures: {len(failures)} of {len(kinds)} kinds, in {len(failed_seeds)} of {len(results)} seeds "
                 "(kind, count, seeds, engines, a seed to replay it with, and why it fails):")
    width = max(len(kind) for kind in kinds)
    for kind, found in sorted(kinds.items(), key=lambda item: (-len({f.seed for f in item[1]}), item[0])):
        seeds = sorted({f.seed for f in found})
        engines = sorted({f.engine for f in found if f.engine}) or ["-"]
        first = min(found, key=lambda f: f.seed)  # the first seed, where it first failed
        mark = f"known: {known[kind]}" if kind in known else "NEW"
        lines.append(f"  {kind:<{width}}  {len(found):3d} in {len(seeds):2d} seeds  {','.join(engines):<24} "
                     f"--seed {first.seed:<3d} ({first.where})  [{mark}]")
    if each:
        lines.append(lines[0])  # the run's figures again, under the table
    return "\n".join(lines)


def _each(failures: Iterable[Failure]) -> Iterable[str]:
    """Failures grouped when the same thing failed the same way on several engines."""
    grouped: dict[tuple[int, str, str, str, str | None], list[Failure]] = {}
    for failure in failures:
        grouped.setdefault((failure.seed, failure.where, failure.kind, failure.what, failure.file), []).append(failure)
    for (seed, where, kind, what, file), found in grouped.items():
        engines = ", ".join(f.engine for f in found if f.engine)
        yield f"- seed {seed} {where}{f' [{engines}]' if engines else ''}: {kind}"
        yield f"    {what}"
        if file:
            yield f"    file: {file}"
        for detail in found[0].details:
            yield f"    {detail}"
