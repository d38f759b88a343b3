"""Golden traces: rule-only runs of the three shipped scenarios give the same tick records.

Each case is ``python run.py simulate NAME --minutes 2 --seed 3`` with no persona humans;
the hash is over the decompressed ``trace.jsonl.gz`` lines after the header (``zcat
trace.jsonl.gz | tail -n +2 | sha256sum``): positions, speeds, signals, events, per tick.

When a change moves these on purpose (a physics fix, a new column in the trace), rerun
the three commands, check that what changed is what you meant (``python run.py inspect``
both runs, or diff the decoded ticks), update the hashes here, and say why in the commit
message and the issue note. A refactor must never need to touch them.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest
from rich.console import Console

from twin.run import simulate

GOLDEN = {  # first 16 hex digits of SHA-256 over the tick records
    "highway": "d080c33e5949fffe",
    "intersection": "1da5bd9e2f248f68",
    "crosswalk": "2cc657f5dc1bd83d",
}
NO_PERSONAS = {"humans.drivers": [], "humans.pedestrians": [], "humans.operators": []}


@pytest.mark.parametrize("scenario", sorted(GOLDEN))
def test_rule_only_runs_keep_their_golden_tick_records(scenario, tmp_path):
    simulate(scenario, minutes=2, overrides={"seed": 3, **NO_PERSONAS}, out=tmp_path,
             console=Console(quiet=True))
    with gzip.open(tmp_path / "trace.jsonl.gz", "rb") as trace:
        trace.readline()  # the header
        digest = hashlib.sha256(trace.read()).hexdigest()
    assert digest[:16] == GOLDEN[scenario], f"{scenario}: tick records moved (see this module's docstring)"
