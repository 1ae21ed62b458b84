"""Each lesson is a notebook and a py:percent file that agree, stored executed."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
LESSON_IDS = [p.stem for p in LESSONS]


def cell_inputs(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_there_are_lessons_and_their_names_are_numbered_verb_object() -> None:
    assert len(LESSONS) >= 4
    for path in LESSONS:
        assert re.fullmatch(r"\d\d_[a-z]+(_[a-z0-9]+)+", path.stem), path.name
    numbers = [int(p.stem[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1))


def test_every_text_lesson_has_its_notebook() -> None:
    for py in NOTEBOOKS.glob("[0-9][0-9]_*.py"):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no notebook"


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_notebook_and_py_pair_have_the_same_inputs(path: Path) -> None:
    py = path.with_suffix(".py")
    assert py.exists(), f"{path.name} has no paired {py.name}; run jupytext --sync"
    from_ipynb = jupytext.read(path)
    from_py = jupytext.read(py)
    assert cell_inputs(from_py) == cell_inputs(from_ipynb), (
        f"{path.name} and {py.name} differ; run `jupytext --sync {path}` "
        "and re-run the notebook"
    )
    assert "py:percent" in from_py.metadata["jupytext"]["formats"]


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_notebook_is_stored_from_a_clean_run_all(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not saved from Restart & Run All (execution counts {counts})"
    )
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} stores an error output"
    stderr = [
        o.text
        for c in code
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
    ]
    assert not any("I0000" in t or "E0000" in t for t in stderr), (
        f"{path.name} stores TensorFlow C++ log lines"
    )
    assert notebook.metadata.kernelspec.name == "python3"
