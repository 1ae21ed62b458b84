"""Every lesson fits in Binder's memory: its kernel peaks at 1.0 GB (1000 MB) or less.

Runs benchmarks/lesson_costs.py on each lesson, in a fresh kernel, and reads the
kernel's peak resident set size (VmHWM). 1.0 GB here is 1000 MB = 10^9 bytes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "lesson_costs.py"
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

spec = importlib.util.spec_from_file_location("lesson_costs", SCRIPT)
lesson_costs = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lesson_costs)

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").is_file(), reason="reads /proc (Linux only)"
)


def test_limit_is_one_gigabyte_in_megabytes_of_a_million_bytes() -> None:
    assert lesson_costs.LIMIT_MB == 1000.0


def test_table_has_a_row_per_lesson_and_marks_failures() -> None:
    costs = [
        lesson_costs.Cost("01_explore_mnist", 9.3, 1058),
        lesson_costs.Cost("02_build_the_ann", 12.0, 870, error="ValueError: boom"),
    ]
    assert lesson_costs.markdown_table(costs).splitlines() == [
        "| Lesson | Run time (s) | Peak memory (MB) |",
        "| --- | ---: | ---: |",
        "| `01_explore_mnist` | 9 | 1058 |",
        "| `02_build_the_ann` | failed | 870 |",
    ]


@needs_proc
def test_peak_rss_reads_this_process_high_water_mark() -> None:
    import os

    import numpy as np

    before = lesson_costs.peak_rss_mb(os.getpid())
    block = np.ones(50_000_000, dtype=np.uint8)  # 50 MB, touched
    after = lesson_costs.peak_rss_mb(os.getpid())
    assert block.sum() == 50_000_000
    assert after >= before
    assert after >= block.nbytes / 1e6


@pytest.mark.slow
@needs_proc
@pytest.mark.skipif(not LESSONS, reason="no lesson notebooks yet")
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.stem for lesson in LESSONS])
def test_lesson_peaks_at_one_gigabyte_or_less(lesson: Path, tmp_path: Path) -> None:
    results = tmp_path / "costs.json"
    run = subprocess.run(
        [sys.executable, SCRIPT, lesson, "--json", results],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert results.is_file(), run.stderr
    (cost,) = json.loads(results.read_text())
    assert cost["error"] == "", f"{lesson.name} failed: {cost['error']}"
    assert run.returncode == 0, run.stderr
    print(f"{lesson.stem}: {cost['runtime_s']} s, {cost['peak_rss_mb']} MB")
    assert cost["peak_rss_mb"] <= lesson_costs.LIMIT_MB, (
        f"{lesson.name} peaks at {cost['peak_rss_mb']} MB, over Binder's "
        f"{lesson_costs.LIMIT_MB:.0f} MB; the cells that raised the peak most:\n"
        + "\n".join(cost["growth"])
    )
