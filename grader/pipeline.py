"""Grade one submission: rebuild, run in the sandbox, score; write the results.

The work is split so that a submission can only fail itself and only the grader writes
the gradebook:

- :func:`prepare` (grader process) reads the gradebook, the release and the submitted
  notebook's text into a :class:`Job`: plain data, so a worker on another machine needs
  neither the gradebook nor ``submitted/``;
- :func:`grade` (a worker) rebuilds the notebook, runs it with
  :func:`grader.execute.run_notebook` in sandboxed kernels and returns an
  :class:`Outcome`; whatever the submission does, it returns (a failure is a reason);
- :func:`record` (grader process) writes ``autograded/<student>/<assignment>/`` and the
  scores, from the gradebook's points, to ``gradebook.db``.

``autograded/`` becomes the student's feedback (``nbgrader generate_feedback``), so it
never holds a hidden test: :func:`hide_hidden_tests` replaces each hidden block by one
comment and a hidden test cell's outputs by a one-line verdict. The full reasons of
the failed tests go to ``reports/reasons/`` (:func:`reasons_path`), for the
instructor's report only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from grader import sandbox
from grader.submission import (
    Submission,
    SubmissionError,
    gradebook_cells,
    read_release,
    read_text,
    rebuild,
)


@dataclass(frozen=True)
class Settings:
    """How every submission is run (the same for all of them)."""

    cell_timeout: float = 60
    total_timeout: float = 300
    output_limit: int = 100_000
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    sandboxed: bool = True


@dataclass
class Job:
    """Everything a worker needs to grade one submission (plain data)."""

    student: str
    assignment: str
    notebook: str
    text: str | None
    error: str | None
    sha256: str
    known: dict
    release: dict


@dataclass
class Outcome:
    """What grading one submission gave.

    ``status`` is ``"graded"`` (every test ran, or the notebook failed in a way that is
    the student's: a timeout, the memory cap) or ``"failed"`` (it could not run at all:
    an unreadable notebook, the sandbox refused). ``scores`` maps each test cell's
    grade_id to the points earned; ``failed_tests`` its short message.
    """

    student: str
    assignment: str
    notebook: str
    status: str
    reason: str | None
    scores: dict[str, float]
    max_scores: dict[str, float]
    failed_tests: dict[str, str]
    notes: list[str]
    sha256: str
    seconds: float
    peak_memory: dict[str, int]
    executed: str | None

    @property
    def score(self) -> float:
        return sum(self.scores.values())

    @property
    def max_score(self) -> float:
        return sum(self.max_scores.values())


def plain(text: object) -> str:
    """``text`` with every control or invisible formatting character written as an
    escape (``\\x1b``, ``\\u202e``); line breaks and tabs stay.

    Reasons and messages can quote a submission's own text: without this, a notebook
    could move the instructor's terminal cursor, erase or forge lines of the grading
    summary, or reverse the text of a report with bidirectional overrides.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode()
        for c in text
    )


def one_line(text: object) -> str:
    """:func:`plain` on one line: a submission's text never starts a line of its own
    in the instructor's terminal, ``grades.csv`` or report."""
    return plain(" ".join(str(text).splitlines()))


HIDDEN_BLOCK = re.compile(
    r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", flags=re.DOTALL
)
HIDDEN_NOTE = "# hidden tests: not shown, checked when graded"


def _verdict(message: str | None) -> str:
    """A hidden test cell's verdict for the student: passed, or the kind of failure.

    Only the leading word of the grader's message (an exception's name, "timeout",
    "not run") is kept: the rest may quote the hidden test's values.
    """
    if message is None:
        return "hidden tests: passed"
    message = message.strip()
    starts = {
        "timeout": "timeout",
        "not run": "not run",
        "the test kernel": "the test kernel stopped",
    }
    kinds = [kind for start, kind in starts.items() if message.startswith(start)]
    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?=:|$)", message)
    kind = kinds[0] if kinds else name[0] if name else "error"
    return f"hidden tests: failed ({kind})"


