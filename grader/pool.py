"""Grade many submissions at once, on a Dask cluster, with progress and resume.

The grader process prepares one :class:`~grader.pipeline.Job` per submission, a Dask
cluster grades them (a ``LocalCluster`` of one process per worker by default, or the
cluster behind ``--scheduler ADDRESS``; every worker runs its kernels in the sandbox
and refuses to grade without it), and the grader process records each outcome as it
comes back. Grades do not depend on the number of workers: each submission runs in
fresh kernels of its own, with the same limits.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from grader import pipeline, sandbox
from grader.submission import Submission, read_timestamp


@dataclass
class Progress:
    """A one-line progress bar: count, rate and time left; a line per failure."""

    total: int
    stream: object = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    _last: float = 0.0

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        rate = self.done / elapsed * 60 if elapsed > 0 else 0.0
        if self.done and self.done < self.total:
            left = elapsed / self.done * (self.total - self.done)
            eta = f"{int(left // 60)}:{int(left % 60):02d} left"
        elif self.done:
            eta = f"done in {int(elapsed // 60)}:{int(elapsed % 60):02d}"
        else:
            eta = "time left: after the first submission"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"submissions, {rate:.1f}/min, {eta}"
        )

    def _tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def show(self, force: bool = False) -> None:
        if self._tty():
            self.stream.write("\r" + self._line())
        elif force or time.monotonic() - self._last > 10 or self.done == self.total:
            self.stream.write(self._line() + "\n")
            self._last = time.monotonic()
        self.stream.flush()

    def advance(self, outcome: pipeline.Outcome) -> None:
        self.done += 1
        problem = outcome.status != "graded" or bool(outcome.reason)
        if problem:
            prefix = "\r\033[K" if self._tty() else ""
            what = "FAILED" if outcome.status != "graded" else "problem"
            line = f"{what} {outcome.student}/{outcome.assignment}: {outcome.reason}"
            # a student's text may hold what the terminal cannot encode or would obey
            line = pipeline.one_line(line).encode("utf-8", errors="replace").decode()
            self.stream.write(f"{prefix}{line}\n")
        self.show(force=problem)

    def close(self) -> None:
        if self._tty():
            self.stream.write("\n")
            self.stream.flush()


# What every exercise's setup cells import: if a kernel started as a submission's
# kernels are cannot run this, every student would score 0 for the grader's fault
# (a package missing from the environment, or not visible inside the sandbox).
PREFLIGHT = "import numpy, keras, course_utils.data, course_utils.models"


def preflight(settings: pipeline.Settings, code: str | None = None) -> str | None:
    """Start a kernel as a submission's are and run ``code`` (:data:`PREFLIGHT`) in
    it; None if that works, else what went wrong."""
    code = code or PREFLIGHT
    try:
        with sandbox.Sandbox(limits=settings.limits, enabled=settings.sandboxed) as box:
            _, client = box.start_kernel("preflight")
            reply = client.execute_interactive(
                code, timeout=120, store_history=False, output_hook=lambda _: None
            )
    except Exception as error:
        return f"a grading kernel could not start and import the course: {_name(error)}"
    content = reply["content"]
    if content["status"] != "ok":
        return (
            f"a grading kernel cannot run `{code}`: {content.get('ename')}: "
            f"{content.get('evalue')} (is the grader run with the environment "
            "the course is installed in?)"
        )
    return None


def _worker_check(settings: pipeline.Settings, code: str) -> list[str]:
    """Run on each worker: what keeps it from grading (the sandbox, the imports)."""
    problems = sandbox.check() if settings.sandboxed else []
    if not problems:
        problems += [problem for problem in [preflight(settings, code)] if problem]
    return problems


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def grade_all(
    course: Path,
    submissions: Iterable[Submission],
    settings: pipeline.Settings,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_outcome: Callable[[pipeline.Outcome], None] | None = None,
) -> tuple[list[pipeline.Outcome], list[Submission]]:
    """Grade ``submissions``; return (new outcomes, submissions skipped as graded).

    ``workers=1`` without a scheduler grades in this process, one after the other.

    Raises
    ------
    grader.sandbox.SandboxUnavailable
        The sandbox cannot start here (or on a worker of the cluster).
    """
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    jobs, skipped, timestamps = [], [], {}
    with Gradebook(db_url) as gradebook:
        for submission in submissions:
            try:
                job = pipeline.prepare(course, submission, gradebook)
            except Exception as error:  # graded as a failure, with the reason
                job = _unprepared(submission, error)
            if not force and pipeline.already_graded(course, job):
                skipped.append(submission)
                continue
            jobs.append(job)
            timestamps[submission.key] = read_timestamp(submission)
    outcomes: list[pipeline.Outcome] = []
    if not jobs:
        return outcomes, skipped
    progress = progress or Progress(len(jobs))
    progress.total = len(jobs)
    progress.show(force=True)

    def record(outcome: pipeline.Outcome) -> None:
        timestamp = timestamps.get((outcome.student, outcome.assignment))
        with Gradebook(db_url) as gradebook:
            pipeline.record(course, gradebook, outcome, timestamp)

    def keep(job: pipeline.Job, grade: Callable[[], pipeline.Outcome]) -> None:
        """Grade ``job`` with ``grade()`` and record it: whatever goes wrong is this
        submission's failure, never the run's."""
        try:
            outcome = grade()
        except Exception as error:
            outcome = _failed(job, settings, f"grading error: {_name(error)}")
        try:
            record(outcome)
        except Exception as error:
            outcome = _failed(
                job, settings, f"grading error: could not record it: {_name(error)}"
            )
            try:
                record(outcome)
            except Exception as again:
                outcome.notes.append(f"not recorded either: {_name(again)}")
        outcomes.append(outcome)
        progress.advance(outcome)
        if on_outcome:
            on_outcome(outcome)

    workers = workers or default_workers()
    try:
        if workers == 1 and scheduler is None:
            if settings.sandboxed:
                sandbox.require()
            problem = preflight(settings)
            if problem:
                raise sandbox.SandboxUnavailable(f"grading stopped: {problem}")
            for job in jobs:
                keep(job, lambda job=job: pipeline.grade(job, settings))
        else:
            _grade_on_dask(jobs, settings, workers, scheduler, keep)
    finally:
        progress.close()
    return outcomes, skipped


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _unprepared(submission: Submission, error: Exception) -> pipeline.Job:
    """A job that only says why ``submission`` could not be read for grading."""
    return pipeline.Job(
        submission.student,
        submission.assignment,
        submission.notebook,
        None,
        f"grading error: could not prepare it: {_name(error)}",
        pipeline.sha256(None),
        {},
        dict(nbformat.v4.new_notebook()),
    )


def _failed(job: pipeline.Job, settings: pipeline.Settings, why: str):
    """``job``'s outcome as a failure that says ``why`` (it runs nothing)."""
    try:
        return pipeline.grade(dataclasses.replace(job, error=why), settings)
    except Exception:  # its release cannot be written: the record says why alone
        return pipeline.Outcome(
            job.student,
            job.assignment,
            job.notebook,
            "failed",
            why,
            {},
            {},
            {},
            [],
            job.sha256,
            0.0,
            {},
            None,
        )


