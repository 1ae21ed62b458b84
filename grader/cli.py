"""``python -m grader release|grade|report|bench``: the course's grading commands.

``make student`` runs ``release`` and ``make grade`` runs ``grade`` on
``notebooks/exercises``; ``--course`` names another nbgrader course folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from grader import pipeline, pool, report, sandbox
from grader.submission import SubmissionError, find_submissions

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "notebooks" / "exercises"


def _nbgrader(course: Path, *args: str) -> int:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.call(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env
    )


def release(args: argparse.Namespace) -> int:
    """Write release/ (the student notebooks) and the gradebook's cells."""
    return _nbgrader(args.course, "generate_assignment", *args.assignment, "--force")


def grade(args: argparse.Namespace) -> int:
    course: Path = args.course
    if args.no_sandbox:
        print(
            "WARNING: --no-sandbox: student code runs unconfined, with your rights. "
            "Use it for trusted notebooks only (such as the reference solutions).",
            file=sys.stderr,
        )
    else:
        try:
            sandbox.require()
        except sandbox.SandboxUnavailable as problem:
            print(problem, file=sys.stderr)
            return 2
    if not (course / "gradebook.db").exists():
        print("no gradebook: releasing the assignments first (make student)")
        if release(argparse.Namespace(course=course, assignment=["*"])) != 0:
            return 1
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            found = find_submissions(course, gradebook, args.assignment or None)
        except SubmissionError as problem:
            print(problem, file=sys.stderr)
            return 1
    if args.student:
        found = [s for s in found if s.student in args.student]
    workers = args.workers or pool.default_workers()
    cores = pool.default_workers()
    settings = pipeline.Settings(
        cell_timeout=args.cell_timeout,
        total_timeout=args.total_timeout,
        limits=sandbox.Limits(
            memory=int(args.memory * 2**30),
            threads=max(1, cores // workers) if not args.scheduler else 1,
            cpus=max(1, cores // workers) if not args.scheduler else 1,
        ),
        sandboxed=not args.no_sandbox,
    )
    where = (
        f"the cluster at {args.scheduler}" if args.scheduler else f"{workers} worker(s)"
    )
    print(
        f"grading {len(found)} submission(s) in {course} with {where}"
        f"{'' if settings.sandboxed else ', NOT sandboxed'}"
    )
    started = time.monotonic()
    try:
        outcomes, skipped = pool.grade_all(
            course,
            found,
            settings,
            workers=workers,
            scheduler=args.scheduler,
            force=args.force,
        )
    except sandbox.SandboxUnavailable as problem:
        print(problem, file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    if skipped:
        print(
            f"{len(skipped)} submission(s) already graded, skipped (--force regrades)"
        )
    rows = report.collect(course)
    header = [
        f"- run: {time.strftime('%Y-%m-%d %H:%M:%S')}, {len(outcomes)} graded now, "
        f"{len(skipped)} skipped as already graded, {seconds:.0f} s, "
        f"{workers} worker(s), sandbox {'on' if settings.sandboxed else 'OFF'}",
        f"- limits per notebook: {settings.cell_timeout:g} s per cell, "
        f"{settings.total_timeout:g} s in all, "
        f"{settings.limits.memory / 2**30:g} GiB of memory per kernel",
    ]
    path = report.write(course, rows, header)
    print(report.summary(rows))
    print(f"report: {path}\ngrades: {course / 'grades.csv'}")
    return 1 if any(o.status != "graded" for o in outcomes) else 0


def show_report(args: argparse.Namespace) -> int:
    rows = report.collect(args.course)
    path = report.write(args.course, rows, ["- report rebuilt from the gradebook"])
    print(report.summary(rows))
    print(f"report: {path}\ngrades: {args.course / 'grades.csv'}")
    return 0


def bench(args: argparse.Namespace) -> int:
    script = ROOT / "benchmarks" / "grade_speed.py"
    if not script.exists():
        print(f"no benchmark at {script}: run it from the course repository")
        return 1
    return subprocess.call([sys.executable, str(script), *args.rest])


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)

    def add(name: str, function, help: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help, description=help)
        command.add_argument(
            "--course", type=Path, default=COURSE, help="the nbgrader course folder"
        )
        command.set_defaults(function=function)
        return command

    add("release", release, "write the student notebooks to release/").add_argument(
        "assignment", nargs="*", default=["*"]
    )
    g = add("grade", grade, "grade every submission in submitted/, sandboxed")
    g.add_argument("--assignment", action="append", default=[], help="only this one")
    g.add_argument("--student", action="append", default=[], help="only this one")
    g.add_argument(
        "--workers", type=int, default=0, help="parallel workers (default: one a core)"
    )
    g.add_argument(
        "--scheduler", help="address of a Dask scheduler whose workers grade"
    )
    g.add_argument("--force", action="store_true", help="regrade graded submissions")
    g.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell")
    g.add_argument(
        "--total-timeout", type=float, default=300, help="seconds per notebook"
    )
    g.add_argument("--memory", type=float, default=3, help="GiB per kernel")
    g.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run kernels unconfined: trusted notebooks only (reference solutions)",
    )
    add("report", show_report, "write the report and grades.csv from the gradebook")
    b = add("bench", bench, "time grading a generated class (benchmarks/)")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.course = args.course.resolve()
    return args.function(args)
