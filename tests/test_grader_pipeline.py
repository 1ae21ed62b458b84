"""What grading one submission writes (grader/pipeline.py): the autograded notebook,
which becomes the student's feedback, holds no hidden test; the report keeps the full
reasons."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from grader import pipeline

HIDDEN = (
    "assert rarest_digit == np.argmin(np.bincount(train_y, minlength=10))\n"
    "np.testing.assert_array_equal(count_labels(test_y), [980, 1135, 1032])"
)
TEST_CELL = (
    "# hidden tests: rarest_digit\n"
    "assert 0 <= rarest_digit <= 9\n"
    f"### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n"
    "print('rarest_digit is a digit')"
)
FULL_REASON = (
    "AssertionError: \nArrays are not equal\n ACTUAL: array([0, 0])\n"
    " DESIRED: array([980, 1135, 1032])"
)


def graded_notebook() -> nbformat.NotebookNode:
    """A visible and a hidden test cell as the run leaves them (the hidden one failed,
    its traceback quoting hidden lines), and a student's cell that names the marker."""
    cells = []
    for grade_id, source in (
        ("rarest_digit_visible", "assert 0 <= rarest_digit <= 9\nprint('passes')"),
        ("rarest_digit_hidden", TEST_CELL),
    ):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata.nbgrader = {"grade": True, "grade_id": grade_id, "points": 1}
        cells.append(cell)
    cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="passes\n")
    ]
    cells[1].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="[980, 1135]\n"),
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue=FULL_REASON,
            traceback=[f"----> 5 {line}" for line in HIDDEN.splitlines()],
        ),
    ]
    mine = nbformat.v4.new_code_cell("x = '### BEGIN HIDDEN TESTS'")
    mine.outputs = [nbformat.v4.new_output("stream", name="stdout", text="mine\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [*cells, mine]
    return nb


def test_hidden_tests_leave_the_notebook_and_the_failure_shows_only_its_kind():
    nb = graded_notebook()
    failed = {"rarest_digit_hidden": FULL_REASON}
    shown = pipeline.hide_hidden_tests(nb, failed)
    text = nbformat.writes(nb) + json.dumps(shown)
    for line in HIDDEN.splitlines():
        assert line not in text
    for value in ("980", "1135", "ACTUAL", "DESIRED"):
        assert value not in text
    hidden = nb.cells[1]
    assert hidden.source == (
        "# hidden tests: rarest_digit\nassert 0 <= rarest_digit <= 9\n"
        f"{pipeline.HIDDEN_NOTE}\nprint('rarest_digit is a digit')"
    )
    assert [o.text for o in hidden.outputs] == [
        "hidden tests: failed (AssertionError)\n"
    ]
    assert shown == {"rarest_digit_hidden": "hidden tests: failed (AssertionError)"}
    assert failed == {"rarest_digit_hidden": FULL_REASON}, "the full reason is kept"
    assert nb.cells[0].outputs[0].text == "passes\n", "a visible test is unchanged"
    assert nb.cells[2].outputs[0].text == "mine\n", "a student's cell is unchanged"


def test_a_passed_hidden_test_says_passed_and_other_failures_keep_only_their_kind():
    nb = graded_notebook()
    pipeline.hide_hidden_tests(nb, {})
    assert [o.text for o in nb.cells[1].outputs] == ["hidden tests: passed\n"]
    kinds = {
        "timeout after 60 s": "timeout",
        "not run: kernel died in cell 3": "not run",
        "the test kernel died (exit status 9)": "the test kernel stopped",
        "ZeroDivisionError": "ZeroDivisionError",
        "rows 980 differ": "error",
        "TypeError: in your function f: TypeError: shape (7, 784)": "TypeError",
        "": "error",
    }
    for message, kind in kinds.items():
        assert pipeline._verdict(message) == f"hidden tests: failed ({kind})"


def test_an_unterminated_hidden_block_is_hidden_to_the_end():
    nb = graded_notebook()
    nb.cells[1].source = f"x = 1\n### BEGIN HIDDEN TESTS\n{HIDDEN}"
    pipeline.hide_hidden_tests(nb, {})
    assert nb.cells[1].source == f"x = 1\n{pipeline.HIDDEN_NOTE}"


def test_the_report_reads_the_full_reasons_kept_outside_autograded(
    tmp_path: Path,
) -> None:
    path = pipeline.reasons_path(tmp_path, "ada", "ex1", "ex1")
    assert "autograded" not in path.relative_to(tmp_path).parts
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"sha256": "abc", "failed_tests": {"t_hidden": FULL_REASON}})
    )
    assert pipeline.full_reasons(tmp_path, "ada", "ex1", "ex1", "abc") == {
        "t_hidden": FULL_REASON
    }
    assert pipeline.full_reasons(tmp_path, "ada", "ex1", "ex1", "other") is None
    assert pipeline.full_reasons(tmp_path, "bob", "ex1", "ex1", "abc") is None


def test_text_utf8_cannot_encode_never_stops_recording(tmp_path: Path) -> None:
    release = nbformat.v4.new_notebook()
    release.cells = [nbformat.v4.new_markdown_cell("bad \udcff cell")]
    job = pipeline.Job(
        "ada", "ex1", "ex1", None, "unreadable \udcff", "sha", {}, dict(release)
    )
    outcome = pipeline.grade(job, pipeline.Settings(sandboxed=False))
    assert outcome.status == "failed" and outcome.reason == "unreadable ?"
    path = tmp_path / "ex1.ipynb"
    path.write_text(outcome.executed, encoding="utf-8")
    assert "bad ? cell" in path.read_text(encoding="utf-8")


def test_recording_a_grade_writes_the_scores_and_warns_nothing(
    tmp_path: Path,
) -> None:
    """nbgrader's submission rows made SQLAlchemy print a warning per run that
    instructors could not act on; recording must stay silent and still score."""
    import warnings

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.add_assignment("ex1")
        gradebook.add_notebook("ex1", "ex1")
        gradebook.add_grade_cell("t1", "ex1", "ex1", max_score=3, cell_type="code")
        outcome = pipeline.Outcome(
            "ada", "ex1", "ex1", "graded", None, {"t1": 2.0}, {"t1": 3.0}, {}, [],
            "sha", 1.0, {}, nbformat.writes(nbformat.v4.new_notebook()),
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pipeline.record(tmp_path, gradebook, outcome)
            pipeline.record(tmp_path, gradebook, outcome)  # a regrade too
        assert gradebook.find_submission("ex1", "ada").score == 2.0