def hide_hidden_tests(
    nb: nbformat.NotebookNode, failed_tests: dict[str, str]
) -> dict[str, str]:
    """Take the hidden tests out of ``nb`` (in place), as the student may see it.

    In each graded cell, every ``### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS``
    block becomes one comment, and the cell's outputs (which may show hidden lines
    in a traceback, or values they print) become its verdict. Returns
    ``failed_tests`` with the messages of those cells replaced by their verdict.
    """
    shown = dict(failed_tests)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not (
            cell.cell_type == "code"
            and isinstance(meta, dict)
            and meta.get("grade")
            and "### BEGIN HIDDEN TESTS" in cell.source
        ):
            continue
        cell.source = HIDDEN_BLOCK.sub(HIDDEN_NOTE, cell.source)
        if "HIDDEN TESTS" in cell.source.replace(HIDDEN_NOTE, ""):
            # an unterminated block: hide everything from its start
            start = cell.source.find("### BEGIN HIDDEN TESTS")
            cell.source = cell.source[: max(start, 0)] + HIDDEN_NOTE
        grade_id = meta.get("grade_id")
        verdict = _verdict(failed_tests.get(grade_id))
        if grade_id in shown:
            shown[grade_id] = verdict
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=verdict + "\n")
        ]
    return shown


