"""What a submission is, and the notebook the grader runs for it.

A submission is ``submitted/<student>/<assignment>/<notebook>.ipynb``; only that one
notebook is read (every other file the student put beside it is ignored, it never
reaches a kernel). The notebook that runs is rebuilt, not trusted:

- the skeleton (every cell of the release, in the release's order, with the release's
  metadata and kernelspec) comes from ``release/``, the cell types, the sources of the
  locked cells (hidden tests included) and the nbgrader metadata from the gradebook;
- from the student's notebook only two things are taken: the source of each answer
  cell (matched by ``grade_id``, first occurrence) and the cells the student added
  (placed after the release cell they followed), with all their metadata dropped;
- a cell that claims an nbgrader ``grade_id`` it does not own (a forged, pasted or
  duplicated cell) counts as an added cell, and a test or locked cell the student
  deleted or changed comes back as released. Tags and other metadata of the
  student's cells are dropped (``raises-exception`` or ``skip-execution`` cannot
  change a verdict).
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.validator import MissingIDFieldWarning
from nbgrader.api import Gradebook

Role = str


class SubmissionError(Exception):
    """This one submission cannot be graded; the message says why, for the report."""


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one assignment."""

    student: str
    assignment: str
    notebook: str
    path: Path | None
    """The submitted notebook, or None when the student handed in no notebook."""

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.assignment


@dataclass
class Rebuilt:
    """The notebook to run, each code cell's role, and what the rebuild changed."""

    notebook: NotebookNode
    roles: dict[int, Role]
    points: dict[int, float]
    """Test cell index -> its points, from the gradebook."""
    notes: list[str] = field(default_factory=list)


def find_submissions(
    course: Path, gradebook: Gradebook, assignments: list[str] | None = None
) -> list[Submission]:
    """Every (student, assignment) pair under ``submitted/``, sorted.

    ``path`` is None when the assignment's folder holds no notebook of that name (the
    report calls it "no notebook").
    """
    known = {a.name: a for a in gradebook.assignments}
    wanted = sorted(known) if assignments is None else assignments
    for name in wanted:
        if name not in known:
            raise SubmissionError(
                f"no assignment '{name}' in the gradebook: run `make student` first"
            )
    submitted = course / "submitted"
    found = []
    students = (
        sorted(p for p in submitted.iterdir() if p.is_dir())
        if submitted.is_dir()
        else []
    )
    for folder in students:
        for assignment in wanted:
            where = folder / assignment
            if not where.is_dir():
                continue
            for notebook in sorted(nb.name for nb in known[assignment].notebooks):
                path = where / f"{notebook}.ipynb"
                found.append(
                    Submission(
                        folder.name,
                        assignment,
                        notebook,
                        path if path.is_file() else None,
                    )
                )
    return found


def _nbgrader_meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def read_text(path: Path, limit: int = 32 * 1024**2) -> str:
    """A submitted notebook's text (the grader reads it; kernels never see the file)."""
    try:
        if path.stat().st_size > limit:
            raise SubmissionError(
                f"unreadable notebook: larger than {limit // 1024**2} MiB"
            )
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(f"unreadable notebook: {error}") from None


def _read_student(text: str) -> NotebookNode:
    try:
        with warnings.catch_warnings():
            # a student's notebook without cell ids is read as it is (the rebuilt one
            # gets ids): no warning for the instructor to puzzle over
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            nb = nbformat.reads(text, as_version=4)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SubmissionError(f"unreadable notebook: {message[:200]}") from None
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("unreadable notebook: it has no list of cells")
    return nb


