"""The graded exercises' course folder: structure, pairing, git, and the grading guard.

These tests take seconds; tests/test_exercises_grading.py grades real submissions.
"""

from __future__ import annotations

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


# -- the grading guard (notebooks/exercises/grading.py) -----------------------------

PROTECTED, TRUSTED_IMPORTS = grading._protected_names(
    {
        "setup": "import numpy as np\n(train_x, train_y), _ = load(), 0\nn = 1",
        "t_visible": "rows = f(train_x)\nassert np.all(rows)",
    },
    {"t_visible"},
)


def test_guard_protects_builtins_and_the_names_tests_read() -> None:
    assert {"np", "train_x", "len", "isinstance"} <= PROTECTED
    assert "rows" not in PROTECTED, "the test sets rows itself"
    assert "n" not in PROTECTED, "no test reads n"
    assert ("", "numpy", "np") in TRUSTED_IMPORTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_guard_runs_every_reference_answer(assignment: str) -> None:
    nb = source_notebook(assignment)
    locked = {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.nbgrader["locked"]
    }
    tests = {c.metadata.nbgrader["grade_id"] for c in nbgrader_cells(nb, grade=True)}
    protected, imports = grading._protected_names(locked, tests)
    for cell in nbgrader_cells(nb, solution=True):
        assert grading.find_problems(cell.source, protected, imports) == []


@pytest.mark.parametrize(
    "code",
    [
        "def count(y):\n    return np.bincount(y, minlength=10)",
        "import numpy as np\nimport math\nfrom keras import layers",
        "from course_utils.models import build_ann\nmodel = build_ann()",
        "rows = train_x.reshape(-1, 784) / 255",
        "def f(len):\n    max = 3\n    return len + max",
        "x = [i for i in range(3)]\ntry:\n    pass\nexcept ValueError as e:\n    x = e",
        "this is not Python",
    ],
)
def test_guard_lets_ordinary_answers_run(code: str) -> None:
    assert grading.find_problems(code, PROTECTED, TRUSTED_IMPORTS) == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os\nos._exit(0)", "imports `os`"),
        ("import sys\nsys.exit()", "imports `sys`"),
        ("from importlib import import_module", "imports `importlib`"),
        ("import builtins", "imports `builtins`"),
        ("np.testing.assert_allclose = print", "assigns or deletes the attribute"),
        ("del np.testing", "assigns or deletes the attribute"),
        ("def all(x):\n    return True", "rebinds `all`"),
        ("isinstance = lambda *a: True", "rebinds `isinstance`"),
        ("train_x = train_x[:10]", "rebinds `train_x`"),
        ("import keras as np", "rebinds `np`"),
        ("for np in range(3):\n    pass", "rebinds `np`"),
        ("class Anything(int):\n    pass", "may not define classes"),
        ("x = (1).__class__", "private attribute `.__class__`"),
        ("x = __builtins__", "uses `__builtins__`"),
        ("f = getattr(np, 'testing')", "uses `getattr`"),
        ("exec('1')", "uses `exec`"),
        ("text = open('../../../gradebook.db').read()", "uses `open`"),
        ("get_ipython().input_transformers_cleanup.append(f)", "uses `get_ipython`"),
        ("%env", "uses `get_ipython`"),
        ("!cat ../../../source/*/*.ipynb", "uses `get_ipython`"),
        ("raw = np.fromfile('../../../gradebook.db')", "`.fromfile`"),
        ("x = np.lib.format", "`.lib`"),
        ("from course_utils.data import os", "imports `os`"),
        ("p = course_utils.data.Path('.')", "`.Path`"),
        ("def f():\n    global np\n    np = 1", "`global`"),
        ("def f(y=np.testing.__dict__):\n    pass", "private attribute"),
    ],
)
def test_guard_stops_cheats(code: str, reason: str) -> None:
    problems = grading.find_problems(code, PROTECTED, TRUSTED_IMPORTS)
    assert any(reason in problem for problem in problems), problems


def test_kernel_launcher_limits_memory() -> None:
    """The launcher LimitedKernelManager puts before the kernel's command line."""
    allocate = "import numpy; numpy.ones(10**9)"  # 8 GB
    limited = subprocess.run(
        [
            sys.executable,
            "-c",
            grading._LIMIT_THEN_EXEC,
            str(2 * 1024**3),
            str(1024**2),
            sys.executable,
            "-c",
            allocate,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "MemoryError" in limited.stderr


def test_limited_kernel_manager_wraps_the_kernel_command() -> None:
    manager = grading.LimitedKernelManager(
        kernel_name="python3", memory_limit=2**30, file_size_limit=2**20
    )
    command = manager.format_kernel_cmd()
    assert command[:3] == [sys.executable, "-c", grading._LIMIT_THEN_EXEC]
    assert command[3:5] == [str(2**30), str(2**20)]
    assert "ipykernel_launcher" in " ".join(command[5:])
