"""Measure what each lesson costs: run time and the kernel's peak memory.

Each lesson runs top to bottom in a fresh kernel (nbclient), the way a student runs it
with Restart Kernel and Run All Cells. The run time is the time from the first cell to
the end of the last one (the kernel's start-up is not counted); the peak memory is the
kernel process's peak resident set size, ``VmHWM`` in ``/proc/<pid>/status``, read after
the last cell. The lessons run in a temporary copy of their folder, in the order given,
so files a lesson saves do not land in the repository.

Units: MB is 10^6 bytes; the course's limit of 1.0 GB per lesson is 1000 MB (10^9
bytes, a little stricter than 1 GiB), to stay within Binder's 1 to 2 GB with the Jupyter
server beside the kernel.

Usage (from the repository root, in the course's environment)::

    python benchmarks/lesson_costs.py                  # every notebooks/NN_*.ipynb
    python benchmarks/lesson_costs.py notebooks/03_train_the_ann.ipynb
    python benchmarks/lesson_costs.py --output build/lesson_costs.md --json costs.json

Linux only (``/proc``). Measure on a quiet machine: other work slows the lessons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_MB = 1000.0
"""A lesson's kernel may use at most 1.0 GB = 1000 MB (10^9 bytes) at its peak."""


@dataclass
class Cost:
    lesson: str
    runtime_s: float
    peak_rss_mb: float
    error: str = ""
    growth: list[str] = field(default_factory=list)
    """The cells that raised the peak most, e.g. ``"cell 12 (+230 MB): x = ..."``."""


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process in MB (10^6 bytes), from VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            kib = int(line.split()[1])
            return kib * 1024 / 1e6
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def measure(notebook: Path, timeout_s: int = 1800) -> Cost:
    """Run ``notebook`` in a fresh kernel, in its own folder; return its cost."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout_s,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    error = ""
    growth = []
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        started = time.perf_counter()
        peak = peak_rss_mb(pid)
        try:
            for index, cell in enumerate(client.nb.cells):
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    before, peak = peak, peak_rss_mb(pid)
                    first_line = cell.source.strip().split("\n")[0][:60]
                    growth.append((peak - before, index, first_line))
        except CellExecutionError as failure:
            error = f"cell {index}: {failure.ename}: {failure.evalue}"
        runtime = time.perf_counter() - started
        peak = peak_rss_mb(pid)
    biggest = sorted(growth, reverse=True)[:3]
    return Cost(
        notebook.stem,
        round(runtime, 1),
        round(peak),
        error,
        [f"cell {i} (+{mb:.0f} MB): {line}" for mb, i, line in biggest if mb >= 1],
    )


def markdown_table(costs: list[Cost]) -> str:
    lines = [
        "| Lesson | Run time (s) | Peak memory (MB) |",
        "| --- | ---: | ---: |",
    ]
    for cost in costs:
        runtime = f"{cost.runtime_s:.0f}" if not cost.error else "failed"
        lines.append(f"| `{cost.lesson}` | {runtime} | {cost.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at the end {load}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="lessons to measure, in order (default: notebooks/[0-9][0-9]_*.ipynb)",
    )
    parser.add_argument("--output", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--timeout", type=int, default=1800, help="seconds a cell may run"
    )
    args = parser.parse_args(argv)

    lessons = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not lessons:
        parser.error("no lessons found")
    # TensorFlow reads its log level at start-up; every kernel inherits this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    costs = []
    with tempfile.TemporaryDirectory(prefix="lesson-costs-") as scratch:
        copies: dict[Path, Path] = {}
        for lesson in lessons:
            folder = lesson.resolve().parent
            if folder not in copies:
                copies[folder] = Path(scratch) / str(len(copies))
                shutil.copytree(
                    folder,
                    copies[folder],
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
                )
            cost = measure(copies[folder] / lesson.name, args.timeout)
            costs.append(cost)
            print(
                f"{cost.lesson}: {cost.runtime_s:.1f} s, {cost.peak_rss_mb:.0f} MB"
                + (f", FAILED: {cost.error}" if cost.error else "")
                + "".join(f"\n    peak grew in {cell}" for cell in cost.growth),
                file=sys.stderr,
                flush=True,
            )

    table = markdown_table(costs)
    note = (
        f"Peak memory: the kernel's peak resident set size (VmHWM), MB = 10^6 bytes. "
        f"Measured on {machine()}."
    )
    print(f"{table}\n\n{note}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(f"{table}\n\n{note}\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(cost) for cost in costs], indent=2))
    return 1 if any(cost.error for cost in costs) else 0


if __name__ == "__main__":
    sys.exit(main())