def _as_text(text: str) -> str:
    """A student's Markdown or raw cell as a fenced block of plain text.

    The autograded notebook is rendered in the instructor's browser (formgrader) and
    becomes the student's feedback page: a tag or a link in a student's cell could run
    script there. Inside a fence, Markdown renders nothing: no HTML, no link. The
    fence is longer than any run of backticks in the text, so the text cannot close
    it.
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _source(cell: object) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        source = "".join(str(line) for line in source)
    return source if isinstance(source, str) else ""


def gradebook_cells(gradebook: Gradebook, notebook: str, assignment: str) -> dict:
    """grade_id -> the gradebook's nbgrader metadata, cell type and (locked) source.

    Raises ``MissingEntry`` when the gradebook does not know the notebook.
    """
    nb = gradebook.find_notebook(notebook, assignment)
    cells: dict[str, dict] = {}

    def entry(name: str, cell_type: str) -> dict:
        return cells.setdefault(
            name,
            {
                "cell_type": cell_type,
                "meta": {
                    "grade": False,
                    "grade_id": name,
                    "locked": False,
                    "schema_version": 3,
                    "solution": False,
                    "task": False,
                },
                "source": None,
            },
        )

    for cell in nb.source_cells:
        item = entry(cell.name, cell.cell_type)
        item["meta"]["locked"] = bool(cell.locked)
        if cell.locked:
            item["source"] = cell.source
    for cell in nb.grade_cells:
        item = entry(cell.name, cell.cell_type)
        item["meta"]["grade"] = True
        item["meta"]["points"] = float(cell.max_score)
    for cell in nb.solution_cells:
        entry(cell.name, "code")["meta"]["solution"] = True
    for cell in nb.task_cells:
        item = entry(cell.name, "markdown")
        item["meta"]["task"] = True
        item["meta"]["points"] = float(cell.max_score)
    return cells


def rebuild(text: str | None, known: dict, release: NotebookNode) -> Rebuilt:
    """The notebook to grade: the release and the gradebook, with the student's answers.

    ``text`` is the submitted notebook (None: nothing handed in), ``known`` what
    :func:`gradebook_cells` returns, ``release`` the released notebook.

    Raises
    ------
    SubmissionError
        The notebook cannot be read; the message is the reason for the report.
    """
    if text is None:
        raise SubmissionError("no notebook was handed in")
    student = _read_student(text)
    notes: list[str] = []

    # The student's answers and added cells, each added cell anchored after the last
    # release cell that came before it.
    answers: dict[str, str] = {}
    added: dict[str | None, list[NotebookNode]] = {}
    seen: set[str] = set()
    anchor: str | None = None
    forged = 0
    for cell in student.cells:
        if not isinstance(cell, dict):
            continue
        meta = _nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        cell_type = cell.get("cell_type")
        if isinstance(grade_id, str) and grade_id in known and grade_id not in seen:
            seen.add(grade_id)
            anchor = grade_id
            info = known[grade_id]
            if info["meta"]["solution"] and cell_type == info["cell_type"]:
                answers[grade_id] = _source(cell)
            continue
        if grade_id is not None:
            forged += 1
        if cell_type not in ("code", "markdown", "raw"):
            continue
        if cell_type == "code":
            new = nbformat.v4.new_code_cell(_source(cell))
        else:  # the student's notes: shown, never rendered
            new = nbformat.v4.new_markdown_cell(_as_text(_source(cell)))
        added.setdefault(anchor, []).append(new)
    if forged:
        notes.append(
            f"{forged} cell(s) claimed a grade_id they do not own: run as student cells"
        )

    cells: list[NotebookNode] = list(added.get(None, []))
    restored = []
    release_ids = []
    for released in release.cells:
        meta = _nbgrader_meta(released)
        grade_id = meta.get("grade_id")
        if grade_id not in known:
            raise SubmissionError(
                f"the release's cell {grade_id!r} is not in the gradebook: run "
                "`make student` again"
            )
        release_ids.append(grade_id)
        info = known[grade_id]
        cell = copy.deepcopy(released)
        cell.cell_type = info["cell_type"]
        cell.metadata = copy.deepcopy(released.get("metadata", {}))
        cell.metadata["nbgrader"] = copy.deepcopy(info["meta"])
        if info["source"] is not None:
            cell.source = info["source"]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        if info["meta"]["solution"] and grade_id in answers:
            cell.source = answers[grade_id]
        if grade_id not in seen:
            restored.append(grade_id)
        cells.append(cell)
        cells.extend(added.get(grade_id, []))
    for grade_id, extra in added.items():
        if grade_id is not None and grade_id not in release_ids:
            cells.extend(extra)
    if restored:
        notes.append(f"cells put back: {', '.join(restored)}")

    nb = nbformat.v4.new_notebook()
    nb.metadata = copy.deepcopy(release.metadata)
    nb.cells = cells
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    roles: dict[int, Role] = {}
    points: dict[int, float] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader")
        if meta is None or meta["solution"]:
            roles[index] = "student"
        elif meta["grade"]:
            roles[index] = "test"
            points[index] = meta["points"]
        else:
            roles[index] = "setup"
    return Rebuilt(nb, roles, points, notes)


def read_release(course: Path, assignment: str, notebook: str) -> NotebookNode:
    """The released student notebook (the skeleton every submission is rebuilt on)."""
    path = course / "release" / assignment / f"{notebook}.ipynb"
    if not path.is_file():
        raise SubmissionError(f"no release {path}: run `make student` first")
    return nbformat.read(path, as_version=4)


def read_timestamp(submission: Submission) -> str | None:
    """The submission time nbgrader's collectors write beside the notebook, if any."""
    if submission.path is None:
        return None
    stamp = submission.path.parent / "timestamp.txt"
    try:
        text = stamp.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text[:64] or None
