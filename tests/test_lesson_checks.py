"""The lesson check compares exact outputs and checks trained ones in code.

A lesson's stored outputs are of two kinds. *Exact* ones are fixed by the data and the
math (shapes, counts, parameter counts, a hand formula equal to Keras) and nbval
compares them character for character. *Trained* ones depend on the floating-point
path of training, which changes with the CPU, the thread count and oneDNN; their cell
carries the tag ``nbval-ignore-output`` and the next code cell checks the result in
code against a band that holds on every machine (an ``assert``). These tests keep that
contract: nothing else is switched off, and no ignored output goes unchecked.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
LESSON_IDS = [p.stem for p in LESSONS]

IGNORE = "nbval-ignore-output"
CHECK = re.compile(r"^\s*(assert\b|np\.testing\.assert_)", re.MULTILINE)
# nbval reads these as cell comments too; the lessons use tags only.
NBVAL_COMMENT = re.compile(r"#\s*NBVAL_", re.IGNORECASE)


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_only_the_ignore_output_tag_relaxes_the_check(path: Path) -> None:
    for number, cell in enumerate(code_cells(path), start=1):
        nbval_tags = [t for t in tags(cell) if t.startswith("nbval")]
        assert set(nbval_tags) <= {IGNORE}, (
            f"{path.name}, code cell {number}: only `{IGNORE}` may relax the lesson "
            f"check, found {nbval_tags}"
        )
        assert not NBVAL_COMMENT.search(cell.source), (
            f"{path.name}, code cell {number}: use the cell tag `{IGNORE}`, "
            "not an NBVAL_ comment"
        )


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_every_ignored_output_is_checked_by_the_next_code_cell(path: Path) -> None:
    cells = code_cells(path)
    for number, cell in enumerate(cells, start=1):
        if IGNORE not in tags(cell):
            continue
        assert cell.outputs, (
            f"{path.name}, code cell {number} is tagged `{IGNORE}` but shows nothing; "
            "untag it so that its (empty) output is compared"
        )
        following = cells[number] if number < len(cells) else None
        assert following is not None and CHECK.search(following.source), (
            f"{path.name}, code cell {number} prints trained results that nbval does "
            "not compare; the next code cell must check them with `assert` or "
            "`np.testing.assert_*` against a band that holds on every machine"
        )
        assert IGNORE not in tags(following), (
            f"{path.name}, code cell {number + 1} checks trained results, so its own "
            "output must stay compared"
        )


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_most_outputs_stay_compared_exactly(path: Path) -> None:
    cells = [cell for cell in code_cells(path) if cell.outputs]
    ignored = [cell for cell in cells if IGNORE in tags(cell)]
    assert len(ignored) <= len(cells) // 2, (
        f"{path.name} ignores {len(ignored)} of its {len(cells)} outputs; keep "
        "exact outputs (shapes, counts, formulas) in cells of their own"
    )