def _grade_on_dask(jobs, settings, workers, scheduler, keep) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SystemExit(
            "grading in parallel needs Dask: pip install 'dask[distributed]' "
            "(or the course's extra: pip install -e '.[grader]'), or use --workers 1"
        ) from None
    import dask

    scratch = tempfile.mkdtemp(prefix="grade-dask-")
    with dask.config.set(
        {"distributed.worker.daemon": False, "distributed.logging.distributed": "error"}
    ):
        if scheduler:
            cluster = None
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=0,
                dashboard_address=None,
                local_directory=scratch,
                silence_logs=40,
            )
            client = Client(cluster)
        try:
            problems = client.run(_worker_check, settings, PREFLIGHT)
            missing = {
                f"{worker}: {problem}"
                for worker, found in problems.items()
                for problem in found
            }
            if missing:
                raise sandbox.SandboxUnavailable(
                    "grading stopped: not every worker can grade:\n- "
                    + "\n- ".join(sorted(missing))
                )
            futures = [
                client.submit(pipeline.grade, job, settings, pure=False, retries=0)
                for job in jobs
            ]
            job_of = dict(zip(futures, jobs, strict=True))
            for future in as_completed(futures):
                keep(job_of[future], lambda f=future: _result(f, job_of[f], settings))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)


def _result(future, job: pipeline.Job, settings: pipeline.Settings):
    """A Dask future's outcome; a worker lost: this submission's failure.

    It is not graded again in the grader's own process: what killed a worker (a flood
    of messages from a kernel, say) would then hit the process that writes every
    grade. The next ``grade`` run tries a failed submission again.
    """
    try:
        return future.result()
    except Exception as error:
        return _failed(
            job,
            settings,
            f"grading error: the worker grading it was lost ({_name(error)}); "
            "grade again to retry",
        )
