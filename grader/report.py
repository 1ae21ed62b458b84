"""What a grading run tells the instructor: a summary, a report file, grades.csv.

Every (student, assignment) pair is one of: graded (a score, the tests that failed and
why), failed (no score could be computed: the reason, such as an unreadable notebook or
a sandbox refusal; it scores 0 in the gradebook) or not submitted (no score at all,
left empty in ``grades.csv``, never 0).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from grader.pipeline import autograded_path, full_reasons, one_line


@dataclass
class Row:
    student: str
    assignment: str
    status: str
    """"graded", "failed" or "not submitted"."""
    score: float | None
    max_score: float
    reason: str = ""
    failed_tests: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _classify(reason: str) -> str:
    text = reason.lower()
    for word, kind in (
        ("memory limit of", "memory"),
        ("timeout", "timeout"),
        ("time limit", "timeout"),
        ("sandbox", "sandbox refusal"),
        ("unreadable", "unreadable notebook"),
        ("no notebook", "no notebook"),
        ("handed in", "no notebook"),
        ("kernel died", "kernel died"),
    ):
        if word in text:
            return kind
    return "error"


def collect(course: Path) -> list[Row]:
    """One row per student of the gradebook and assignment, from the gradebook and
    the grader's notes in ``autograded/``."""
    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assignments = sorted(a.name for a in gradebook.assignments)
        students = sorted(s.id for s in gradebook.students)
        for assignment in assignments:
            max_score = gradebook.find_assignment(assignment).max_score
            notebooks = [
                nb.name for nb in gradebook.find_assignment(assignment).notebooks
            ]
            for student in students:
                try:
                    submission = gradebook.find_submission(assignment, student)
                except MissingEntry:
                    rows.append(
                        Row(student, assignment, "not submitted", None, max_score)
                    )
                    continue
                row = Row(student, assignment, "graded", submission.score, max_score)
                for notebook in notebooks:
                    path = autograded_path(course, student, assignment, notebook)
                    try:
                        meta = nbformat.read(path, as_version=4).metadata.get(
                            "grader", {}
                        )
                    except Exception:  # unreadable: reported as such, never a crash
                        meta = {}
                    if not meta:
                        row.status = "failed"
                        row.reason = "no grading record in autograded/: grade again"
                        continue
                    row.status = meta.get("status", "graded")
                    row.reason = meta.get("reason") or ""
                    full = full_reasons(
                        course, student, assignment, notebook, meta.get("sha256")
                    )
                    row.failed_tests.update(full or meta.get("failed_tests", {}))
                    row.notes += meta.get("notes", [])
                rows.append(row)
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    """grades.csv: one line per student and assignment; empty score = not submitted."""
    with path.open("w", newline="", encoding="utf-8", errors="replace") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["student_id", "assignment", "score", "max_score", "status", "reason"]
        )
        for row in rows:
            score = "" if row.score is None else f"{row.score:g}"
            writer.writerow(
                [
                    one_line(row.student),
                    row.assignment,
                    score,
                    f"{row.max_score:g}",
                    row.status,
                    one_line(row.reason),
                ]
            )


def _by_assignment(
    rows: list[Row],
) -> list[tuple[str, list[Row], list[Row], float]]:
    """Per assignment, in order: its rows, the graded ones and their mean score."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.assignment, []).append(row)
    result = []
    for assignment, group in groups.items():
        graded = [r for r in group if r.score is not None]
        mean = sum(r.score for r in graded) / len(graded) if graded else 0
        result.append((assignment, group, graded, mean))
    return result


def _table_cell(text: str) -> str:
    """A Markdown table cell that shows ``text`` as text: one line without control
    characters (:func:`grader.pipeline.one_line`), no HTML, no column split."""
    return html.escape(one_line(text), quote=False).replace("|", "\\|")


def markdown(rows: list[Row], header: list[str]) -> str:
    """The report file: the run, a table per assignment, every failed test's reason."""
    lines = ["# Grading report", "", *header, ""]
    for assignment, group, _graded, mean in _by_assignment(rows):
        lines += [
            f"## {assignment}",
            "",
            f"{sum(r.status == 'graded' for r in group)} graded, "
            f"{sum(r.status == 'failed' for r in group)} failed, "
            f"{sum(r.status == 'not submitted' for r in group)} not submitted; "
            f"mean {mean:.2f} / {group[0].max_score:g}",
            "",
            "| student | score | status | reason | failed tests |",
            "|---|---|---|---|---|",
        ]
        for row in group:
            score = "—" if row.score is None else f"{row.score:g}"
            reason = f"{_classify(row.reason)}: {row.reason}" if row.reason else ""
            failed = "; ".join(
                f"{grade_id}: {message}"
                for grade_id, message in sorted(row.failed_tests.items())
            )
            cells = [row.student, score, row.status, reason, failed]
            lines.append("| " + " | ".join(_table_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """A few lines for the terminal."""
    lines = []
    for assignment, group, graded, mean in _by_assignment(rows):
        full = sum(r.score == r.max_score for r in graded)
        lines.append(
            f"{assignment}: {sum(r.status == 'graded' for r in group)} graded "
            f"(mean {mean:.2f}/"
            f"{group[0].max_score:g}, {full} full marks), "
            f"{sum(r.status == 'failed' for r in group)} failed, "
            f"{sum(r.status == 'not submitted' for r in group)} not submitted"
        )
    problems = [r for r in rows if r.status == "failed" or r.reason]
    for row in problems:
        lines.append(
            one_line(
                f"  {row.student}/{row.assignment}: {_classify(row.reason)}: "
                f"{row.reason}"
            )
        )
    return "\n".join(lines)


def write(course: Path, rows: list[Row], header: list[str]) -> Path:
    """Write grades.csv and reports/grading-<time>.md; return the report's path."""
    write_csv(rows, course / "grades.csv")
    folder = course / "reports"
    folder.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"grading-{stamp}.md"
    path.write_text(markdown(rows, header), encoding="utf-8", errors="replace")
    return path
