"""The graded exercises' course folder: structure, pairing, git, nbgrader's config.

These tests take seconds; tests/test_exercises_grading.py grades real submissions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "notebooks" / "exercises"
ASSIGNMENTS = (
    "01_explore_mnist",
    "02_build_the_ann",
    "03_train_the_ann",
    "04_evaluate_and_regularise",
)
TOTAL = 10

sys.path.insert(0, str(COURSE))
import grading  # noqa: E402  (notebooks/exercises/grading.py, used by nbgrader_config)


def source_notebook(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", 4)


def nbgrader_cells(nb: nbformat.NotebookNode, **flags: bool) -> list:
    return [
        cell
        for cell in nb.cells
        if all(cell.metadata.get("nbgrader", {}).get(k) == v for k, v in flags.items())
    ]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_exercise_states_its_total_and_its_points_add_up(assignment: str) -> None:
    nb = source_notebook(assignment)
    points = sum(c.metadata.nbgrader["points"] for c in nbgrader_cells(nb, grade=True))
    assert points == TOTAL
    assert f"**{TOTAL} points**" in nb.cells[0].source
    parts = re.findall(
        r"^## \d+\. .*\((\d+) points\)",
        "\n".join(c.source for c in nb.cells if c.cell_type == "markdown"),
        flags=re.MULTILINE,
    )
    assert len(parts) >= 3, "each exercise has at least 3 graded parts"
    assert sum(map(int, parts)) == TOTAL, "the parts' stated points add up to the total"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_part_has_visible_and_hidden_tests(assignment: str) -> None:
    tests = nbgrader_cells(source_notebook(assignment), grade=True)
    visible = [c for c in tests if c.metadata.nbgrader["grade_id"].endswith("_visible")]
    hidden = [c for c in tests if c.metadata.nbgrader["grade_id"].endswith("_hidden")]
    assert len(visible) == len(hidden) >= 3
    assert len(visible) + len(hidden) == len(tests)
    for cell in hidden:
        shown, _, secret = cell.source.partition("### BEGIN HIDDEN TESTS")
        assert secret.strip(), f"{cell.metadata.nbgrader['grade_id']} hides no test"
        code = [line for line in shown.splitlines() if not line.startswith("#")]
        assert code, "a hidden-test cell shows one line that fails in the blank release"
    for cell in visible:
        assert "HIDDEN" not in cell.source
        assert "assert" in cell.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_cell_a_student_must_not_change_is_locked(assignment: str) -> None:
    for cell in source_notebook(assignment).cells:
        meta = cell.metadata.get("nbgrader")
        assert meta is not None, f"cell {cell.get('id')} has no nbgrader metadata"
        assert meta["solution"] or meta["locked"], meta["grade_id"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_load_data_through_course_utils_with_the_lessons_names(
    assignment: str,
) -> None:
    setup = "\n".join(c.source for c in nbgrader_cells(source_notebook(assignment)))
    assert "from course_utils.data import load_mnist" in setup
    assert "(train_x, train_y), (test_x, test_y) = load_mnist(" in setup


def test_source_folders_hold_only_their_notebook() -> None:
    """generate_assignment copies every other file of source/<a>/ to the students."""
    folders = sorted(p.name for p in (COURSE / "source").iterdir())
    assert folders == list(ASSIGNMENTS)
    tracked = subprocess.run(
        ["git", "ls-files", "notebooks/exercises/source"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(tracked) == [
        f"notebooks/exercises/source/{a}/{a}.ipynb" for a in ASSIGNMENTS
    ]


@pytest.mark.parametrize(
    "path",
    [
        "release/01_explore_mnist/01_explore_mnist.ipynb",
        "submitted/ada/01_explore_mnist/01_explore_mnist.ipynb",
        "autograded/ada/01_explore_mnist/01_explore_mnist.ipynb",
        "feedback/ada/01_explore_mnist/01_explore_mnist.html",
        "gradebook.db",
        "grades.csv",
        "reports/grading-20260101-120000.md",
    ],
)
def test_generated_files_are_ignored_by_git(path: str) -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", f"notebooks/exercises/{path}"], cwd=ROOT
    )
    assert result.returncode == 0, f"git does not ignore notebooks/exercises/{path}"


def test_jupytext_pairs_no_exercise_notebook(tmp_path: Path) -> None:
    """The exercises' jupytext.toml overrides the repository's py:percent pairing."""
    jupytext = [sys.executable, "-m", "jupytext", "--sync"]
    shutil.copy(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    for folder, own_config in (("exercises", True), ("lessons", False)):
        notebook = tmp_path / folder / "source" / "x" / "x.ipynb"
        notebook.parent.mkdir(parents=True)
        shutil.copy(
            COURSE / "source" / ASSIGNMENTS[0] / f"{ASSIGNMENTS[0]}.ipynb", notebook
        )
        if own_config:
            shutil.copy(COURSE / "jupytext.toml", tmp_path / folder / "jupytext.toml")
        subprocess.run([*jupytext, str(notebook)], check=True, capture_output=True)
        paired = notebook.with_suffix(".py").exists()
        assert paired is not own_config, folder
    # and the real folder has no pair either
    assert not list((COURSE / "source").rglob("*.py"))


# -- nbgrader autograde is refused ----------------------------------------------------


def test_nbgrader_autograde_is_refused_with_the_command_to_use() -> None:
    """The course's config replaces autograde's preprocessors by one that refuses."""
    config = (COURSE / "nbgrader_config.py").read_text()
    assert "c.Autograde.sanitize_preprocessors = [RefuseAutograde]" in config
    assert "c.Autograde.autograde_preprocessors = [RefuseAutograde]" in config
    with pytest.raises(RuntimeError, match="make grade"):
        grading.RefuseAutograde().preprocess(nbformat.v4.new_notebook(), {})


def test_nbgrader_autograde_stops_before_touching_what_make_grade_wrote(
    tmp_path: Path,
) -> None:
    """Run from the command line, `nbgrader autograde` exits with the message while it
    loads the course's config: a student's autograded/ folder stays as it was."""
    course = tmp_path / "exercises"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(
        "release", "submitted", "autograded", "feedback", "gradebook.db*", "reports"
    ))  # fmt: skip
    assignment = ASSIGNMENTS[0]
    submitted = course / "submitted" / "ada" / assignment / f"{assignment}.ipynb"
    submitted.parent.mkdir(parents=True)
    shutil.copy(course / "source" / assignment / f"{assignment}.ipynb", submitted)
    graded = course / "autograded" / "ada" / assignment / f"{assignment}.ipynb"
    graded.parent.mkdir(parents=True)
    graded.write_text("graded by make grade")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [bin_dir / "nbgrader", "autograde", assignment, "--student", "ada", "--force"],
        cwd=course,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        timeout=120,
    )
    assert result.returncode != 0
    assert "make grade" in result.stderr
    assert graded.read_text() == "graded by make grade"
    assert not (course / "gradebook.db").exists()
