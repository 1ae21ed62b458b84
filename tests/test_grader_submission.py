"""The notebook the grader runs is rebuilt from the release and the gradebook.

A small course of one assignment (setup, answer and test cells, one with hidden tests)
is written to a temporary gradebook with nbgrader's API; each test hands a doctored
student notebook to grader.submission.rebuild and checks what would run. Seconds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import submission
from grader.submission import SubmissionError, rebuild

SETUP = "import numpy as np"
HIDDEN = "assert double(21) == 42"
TESTS = (
    "assert double(2) == 4\n### BEGIN HIDDEN TESTS\n"
    + HIDDEN
    + "\n### END HIDDEN TESTS"
)


def meta(grade_id: str, **flags) -> dict:
    base = {
        "grade": False,
        "grade_id": grade_id,
        "locked": True,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return {"nbgrader": {**base, **flags}}


def released() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Double it", metadata=meta("intro")),
        nbformat.v4.new_code_cell(SETUP, metadata=meta("setup")),
        nbformat.v4.new_code_cell(
            "# YOUR CODE HERE\nraise NotImplementedError()",
            metadata=meta("double", solution=True, locked=False),
        ),
        nbformat.v4.new_code_cell(
            "assert double(2) == 4",
            metadata=meta("double_tests", grade=True, points=2),
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict:
    db = tmp_path_factory.mktemp("course") / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment("a")
        gb.add_notebook("a", "a")
        gb.add_grade_cell("double_tests", "a", "a", max_score=2, cell_type="code")
        gb.add_solution_cell("double", "a", "a")
        for name, cell_type, locked, source in (
            ("intro", "markdown", True, "# Double it"),
            ("setup", "code", True, SETUP),
            ("double", "code", False, "def double(x):\n    return 2 * x"),
            ("double_tests", "code", True, TESTS),
        ):
            gb.add_source_cell(
                name,
                "a",
                "a",
                cell_type=cell_type,
                locked=locked,
                source=source,
                checksum="x",
            )
        return submission.gradebook_cells(gb, "a", "a")


def student(**answers: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(released())
    for cell in nb.cells:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


ANSWER = "def double(x):\n    return x + x"


def sources_and_roles(rebuilt: submission.Rebuilt) -> list[tuple[str, str | None]]:
    return [
        (cell.source, rebuilt.roles.get(index))
        for index, cell in enumerate(rebuilt.notebook.cells)
    ]


def test_answers_run_as_student_code_and_tests_get_their_hidden_part(known) -> None:
    rebuilt = rebuild(nbformat.writes(student(double=ANSWER)), known, released())
    assert sources_and_roles(rebuilt) == [
        ("# Double it", None),
        (SETUP, "setup"),
        (ANSWER, "student"),
        (TESTS, "test"),
    ]
    assert rebuilt.points == {3: 2.0}
    assert rebuilt.notes == []


def test_edited_locked_cells_and_points_come_back_from_the_gradebook(known) -> None:
    nb = student(double=ANSWER, setup="np = None", double_tests="pass")
    nb.cells[3].metadata.nbgrader["points"] = 100
    nb.cells[3].metadata.nbgrader["locked"] = False
    nb.cells[1].cell_type = "markdown"
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    assert [source for source, _ in sources_and_roles(rebuilt)][1:] == [
        SETUP,
        ANSWER,
        TESTS,
    ]
    assert rebuilt.points == {3: 2.0}
    assert rebuilt.notebook.cells[1].cell_type == "code"


def test_deleted_test_cells_come_back_in_the_release_order(known) -> None:
    nb = student(double=ANSWER)
    del nb.cells[3]
    del nb.cells[1]
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    assert [role for _, role in sources_and_roles(rebuilt)] == [
        None,
        "setup",
        "student",
        "test",
    ]
    assert rebuilt.notes == ["cells put back: setup, double_tests"]


def test_a_pasted_or_forged_test_cell_runs_as_student_code_without_points(
    known,
) -> None:
    nb = student(double=ANSWER)
    twin = copy.deepcopy(nb.cells[3])
    twin.source = "pass"
    twin["id"] = "twin"
    nb.cells.insert(4, twin)
    forged = nbformat.v4.new_code_cell(
        "pass", metadata=meta("bonus", grade=True, points=50)
    )
    nb.cells.append(forged)
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    assert sources_and_roles(rebuilt) == [
        ("# Double it", None),
        (SETUP, "setup"),
        (ANSWER, "student"),
        (TESTS, "test"),
        ("pass", "student"),
        ("pass", "student"),
    ]
    assert rebuilt.points == {3: 2.0}
    assert "2 cell(s) claimed a grade_id they do not own" in rebuilt.notes[0]
    assert "nbgrader" not in rebuilt.notebook.cells[4].metadata


def test_added_cells_stay_after_the_cell_they_followed(known) -> None:
    nb = student(double=ANSWER)
    nb.cells.insert(0, nbformat.v4.new_code_cell("first = 1"))
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("my notes"))
    nb.cells.insert(4, nbformat.v4.new_code_cell("helper = 2"))
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    assert [source for source, _ in sources_and_roles(rebuilt)] == [
        "first = 1",
        "# Double it",
        SETUP,
        "```text\nmy notes\n```",
        "helper = 2",
        ANSWER,
        TESTS,
    ]
    assert rebuilt.roles[4] == "student" and 3 not in rebuilt.roles


def test_student_tags_and_metadata_are_dropped_the_kernelspec_is_the_releases(
    known,
) -> None:
    nb = student(double=ANSWER)
    for cell in nb.cells:
        cell.metadata["tags"] = ["raises-exception", "skip-execution"]
        cell.metadata["editable"] = True
    nb.cells.append(
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["raises-exception"]})
    )
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "evil"}
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    for cell in rebuilt.notebook.cells:
        assert "tags" not in cell.metadata
        assert "editable" not in cell.metadata
    assert rebuilt.notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize(
    "value",
    [
        {"schema_version": 99},
        {"points": "ten"},
        {"grade": "yes", "grade_id": 5},
        {"grade_id": ["double"]},
    ],
)
def test_metadata_nbgrader_refuses_fails_nothing(known, value: dict) -> None:
    nb = student(double=ANSWER)
    nb.cells[2].metadata.nbgrader.update(value)
    extra = nbformat.v4.new_code_cell("y = 1")
    extra.metadata["nbgrader"] = "not a dict"
    nb.cells.append(extra)
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    cells = sources_and_roles(rebuilt)
    assert list(rebuilt.points.values()) == [2.0]
    assert cells[next(iter(rebuilt.points))] == (TESTS, "test")
    assert (ANSWER, "student") in cells, "the answer still runs, as student code"


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"cells": "none"}), "", json.dumps([1, 2])],
)
def test_an_unreadable_notebook_fails_only_with_a_reason(known, text: str) -> None:
    with pytest.raises(SubmissionError, match="unreadable notebook"):
        rebuild(text, known, released())


def test_nothing_handed_in_is_a_reason_not_a_crash(known) -> None:
    with pytest.raises(SubmissionError, match="no notebook"):
        rebuild(None, known, released())


def test_only_the_named_notebook_of_a_submission_is_read(tmp_path: Path) -> None:
    db = tmp_path / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment("a")
        gb.add_notebook("a", "a")
        folder = tmp_path / "submitted" / "ada" / "a"
        folder.mkdir(parents=True)
        (folder / "a.ipynb").write_text("{}")
        (folder / "numpy.py").write_text("raise SystemExit")
        (folder / "other.ipynb").write_text("{}")
        (tmp_path / "submitted" / "bob" / "a").mkdir(parents=True)
        (tmp_path / "submitted" / "bob" / "a" / "renamed.ipynb").write_text("{}")
        found = submission.find_submissions(tmp_path, gb)
    assert [(s.student, s.notebook, s.path) for s in found] == [
        ("ada", "a", folder / "a.ipynb"),
        ("bob", "a", None),
    ]


# What a student can put in a Markdown cell to run script in whoever opens the page.
SCRIPTED = (
    'notes <script>alert(1)</script> <img src=x onerror="alert(2)"> '
    '<iframe src="javascript:alert(3)"></iframe> <a href="javascript:alert(4)">a</a> '
    "[link](javascript:alert(5)) and $x^2$, `a < b`"
)


def rendered(nb: nbformat.NotebookNode, config=None) -> str:
    from nbconvert.exporters import HTMLExporter

    exporter = HTMLExporter(config=config, template_name="classic")
    return exporter.from_notebook_node(nb)[0]


def test_student_markdown_and_raw_cells_are_shown_as_text(known) -> None:
    nb = student(double=ANSWER)
    nb.cells.insert(3, nbformat.v4.new_markdown_cell(SCRIPTED))
    nb.cells.insert(4, nbformat.v4.new_raw_cell("<script>alert(6)</script>"))
    nb.cells.insert(5, nbformat.v4.new_markdown_cell("````\n<script>alert(7)</script>"))
    rebuilt = rebuild(nbformat.writes(nb), known, released())
    assert rebuilt.notebook.cells[3].source == f"```text\n{SCRIPTED}\n```"
    assert [rebuilt.notebook.cells[i].cell_type for i in (3, 4, 5)] == ["markdown"] * 3
    assert rebuilt.notebook.cells[5].source.startswith("`````text\n````\n")
    body = rendered(rebuilt.notebook).split("notes", 1)[1]
    for attack in ("<script>alert", "<img src=x", '<iframe src="javascript', "<a href"):
        assert attack not in body, attack
    assert "alert(5)" in body and "alert(7)" in body  # shown, as text


def test_the_course_config_renders_feedback_and_formgrader_pages_sanitised() -> None:
    """Feedback pages (nbgrader generate_feedback) and the formgrader render with the
    course's nbgrader_config.py: Markdown that reached them unrebuilt is shown as text,
    and a link's javascript: target is dropped; images stay."""
    from traitlets.config.loader import PyFileConfigLoader

    course = Path(__file__).resolve().parents[1] / "notebooks" / "exercises"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert config.HTMLExporter.sanitize_html is True
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(SCRIPTED)]
    plot = nbformat.v4.new_code_cell("plot()")
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
        "kgAAAABJRU5ErkJggg=="
    )
    plot.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    nb.cells.append(plot)
    unsafe = rendered(nb).split("notes", 1)[1]
    assert "<script>alert(1)" in unsafe  # what the setting is there for
    body = rendered(nb, config).split("notes", 1)[1]
    for attack in ("<script>alert", "<img src=x", '<iframe src="javascript', "<a href"):
        assert attack not in body, attack
    assert f"data:image/png;base64,{png[:20]}" in body


def test_a_notebook_without_cell_ids_is_read_without_a_warning(known) -> None:
    import warnings

    nb = json.loads(nbformat.writes(student(double=ANSWER)))
    nb["nbformat_minor"] = 5
    for cell in nb["cells"]:
        cell.pop("id", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rebuilt = rebuild(json.dumps(nb), known, released())
    assert ANSWER in [cell.source for cell in rebuilt.notebook.cells]
