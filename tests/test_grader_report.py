"""The grading report, grades.csv and the progress line (grader/report.py, pool.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader import pool, report
from grader.report import Row


def rows() -> list[Row]:
    return [
        Row("ada", "ex1", "graded", 10.0, 10.0),
        Row(
            "bob",
            "ex1",
            "graded",
            3.0,
            10.0,
            reason="timeout in cell 7 (part count_labels) after 60 s",
            failed_tests={"count_labels_visible": "not run: timeout"},
        ),
        Row("cy", "ex1", "failed", 0.0, 10.0, reason="unreadable notebook: not JSON"),
        Row("dee", "ex1", "not submitted", None, 10.0),
        Row("eve", "ex1", "graded", 0.0, 10.0, reason="memory limit of 3 GiB exceeded"),
    ]


def test_grades_csv_keeps_not_submitted_apart_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    report.write_csv(rows(), path)
    with path.open() as file:
        table = {row["student_id"]: row for row in csv.DictReader(file)}
    assert table["dee"]["score"] == "" and table["dee"]["status"] == "not submitted"
    assert table["cy"]["score"] == "0" and table["cy"]["status"] == "failed"
    assert table["cy"]["reason"] == "unreadable notebook: not JSON"
    assert table["ada"]["score"] == "10" and table["ada"]["max_score"] == "10"


def test_report_names_each_reason_and_failed_test() -> None:
    text = report.markdown(rows(), ["- run: test"])
    line = {row.split("|")[1].strip(): row for row in text.splitlines() if "|" in row}
    assert "timeout: timeout in cell 7 (part count_labels)" in line["bob"]
    assert "count_labels_visible: not run: timeout" in line["bob"]
    assert "unreadable notebook: unreadable notebook" in line["cy"]
    assert "memory: memory limit" in line["eve"]
    assert "| dee | — | not submitted |" in line["dee"]
    assert "3 graded, 1 failed, 1 not submitted; mean 3.25 / 10" in text


def test_terminal_summary_counts_and_lists_the_problems() -> None:
    text = report.summary(rows())
    assert text.splitlines()[0] == (
        "ex1: 3 graded (mean 3.25/10, 1 full marks), 1 failed, 1 not submitted"
    )
    assert "  bob/ex1: timeout: timeout in cell 7" in text
    assert "  eve/ex1: memory: memory limit of 3 GiB exceeded" in text
    assert "ada/ex1" not in text


def test_report_file_is_written_beside_grades_csv(tmp_path: Path) -> None:
    path = report.write(tmp_path, rows(), ["- run: test"])
    assert path.parent == tmp_path / "reports"
    assert path.name.startswith("grading-") and path.suffix == ".md"
    assert (tmp_path / "grades.csv").exists()


class Outcome:
    def __init__(self, student: str, status: str = "graded", reason=None) -> None:
        self.student, self.assignment = student, "ex1"
        self.status, self.reason = status, reason


def test_progress_shows_count_rate_time_left_and_a_line_per_failure() -> None:
    stream = io.StringIO()
    progress = pool.Progress(4, stream=stream)
    progress.started -= 60  # one minute ago
    progress.advance(Outcome("ada"))
    progress.advance(Outcome("cy", "failed", "unreadable notebook: not JSON"))
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("1/4 submissions, 1.0/min, 3:00 left")
    assert lines[1] == "FAILED cy/ex1: unreadable notebook: not JSON"
    assert "2/4 submissions" in lines[2] and "left" in lines[2]
