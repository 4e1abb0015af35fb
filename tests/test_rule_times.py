"""scripts/rule_times.py: wall time per rule from a Snakemake log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG = """Building DAG of jobs...
[Wed Dec  2 07:39:16 2026]
localrule shard:
    output: results/x/data/train
    jobid: 3
    reason: Missing output files
[Wed Dec  2 07:39:20 2026]
rule train:
    jobid: 7
    wildcards: run=img4
[Wed Dec  2 07:39:46 2026]
Finished jobid: 3 (Rule: shard)
[Wed Dec  2 07:49:20 2026]
Finished jobid: 7 (Rule: train)
"""


def test_rule_times_per_rule_and_wall(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    from rule_times import rule_times

    times, wall = rule_times(LOG.splitlines())
    assert times == {"shard": [30.0], "train": [600.0]}
    assert wall == 604.0
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "rule_times.py"), str(log), "--md"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "| train | 1 | 10.0 min | 10.0 min |" in r.stdout, r.stdout + r.stderr
    (tmp_path / "empty.log").write_text("nothing\n")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "rule_times.py"), str(tmp_path / "empty.log")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "empty.log" in r.stderr
