"""The grading report, grades.csv and the progress line (grader/report.py, pool.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from grader import pipeline, pool, report
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


# A notebook whose "nbformat" field is a terminal escape sequence: its "unreadable
# notebook" reason quotes it. In a terminal it would move the cursor up, erase the
# grader's last lines, print a forged one and hide what follows.
FORGED = (
    "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[32mvictim/ex4: graded 10/10 OK\x1b[0m"
    "\x1b]0;pwned-title\x07\x1b[8m"
)


def forged_rows() -> list[Row]:
    return [
        Row(
            "mallory",
            "ex1",
            "failed",
            0.0,
            10.0,
            reason=f"unreadable notebook: Unsupported nbformat {FORGED}\n  ada/ex1: ok",
            failed_tests={
                "t\u202eset": f"AssertionError: {FORGED}<script>x()</script>"
            },
        )
    ]


def test_plain_escapes_control_and_invisible_characters_only() -> None:
    assert pipeline.plain("a\x1b[2Kb\x07\u202ec\x9b") == "a\\x1b[2Kb\\x07\\u202ec\\x9b"
    assert pipeline.plain("é ✓ 97.5 %\nnext\tcell") == "é ✓ 97.5 %\nnext\tcell"
    assert pipeline.plain("lone \udcff") == "lone \\udcff"


def test_no_escape_sequence_a_submission_wrote_reaches_the_instructor(
    tmp_path: Path,
) -> None:
    """Terminal summary, progress line, grades.csv and the report show the escape
    sequence as text: nothing a terminal or a Markdown viewer would obey."""
    outputs = [report.summary(forged_rows()), report.markdown(forged_rows(), [])]
    report.write_csv(forged_rows(), tmp_path / "grades.csv")
    outputs.append((tmp_path / "grades.csv").read_text())
    stream = io.StringIO()
    pool.Progress(1, stream=stream).advance(
        Outcome("mallory", "failed", forged_rows()[0].reason)
    )
    outputs.append(stream.getvalue())
    for text in outputs:
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\\x1b[1A" in text  # shown, not hidden
        assert "\n  ada/ex1: ok" not in text  # no line of its own making
    assert "<script>" not in outputs[1] and "&lt;script&gt;" in outputs[1]
