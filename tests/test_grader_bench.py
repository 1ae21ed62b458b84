"""benchmarks/grade_speed.py: a smoke run on a handful of submissions (make test).

The full benchmark (40 submissions per exercise) is ``make bench-grade``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_reports_rates_speedup_memory_and_a_projection(tmp_path: Path):
    out = tmp_path / "grade_speed.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "grade_speed.py"),
            "--per-exercise",
            "3",
            "--exercise",
            "01_explore_mnist",
            "--out",
            str(out),
            "--out",
            str(tmp_path / "grade_speed.md"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["same_grades"] is True
    for run in ("serial", "parallel"):
        assert report[run]["submissions"] == 3
        assert report[run]["per_minute"] > 0
        assert report[run]["failed"] == []
        assert 50 < report[run]["peak_kernel_mib"] < 3 * 1024
    scores = {key: sum(s.values()) for key, s in report["serial"]["grades"].items()}
    assert scores == {
        "reference-000/01_explore_mnist": 10,
        "partial-001/01_explore_mnist": sum(scores.values()) - 10,
        "wrong-002/01_explore_mnist": 0,
    }
    assert 0 < scores["partial-001/01_explore_mnist"] < 10
    assert report["projection"]["minutes_500x4_on_16_cores"] > 0
    assert report["grader_peak_mib"] > 0
    text = (tmp_path / "grade_speed.md").read_text()
    assert "Speed-up with 2 workers" in text and "Projection" in text
