"""Time grading a generated class: one worker against several, in the real sandbox.

The class: for each exercise, ``--per-exercise`` submissions (40 by default) that cycle
through three kinds built from the release: the reference answers, a partly correct
notebook (every other answer cell left as released) and the untouched release. The
course is graded twice in a temporary copy of notebooks/exercises: once with one worker
(in the grader's process), once with ``--workers`` Dask workers (regrading everything);
both must give the same grades.

Reported: submissions per minute for each run and the speed-up, the mean time per
submission of each exercise, the grader process's peak memory (RSS) and the peak of one
kernel (its cgroup's high-water mark), the load average while it ran, and a projection
for a class of 500 students x 4 exercises on a 16-core machine:

    time = 500 x (sum over exercises of the mean serial seconds per submission)
           / (16 x parallel efficiency measured here)

once with the class's mix of kinds, and once with the reference submissions' means
alone (every student hands in complete work: the slowest class to grade).

(the parallel efficiency is the speed-up divided by the number of workers; the
projection assumes cores as fast as these and memory for 16 workers' kernels).

    python benchmarks/grade_speed.py --out build/grade_speed.md  # make bench-grade
    python benchmarks/grade_speed.py --per-exercise 3 --exercise 01_explore_mnist
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import cli, pipeline, pool, sandbox  # noqa: E402
from grader.submission import find_submissions  # noqa: E402

COURSE = ROOT / "notebooks" / "exercises"
KINDS = ("reference", "partial", "wrong")


def solutions(course: Path, assignment: str) -> dict[str, str]:
    nb = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", 4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = "\n".join(
                line
                for line in cell.source.splitlines()
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
    return answers


def make_class(course: Path, assignments: list[str], per_exercise: int) -> None:
    """Write ``per_exercise`` submissions of each kind in turn, for each exercise."""
    for assignment in assignments:
        release = nbformat.read(
            course / "release" / assignment / f"{assignment}.ipynb", 4
        )
        answers = solutions(course, assignment)
        partial = {k: v for i, (k, v) in enumerate(answers.items()) if i % 2 == 0}
        for number in range(per_exercise):
            kind = KINDS[number % len(KINDS)]
            nb = copy.deepcopy(release)
            chosen = {"reference": answers, "partial": partial, "wrong": {}}[kind]
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in chosen:
                    cell.source = chosen[grade_id]
            folder = course / "submitted" / f"{kind}-{number:03d}" / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / f"{assignment}.ipynb")


def grade_run(course: Path, settings, workers: int, force: bool) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        found = find_submissions(course, gradebook)
    load_before = os.getloadavg()
    started = time.monotonic()
    outcomes, _ = pool.grade_all(course, found, settings, workers=workers, force=force)
    seconds = time.monotonic() - started
    per_exercise: dict[str, list[float]] = {}
    per_kind: dict[str, dict[str, list[float]]] = {}
    kernels: list[int] = []
    for outcome in outcomes:
        per_exercise.setdefault(outcome.assignment, []).append(outcome.seconds)
        kind = outcome.student.split("-")[0]
        per_kind.setdefault(kind, {}).setdefault(outcome.assignment, []).append(
            outcome.seconds
        )
        kernels += list(outcome.peak_memory.values())
    return {
        "workers": workers,
        "submissions": len(outcomes),
        "seconds": round(seconds, 1),
        "per_minute": round(len(outcomes) / seconds * 60, 2),
        "mean_seconds": {
            a: round(sum(t) / len(t), 2) for a, t in sorted(per_exercise.items())
        },
        "mean_seconds_by_kind": {
            kind: {a: round(sum(t) / len(t), 2) for a, t in sorted(by.items())}
            for kind, by in sorted(per_kind.items())
        },
        "peak_kernel_mib": round(max(kernels, default=0) / 2**20),
        "load_average": [round(x, 1) for x in (*load_before, *os.getloadavg())],
        "grades": {
            f"{o.student}/{o.assignment}": o.scores
            for o in sorted(outcomes, key=lambda o: (o.student, o.assignment))
        },
        "failed": [
            f"{o.student}/{o.assignment}: {o.reason}"
            for o in outcomes
            if o.status != "graded"
        ],
    }


def project(serial: dict, speedup: float, workers: int) -> dict:
    """Minutes for 500 students x 4 exercises on 16 cores, from the serial means: for
    this class's mix of kinds, and for a class where every student hands in complete
    work (the reference submissions' means, the slowest kind to grade)."""
    efficiency = min(1.0, speedup / workers)

    def minutes(means: dict[str, float]) -> tuple[float, float]:
        per_student = sum(means.values())
        if len(means) < 4:  # scale a partial class to four exercises
            per_student *= 4 / len(means)
        return per_student, 500 * per_student / (16 * efficiency) / 60

    mix, mix_minutes = minutes(serial["mean_seconds"])
    complete, complete_minutes = minutes(
        serial["mean_seconds_by_kind"].get("reference", serial["mean_seconds"])
    )
    return {
        "serial_seconds_per_student": round(mix, 1),
        "parallel_efficiency": round(efficiency, 2),
        "minutes_500x4_on_16_cores": round(mix_minutes, 1),
        "serial_seconds_per_complete_student": round(complete, 1),
        "minutes_500x4_complete_on_16_cores": round(complete_minutes, 1),
    }


def markdown(result: dict) -> str:
    serial, parallel = result["serial"], result["parallel"]
    p = result["projection"]
    lines = [
        "# Grading speed",
        "",
        f"{result['submissions_per_exercise']} submissions per exercise "
        f"({', '.join(result['exercises'])}), kinds {', '.join(KINDS)}; "
        f"{result['cores']} cores; sandbox {'on' if result['sandboxed'] else 'OFF'}.",
        "",
        "| run | submissions | seconds | per minute | load average (1/5/15 min, "
        "before → after) |",
        "|---|---|---|---|---|",
    ]
    for run in (serial, parallel):
        load = run["load_average"]
        lines.append(
            f"| {run['workers']} worker(s) | {run['submissions']} | {run['seconds']} "
            f"| {run['per_minute']} | {load[0]}/{load[1]}/{load[2]} → "
            f"{load[3]}/{load[4]}/{load[5]} |"
        )
    lines += [
        "",
        f"Speed-up with {parallel['workers']} workers: **{result['speedup']:.2f}×**; "
        f"same grades as one worker: **{result['same_grades']}**.",
        "",
        "Mean seconds per submission (one worker): "
        + ", ".join(f"{a} {t}" for a, t in serial["mean_seconds"].items()),
        "",
        *(
            f"- {kind}: " + ", ".join(f"{a} {t}" for a, t in means.items())
            for kind, means in serial["mean_seconds_by_kind"].items()
        ),
        "",
        f"Peak memory: grader process {result['grader_peak_mib']} MiB, one kernel "
        f"{max(serial['peak_kernel_mib'], parallel['peak_kernel_mib'])} MiB.",
        "",
        f"Projection, 500 students × 4 exercises on 16 cores: 500 × "
        f"{p['serial_seconds_per_student']} s / (16 × {p['parallel_efficiency']}) = "
        f"**{p['minutes_500x4_on_16_cores']} minutes** for this mix of kinds; "
        f"500 × {p['serial_seconds_per_complete_student']} s / "
        f"(16 × {p['parallel_efficiency']}) = "
        f"**{p['minutes_500x4_complete_on_16_cores']} minutes** if every student "
        "hands in complete work.",
    ]
    if serial["failed"] or parallel["failed"]:
        lines += ["", "Failed submissions:", *serial["failed"], *parallel["failed"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-exercise", type=int, default=40)
    parser.add_argument("--exercise", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", action="append", default=[], type=Path)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_sandbox:
        sandbox.require()
    work = Path(tempfile.mkdtemp(prefix="grade-speed-"))
    course = work / "exercises"
    try:
        shutil.copytree(
            COURSE,
            course,
            ignore=shutil.ignore_patterns(
                "release",
                "submitted",
                "autograded",
                "feedback",
                "gradebook.db*",
                "reports",
                "*.csv",
                "__pycache__",
            ),
        )
        if cli.main(["release", "--course", str(course)]) != 0:
            return 1
        exercises = args.exercise or sorted(
            p.name for p in (course / "source").iterdir() if p.is_dir()
        )
        make_class(course, exercises, args.per_exercise)
        cores = pool.default_workers()
        serial_settings = pipeline.Settings(
            limits=sandbox.Limits(threads=1), sandboxed=not args.no_sandbox
        )
        serial = grade_run(course, serial_settings, 1, force=True)
        parallel = grade_run(course, serial_settings, args.workers, force=True)
        speedup = serial["seconds"] / parallel["seconds"]
        result = {
            "submissions_per_exercise": args.per_exercise,
            "exercises": exercises,
            "cores": cores,
            "sandboxed": not args.no_sandbox,
            "serial": serial,
            "parallel": parallel,
            "speedup": round(speedup, 2),
            "same_grades": serial["grades"] == parallel["grades"],
            "grader_peak_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ),
            "projection": project(serial, speedup, args.workers),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(result)
    print(text)
    for out in args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".json":
            out.write_text(json.dumps(result, indent=1))
        else:
            out.write_text(text)
    return 0 if result["same_grades"] else 1


if __name__ == "__main__":
    sys.exit(main())
