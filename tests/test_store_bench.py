"""`benchmarks/bench_store.py` runs tiny (a few cells, local only) and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_store_runs_tiny_and_prints_json_then_a_summary(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks/bench_store.py"), "--cells", "12"]
    cmd += ["--only", "local", "--keep", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
    text, summary = proc.stdout.rsplit("\n}\n", 1)
    report = json.loads(text + "\n}")
    assert summary.startswith("bench_store")
    (size,) = report["sizes"]
    assert size["cells"] == 12
    local = size["backends"]["local"]
    assert local["after run"]["parts"]["trials"] == 1  # the end-of-run compaction
    assert local["mid-run"]["parts"]["trials"] == 12  # fewer than COMPACT_AFTER: not merged
    for layout in ("mid-run", "after run"):
        for command in ("status", "status SWEEP", "figures", "tables", "verify"):
            assert local[layout][command]["wall_s"] > 0 and local[layout][command]["rss_mb"] > 50
    # the store it wrote reads back whole: 12 cells, each with its epochs
    import pandas as pd

    trials = pd.read_parquet(tmp_path / "store-12" / "trials")
    assert len(trials) == 12 and trials["cell_id"].is_unique
