"""benchmarks/train_speed.py: a tiny run reports every variant with sane numbers.

The timings themselves are not checked (they depend on the machine and its load);
`make bench` runs the full-size measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "train_speed.py"
TINY = ["--train-size", "2000", "--epochs", "1", "--repeats", "1"]
TINY += ["--gemm-seconds", "0.2"]

pytestmark = pytest.mark.slow


def run_benchmark(
    out: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout


def torch_installed() -> bool:
    done = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, check=False
    )
    return done.returncode == 0


def test_tiny_run_reports_each_variant_with_sane_values(tmp_path: Path) -> None:
    report, table = run_benchmark(tmp_path / "bench.json")

    assert report["settings"]["train_size"] == 2000
    variants = report["variants"]
    assert set(variants) == {"a", "b", "c", "d"}
    expected_c = "ok" if torch_installed() else "skipped"
    assert variants["c"]["status"] == expected_c
    for name, v in variants.items():
        if v["status"] != "ok":
            continue
        assert v["runs"] == 1
        assert len(v["fit_s"]) == 1
        assert 0 < v["fit_s_min"] <= v["fit_s_median"] <= v["fit_s_max"]
        assert all(0.0 <= a <= 1.0 for a in v["test_accuracy"])
        assert v["test_accuracy_median"] > 0.5, f"{name} did not learn"
        assert v["peak_rss_mb"] > 0
        assert 0 < v["first_epoch_s_median"] <= v["fit_s_max"]
        assert v["later_epoch_s_median"] is None  # one epoch only
    assert variants["a"]["input_dtype"] == "float64"
    assert variants["b"]["input_dtype"] == "uint8"
    assert variants["d"]["input_dtype"] == "uint8"
    # One run each: its weights trivially match themselves; the key must be there.
    assert variants["b"]["same_weights_every_run"] is True
    assert variants["d"]["same_weights_every_run"] is True

    ratios = report["ratios"]
    medians = {n: v.get("fit_s_median") for n, v in variants.items()}
    assert ratios["b/a"] == pytest.approx(medians["b"] / medians["a"])
    assert ratios["d/b"] == pytest.approx(medians["d"] / medians["b"])
    if expected_c == "ok":
        assert ratios["b/c"] == pytest.approx(medians["b"] / medians["c"])
    else:
        assert ratios["b/c"] is None

    arithmetic = report["arithmetic"]
    assert arithmetic["gflop_per_epoch"] == pytest.approx(
        6 * (784 * 100 + 100 * 10) * 2000 / 1e9
    )
    assert arithmetic["gemm_gflops_training_shapes"] > 0
    assert 0 < arithmetic["lower_bound_s"] < medians["b"]

    for name in "abcd":
        assert f"| ({name}) " in table
    assert f"{medians['b']:.2f}" in table
    assert f"ratio b/a of the medians: {ratios['b/a']:.3f}" in table
    assert "lower bound" in table
    assert report["machine"]["cores"] >= 1


def test_pytorch_variant_is_reported_as_skipped_when_torch_is_missing(
    tmp_path: Path,
) -> None:
    # A package named torch that fails to import hides any installed PyTorch.
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no torch in this test')\n")
    path = os.pathsep.join(
        p for p in (str(fake.parent), os.environ.get("PYTHONPATH")) if p
    )

    report, table = run_benchmark(
        tmp_path / "bench.json", "--variants", "c", env={"PYTHONPATH": path}
    )

    c = report["variants"]["c"]
    assert c["status"] == "skipped"
    assert "PyTorch is not installed" in c["reason"]
    assert report["ratios"]["b/c"] is None
    assert "| (c) plain PyTorch loop, float32 | skipped" in table
    assert "ratio b/c of the medians: n/a" in table


def test_repeated_runs_of_the_course_training_end_with_the_same_weights(
    tmp_path: Path,
) -> None:
    report, table = run_benchmark(
        tmp_path / "bench.json", "--variants", "bd", "--repeats", "2"
    )

    for name in "bd":
        variant = report["variants"][name]
        assert variant["runs"] == 2
        assert variant["same_weights_every_run"] is True, f"({name}) is not seeded"
    assert "same weights every run" in table