def sha256(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def prepare(course: Path, submission: Submission, gradebook: Gradebook) -> Job:
    """Read what grading ``submission`` needs, in the grader process."""
    text = error = None
    try:
        if submission.path is None:
            raise SubmissionError(f"no {submission.notebook}.ipynb was handed in")
        text = read_text(submission.path)
    except SubmissionError as problem:
        error = str(problem)
    try:
        known = gradebook_cells(gradebook, submission.notebook, submission.assignment)
    except MissingEntry:
        known, error = {}, f"the gradebook has no notebook {submission.notebook}"
    release = read_release(course, submission.assignment, submission.notebook)
    return Job(
        submission.student,
        submission.assignment,
        submission.notebook,
        text,
        error,
        sha256(text),
        known,
        dict(release),
    )


def _max_scores(known: dict) -> dict[str, float]:
    return {
        grade_id: info["meta"]["points"]
        for grade_id, info in known.items()
        if info["meta"]["grade"] and info["cell_type"] == "code"
    }


def _explain(failure: str | None, oom: bool, limits: sandbox.Limits) -> str | None:
    """The run's failure, with the memory cap named when the cgroup killed a kernel."""
    if oom:
        where = f" ({failure})" if failure else ""
        return f"memory limit of {limits.memory / 2**30:g} GiB exceeded{where}"
    if failure:  # the cgroup knows: a kill that was not its own is no memory kill
        failure = failure.replace("probably the memory limit", "not the memory limit")
    return failure


def grade(job: Job, settings: Settings) -> Outcome:
    """Grade one submission; never raises for anything the submission does.

    ``outcome.executed`` is the notebook for ``autograded/``: the executed one, or the
    release when the submission could not run; its metadata ``grader`` keeps the
    status, the reason and the failed tests for the report.
    """
    started = time.monotonic()
    outcome, nb = _grade(job, settings)
    # text from the kernels may hold what UTF-8 cannot write (a lone surrogate)
    outcome.reason = outcome.reason and _utf8(outcome.reason)
    outcome.failed_tests = {k: _utf8(v) for k, v in outcome.failed_tests.items()}
    outcome.notes = [_utf8(note) for note in outcome.notes]
    if nb is None:
        nb = nbformat.from_dict(job.release)
    nb.metadata["grader"] = {
        "sha256": job.sha256,
        "status": outcome.status,
        "reason": outcome.reason,
        "failed_tests": hide_hidden_tests(nb, outcome.failed_tests),
        "notes": outcome.notes,
    }
    outcome.seconds = time.monotonic() - started
    nb.metadata["grader"]["seconds"] = round(outcome.seconds, 1)
    outcome.executed = _utf8(nbformat.writes(nb))
    return outcome


def _utf8(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) as "?"."""
    return str(text).encode("utf-8", errors="replace").decode("utf-8")


def _grade(job: Job, settings: Settings):
    from grader.execute import run_notebook

    max_scores = _max_scores(job.known)
    outcome = Outcome(
        job.student,
        job.assignment,
        job.notebook,
        "failed",
        job.error,
        dict.fromkeys(max_scores, 0.0),
        max_scores,
        {},
        [],
        job.sha256,
        0.0,
        {},
        None,
    )
    if job.error:
        return outcome, None
    try:
        rebuilt = rebuild(job.text, job.known, nbformat.from_dict(job.release))
    except SubmissionError as problem:
        outcome.reason = str(problem)
        return outcome, None
    outcome.notes = rebuilt.notes
    box = sandbox.Sandbox(limits=settings.limits, enabled=settings.sandboxed)
    # the whole notebook's wall clock, enforced from outside the kernels too
    hard_stop = threading.Timer(settings.total_timeout + 30, box.kill)
    hard_stop.daemon = True
    hard_stop.start()
    try:
        result = run_notebook(
            rebuilt.notebook,
            roles=rebuilt.roles,
            start_kernel=box.start_kernel,
            exchange_dir=box.exchange_dir,
            cell_timeout=settings.cell_timeout,
            total_timeout=settings.total_timeout,
            output_limit=settings.output_limit,
        )
    except sandbox.SandboxUnavailable as problem:
        outcome.reason = f"sandbox refused to start: {problem}"
        return outcome, None
    except Exception as problem:  # a kernel that never started, a broken bridge
        outcome.reason = f"grading error: {type(problem).__name__}: {problem}"
        outcome.notes.append(traceback.format_exc(limit=3)[-2000:])
        return outcome, None
    finally:
        hard_stop.cancel()
        outcome.peak_memory = box.peak_memory()
        oom = box.oom_killed()
        box.close()
    outcome.status = "graded"
    outcome.reason = _explain(result.failure, oom, settings.limits)
    nb = result.notebook
    for index, points in rebuilt.points.items():
        grade_id = nb.cells[index].metadata["nbgrader"]["grade_id"]
        verdict = result.tests.get(index)
        if verdict is not None and verdict.passed:
            outcome.scores[grade_id] = points
        else:
            outcome.failed_tests[grade_id] = verdict.message if verdict else "not run"
    return outcome, nb


def autograded_path(course: Path, student: str, assignment: str, notebook: str) -> Path:
    return course / "autograded" / student / assignment / f"{notebook}.ipynb"


def reasons_path(course: Path, student: str, assignment: str, notebook: str) -> Path:
    """Where the full reasons of a submission's failed tests are kept (not in
    ``autograded/``, which the student's feedback is made from)."""
    return course / "reports" / "reasons" / student / assignment / f"{notebook}.json"


def full_reasons(course: Path, student: str, assignment: str, notebook: str, sha: str):
    """The failed tests' full reasons recorded for the submission ``sha``, or None."""
    path = reasons_path(course, student, assignment, notebook)
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("sha256") == sha and isinstance(saved.get("failed_tests"), dict):
            return saved["failed_tests"]
    return None


def already_graded(course: Path, job: Job) -> bool:
    """Whether ``autograded/`` holds a grading of exactly this submitted notebook."""
    path = autograded_path(course, job.student, job.assignment, job.notebook)
    with contextlib.suppress(Exception):
        meta = nbformat.read(path, as_version=4).metadata.get("grader", {})
        # a failure (it could not run, or not be recorded) is tried again
        return meta.get("sha256") == job.sha256 and meta.get("status") != "failed"
    return False


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, renamed).

    What UTF-8 cannot encode (a lone surrogate from a kernel) is written as "?".
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(text.encode("utf-8", errors="replace"))
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _failure_notebook(outcome: Outcome) -> str:
    """An empty notebook that carries a failed outcome's grading record."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["grader"] = {
        "sha256": outcome.sha256,
        "status": outcome.status,
        "reason": outcome.reason,
        "failed_tests": {},
        "notes": [],
        "seconds": round(outcome.seconds, 1),
    }
    return nbformat.writes(nb)


def record(
    course: Path, gradebook: Gradebook, outcome: Outcome, timestamp=None
) -> None:
    """Write ``outcome`` to ``autograded/`` and the gradebook (grader process only).

    Each file is written whole or not at all, and text UTF-8 cannot encode becomes
    "?", so a crash or a student's output never leaves a half-written record.
    """
    path = autograded_path(
        course, outcome.student, outcome.assignment, outcome.notebook
    )
    _write_atomic(path, outcome.executed or _failure_notebook(outcome))
    reasons = reasons_path(
        course, outcome.student, outcome.assignment, outcome.notebook
    )
    _write_atomic(
        reasons,
        json.dumps(
            {"sha256": outcome.sha256, "failed_tests": outcome.failed_tests},
            ensure_ascii=False,
        ),
    )
    gradebook.update_or_create_student(outcome.student)
    kwargs = {"timestamp": timestamp} if timestamp else {}
    with warnings.catch_warnings():
        # nbgrader builds a submission's rows before adding them to the session, and
        # SQLAlchemy 2 warns about each ("... not in session, add operation along ...
        # will not proceed"); the rows are added right after, the warning is false.
        warnings.filterwarnings("ignore", message=r"Object of type <Submitted")
        gradebook.update_or_create_submission(
            outcome.assignment, outcome.student, **kwargs
        )
    notebook = gradebook.find_submission_notebook(
        outcome.notebook, outcome.assignment, outcome.student
    )
    for grade in notebook.grades:
        if grade.name in outcome.scores:
            grade.auto_score = outcome.scores[grade.name]
            grade.needs_manual_grade = grade.manual_score is not None
    for comment in notebook.comments:
        comment.auto_comment = None
    gradebook.db.commit()
