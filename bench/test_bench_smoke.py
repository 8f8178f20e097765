"""Every bench script runs end to end at a tiny size and reports its ratios.

The figures in bench/README.md come from full-size runs; this only keeps the scripts working.
A new bench script adds its tiny command line to ``TINY_RUNS``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent

#: script -> arguments for a run of a few seconds
TINY_RUNS = {
    "store_throughput.py": ["--mib", "2", "--repeats", "1"],
    "decoding_bench.py": ["--units", "8", "--bins", "800", "--epochs", "3", "--hidden", "16", "--learning-rate", "0.01",
                          "--repeats", "1"],
    "reduction_bench.py": ["--rows", "2000", "--cols", "20", "--components", "3", "--repeats", "1",
                           "--lorenz-trials", "20", "--lorenz-time", "10", "--lorenz-neurons", "12", "--lfads-epochs", "1"],
    "segmentation_bench.py": ["--tiny"],
    "simulation_bench.py": ["--tiny"],
    "connectomics_bench.py": ["--tiny"],
    "gateway_bench.py": ["--tiny"],
}


def test_every_bench_script_has_a_tiny_run():
    scripts = {p.name for p in BENCH.glob("*.py") if not p.name.startswith("test_")}
    assert scripts == set(TINY_RUNS)


@pytest.mark.integration
@pytest.mark.parametrize("script", sorted(TINY_RUNS))
def test_bench_script_runs_tiny_and_reports_ratios(script, tmp_path):
    result_path = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), *TINY_RUNS[script], "--json", str(result_path)],
                          cwd=BENCH.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ratio" in proc.stdout
    ratios = json.loads(result_path.read_text())["ratio"]
    assert ratios and all(value > 0 for value in ratios.values())
