"""Wall time per rule of a Snakemake run, read from its log (``.snakemake/log/*.snakemake.log``).

Each job's start is the timestamp above its ``rule``/``localrule`` line, its end the timestamp above its
``Finished jobid: N`` line; jobs run side by side (``--cores 2``), so the per-rule sums can add up to more than
the run's wall time, which is printed last (first to last timestamp).

    python scripts/rule_times.py .snakemake/log/2026-12-02T080000.000000.snakemake.log [--md]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
END = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def rule_times(lines: list[str]) -> tuple[dict[str, list[float]], float]:
    """{rule: [seconds per job]} and the run's wall time (s)."""
    now: datetime | None = None
    first: datetime | None = None
    pending_rule: str | None = None
    started: dict[str, tuple[str, datetime]] = {}
    out: dict[str, list[float]] = defaultdict(list)
    for line in lines:
        line = line.rstrip("\n")
        if m := STAMP.match(line):
            now = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            first = first or now
        elif m := START.match(line):
            pending_rule = m.group(1)
        elif (m := JOBID.match(line)) and pending_rule and now is not None:
            started[m.group(1)] = (pending_rule, now)
            pending_rule = None
        elif (m := END.match(line)) and now is not None and m.group(1) in started:
            rule, t0 = started.pop(m.group(1))
            out[rule].append((now - t0).total_seconds())
    wall = (now - first).total_seconds() if now and first else 0.0
    return dict(out), wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("log", type=Path)
    p.add_argument("--md", action="store_true", help="a Markdown table")
    args = p.parse_args(argv)
    try:
        lines = args.log.read_text().splitlines()
    except OSError as e:
        print(f"error: {args.log}: {e}", file=sys.stderr)
        return 2
    times, wall = rule_times(lines)
    if not times:
        print(f"error: {args.log}: no finished jobs found (not a Snakemake log?)", file=sys.stderr)
        return 2
    rows = sorted(times.items(), key=lambda kv: -sum(kv[1]))
    if args.md:
        print("| rule | jobs | total | longest job |\n|---|---|---|---|")
    for rule, secs in rows:
        total, longest = sum(secs), max(secs)
        if args.md:
            print(f"| {rule} | {len(secs)} | {total / 60:.1f} min | {longest / 60:.1f} min |")
        else:
            print(f"{rule:24s} jobs {len(secs):3d}  total {total / 60:6.1f} min  longest {longest / 60:5.1f} min")
    print(f"{'(wall, first to last line)':24s} {wall / 60:.1f} min ({sum(len(s) for s in times.values())} jobs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
