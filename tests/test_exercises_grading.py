"""The graded exercises grade right and cannot be gamed (python -m grader, end to end).

One module fixture copies notebooks/exercises to a temporary folder, runs ``make
student`` there, writes a class of submissions built from the student release (the
reference answers, the untouched release, partly correct answers, cheats and attacks
on the grader), runs ``make grade`` once over all of them, in the real sandbox with two
workers, and every test reads the result: grades.csv, the report, the gradebook and the
autograded notebooks. The repository's course folder is never touched.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from grader.pipeline import HIDDEN_BLOCK, HIDDEN_NOTE

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "notebooks" / "exercises"
ASSIGNMENTS = (
    "01_explore_mnist",
    "02_build_the_ann",
    "03_train_the_ann",
    "04_evaluate_and_regularise",
)
TOTAL = 10.0
TIMEOUT = 60  # seconds per cell (the default; a setup cell on a busy 2-core machine)
TOTAL_TIMEOUT = 180  # seconds per notebook (the default is 300)
MEMORY = 2  # GiB per kernel (the default is 3)
GENERATED = (
    "release",
    "submitted",
    "autograded",
    "feedback",
    "gradebook.db*",
    "reports",
)

pytestmark = pytest.mark.slow

Notebook = nbformat.NotebookNode


# -- building submissions from the release -------------------------------------------


def solutions(assignment: str) -> dict[str, str]:
    """The source notebook's answers, markers removed: grade_id -> code."""
    nb = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", 4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = cell.source.splitlines()
            answers[meta["grade_id"]] = "\n".join(
                line
                for line in lines
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
    return answers


def cell_index(nb: Notebook, grade_id: str) -> int:
    for index, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise KeyError(grade_id)


def answer(nb: Notebook, answers: dict[str, str]) -> Notebook:
    """Write answers into the answer cells, as a student types them."""
    for grade_id, code in answers.items():
        nb.cells[cell_index(nb, grade_id)].source = code
    return nb


def added_cell(source: str, metadata: dict | None = None) -> Notebook:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update(metadata or {})
    return cell


def reference(assignment: str, **changes: str) -> dict[str, str]:
    """The reference answers, with some replaced (a value of None leaves it blank)."""
    answers = solutions(assignment)
    for grade_id, code in changes.items():
        if code is None:
            answers.pop(grade_id)
        else:
            answers[grade_id] = code
    return answers


EX1 = "01_explore_mnist"
HONEST_EX1 = {"count_labels": solutions(EX1)["count_labels"]}
"""Cheat submissions answer count_labels honestly: 3 points that they earn."""

PARTIAL = {
    EX1: reference(
        EX1,
        flatten_images=(  # forgets to divide by 255: visible tests fail
            "def flatten_images(images):\n"
            "    return images.reshape(-1, 784).astype(np.float32)"
        ),
        rarest_digit="rarest_digit = int(np.argmax(count_labels(train_y)))",
        mean_image=None,
    ),
    "02_build_the_ann": reference(
        "02_build_the_ann",
        count_parameters=(  # forgets the biases
            "def count_parameters(n_input, n_hidden, n_output):\n"
            "    return n_input * n_hidden + n_hidden * n_output"
        ),
        forward=solutions("02_build_the_ann")["forward"].replace(
            "images.reshape(len(images), -1)", "images.reshape(5, -1)"
        ),  # right for the 5 visible images only
    ),
    "03_train_the_ann": reference(
        "03_train_the_ann",
        softmax=(  # overflows on large logits: hidden tests fail
            "def softmax(logits):\n"
            "    exp = np.exp(logits)\n"
            "    return exp / exp.sum(axis=1, keepdims=True)"
        ),
        iterations_per_epoch=(
            "def iterations_per_epoch(n_samples, n_batch):\n"
            "    return n_samples // n_batch"
        ),
        compile_model=None,
    ),
    "04_evaluate_and_regularise": reference(
        "04_evaluate_and_regularise",
        most_confused_pair=(  # the diagonal set to 0: no mistakes gives (0, 0)
            "def most_confused_pair(matrix):\n"
            "    np.fill_diagonal(matrix, 0)\n"
            "    true, predicted = np.unravel_index(np.argmax(matrix), matrix.shape)\n"
            "    return int(true), int(predicted)"
        ),
        build_regularised_model=(  # no regularisation: about 70 %
            "def build_regularised_model():\n"
            "    model = build_ann()\n"
            "    model.compile(optimizer='adam', "
            "loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
            "    return model"
        ),
    ),
}
PARTIAL_SCORES = {
    EX1: {
        "count_labels_visible": 2,
        "count_labels_hidden": 1,
        "rarest_digit_visible": 1,
    },
    "02_build_the_ann": {
        "build_model_visible": 2,
        "build_model_hidden": 1,
        "forward_visible": 2,
    },
    "03_train_the_ann": {
        "softmax_visible": 2,
        "cross_entropy_visible": 2,
        "cross_entropy_hidden": 1,
    },
    "04_evaluate_and_regularise": {
        "confusion_matrix_visible": 2,
        "confusion_matrix_hidden": 1,
        "most_confused_pair_visible": 1,
    },
}
"""What each graded cell of the partly correct submissions earns (others: 0)."""

# A smart fake flatten_images: right shape, dtype and range, wrong values. Only the
# assert_allclose / assert_array_equal checks catch it, so patching them would pay.
FAKE_FLATTEN = (
    "def flatten_images(images):\n"
    "    row = np.linspace(0, 1, 784, dtype=np.float32)\n"
    "    return np.tile(row, (len(images), 1))\n"
)


def edit_tests(nb: Notebook) -> Notebook:
    """Rewrite, unlock, re-type and re-weight locked test cells."""
    nb.cells[cell_index(nb, "flatten_images_visible")].source = "print('all good')"
    hidden = nb.cells[cell_index(nb, "flatten_images_hidden")]
    hidden.metadata.nbgrader["locked"] = False
    hidden.source = "pass"
    visible = nb.cells[cell_index(nb, "rarest_digit_visible")]
    visible.metadata.nbgrader["points"] = 100
    visible.source = "pass"
    mean_hidden = nb.cells[cell_index(nb, "mean_image_hidden")]
    mean_hidden.cell_type = "markdown"
    del mean_hidden["outputs"], mean_hidden["execution_count"]
    return answer(nb, {**HONEST_EX1, "flatten_images": FAKE_FLATTEN})


def delete_tests(nb: Notebook) -> Notebook:
    """Delete every test cell but those of count_labels."""
    nb.cells = [
        cell
        for cell in nb.cells
        if not cell.metadata.get("nbgrader", {}).get("grade")
        or cell.metadata.nbgrader["grade_id"].startswith("count_labels")
    ]
    return answer(nb, {**HONEST_EX1, "flatten_images": FAKE_FLATTEN})


def delete_tests_but_answer(nb: Notebook) -> Notebook:
    """Delete every test cell, but answer everything right: still full marks."""
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    return answer(nb, solutions(EX1))


def paste_test_cell(nb: Notebook) -> Notebook:
    """Copy and paste a test cell (JupyterLab copies its metadata), answer everything.

    Plain nbgrader 0.9.6 stops the whole grading run at such a notebook.
    """
    index = cell_index(nb, "flatten_images_visible")
    pasted = copy.deepcopy(nb.cells[index])
    pasted["id"] = "pasted"
    nb.cells.insert(index + 1, pasted)
    return answer(nb, solutions(EX1))


def forge_cells(nb: Notebook) -> Notebook:
    """Add a 50-point test cell of one's own, and a passing twin of a real test."""
    forged = {
        "grade": True,
        "grade_id": "bonus",
        "locked": True,
        "points": 50,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    nb.cells.append(added_cell("pass", {"nbgrader": forged}))
    twin = copy.deepcopy(nb.cells[cell_index(nb, "flatten_images_visible")])
    twin.source = "pass"
    twin["id"] = "twin"
    nb.cells.insert(cell_index(nb, "flatten_images"), twin)
    return answer(nb, {**HONEST_EX1, "flatten_images": FAKE_FLATTEN})


def patch_test_helpers(nb: Notebook) -> Notebook:
    return answer(
        nb,
        {
            **HONEST_EX1,
            "flatten_images": FAKE_FLATTEN
            + "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
            "np.testing.assert_array_equal = lambda *args, **kwargs: None\n",
        },
    )


def shadow_builtins(nb: Notebook) -> Notebook:
    return answer(
        nb,
        {
            **HONEST_EX1,
            "flatten_images": FAKE_FLATTEN,
            "rarest_digit": (
                "import builtins\n"
                "builtins.isinstance = lambda *args: True\n"
                "def all(values):\n"
                "    return True\n"
                "rarest_digit = 0"
            ),
        },
    )


def always_equal(nb: Notebook) -> Notebook:
    return answer(
        nb,
        {
            **HONEST_EX1,
            "rarest_digit": (
                "class Anything(int):\n"
                "    def __eq__(self, other):\n"
                "        return True\n"
                "    __hash__ = int.__hash__\n"
                "rarest_digit = Anything(1)"
            ),
        },
    )


def tamper_with_ipython(nb: Notebook) -> Notebook:
    """Blank every later cell that holds tests, and hide tracebacks."""
    blank_tests = (
        "ip = get_ipython()\n"
        "ip.input_transformers_cleanup.append(\n"
        "    lambda lines: ['pass\\n'] if 'tests' in ''.join(lines) else lines\n"
        ")\n"
        "ip.showtraceback = lambda *args, **kwargs: None"
    )
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(blank_tests))
    return answer(
        nb, {**HONEST_EX1, "rarest_digit": "%env NBGRADER_EXECUTION\nrarest_digit = 5"}
    )


def read_hidden_tests(nb: Notebook) -> Notebook:
    """Look up the hidden test's expected answer in source/ and in the gradebook."""
    return answer(
        nb,
        {
            **HONEST_EX1,
            "rarest_digit": (
                "path = '../../../source/01_explore_mnist/01_explore_mnist.ipynb'\n"
                "text = open(path).read()\n"
                "rarest_digit = int(text.split('rarest_digit == ')[1][0])"
            ),
            "mean_image": (
                "raw = np.fromfile('../../../gradebook.db', dtype=np.uint8)\n"
                "def mean_image(images, labels, digit):\n"
                "    return raw"
            ),
        },
    )


def exit_kernel(nb: Notebook) -> Notebook:
    return answer(
        nb,
        {
            **HONEST_EX1,
            "flatten_images": "import sys\nsys.exit(0)",
            "rarest_digit": "import os\nos._exit(0)",
        },
    )


def loop_forever(nb: Notebook) -> Notebook:
    """Loop in the first answer; answer mean_image honestly after it."""
    mean_image = solutions(EX1)["mean_image"]
    return answer(
        nb,
        {
            **HONEST_EX1,
            "flatten_images": "while True:\n    pass",
            "mean_image": mean_image,
        },
    )


def allocate_too_much(nb: Notebook) -> Notebook:
    """Allocate 8 GB in the first answer; answer mean_image honestly after it."""
    mean_image = solutions(EX1)["mean_image"]
    return answer(
        nb,
        {
            **HONEST_EX1,
            "flatten_images": "big = np.ones(1_000_000_000)\n" + FAKE_FLATTEN,
            "mean_image": mean_image,
        },
    )


CHEATS: dict[str, tuple[Callable[[Notebook], Notebook], float]] = {
    "edit_tests": (edit_tests, 3),
    "delete_tests": (delete_tests, 3),
    "delete_tests_but_answer": (delete_tests_but_answer, 10),
    "forge_cells": (forge_cells, 3),
    "paste_test_cell": (paste_test_cell, 10),
    "patch_test_helpers": (patch_test_helpers, 3),
    "shadow_builtins": (shadow_builtins, 3),
    "always_equal": (always_equal, 4),  # as `rarest_digit = 1`: 1 visible point
    "tamper_with_ipython": (tamper_with_ipython, 3),
    "read_hidden_tests": (read_hidden_tests, 3),
    "exit_kernel": (exit_kernel, 3),
    "loop_forever": (loop_forever, 5),
    "allocate_too_much": (allocate_too_much, 5),
}
"""Cheat on exercise 1 -> its honest score (count_labels: 3, mean_image: 2, all: 10;
any digit passes rarest_digit's visible test: 1)."""


# -- attacks on the grader itself: they know the course's absolute paths -------------


def frames_read_source(nb: Notebook, course: Path) -> Notebook:
    """Reach the builtins through a generator's frame, read the hidden tests."""
    source = course / "source" / EX1 / f"{EX1}.ipynb"
    return answer(
        nb,
        {
            **HONEST_EX1,
            "rarest_digit": (
                "def gen():\n"
                "    yield\n"
                "reach = gen().gi_frame.f_builtins\n"
                f"text = reach['open']({str(source)!r}).read()\n"
                "rarest_digit = int(text.split('rarest_digit == ')[1][0])"
            ),
        },
    )


def match_write_gradebook(nb: Notebook, course: Path) -> Notebook:
    """Find os through match class patterns, zero everyone's grades in gradebook.db."""
    return answer(
        nb,
        {
            **HONEST_EX1,
            "rarest_digit": (
                "match ().__class__.__base__:\n"
                "    case type(__subclasses__=subclasses):\n"
                "        pass\n"
                "wrap = [c for c in subclasses() if c.__name__ == '_wrap_close'][0]\n"
                "system = wrap.__init__.__globals__['system']\n"
                "import sqlite3\n"
                f"db = sqlite3.connect({str(course / 'gradebook.db')!r})\n"
                "db.execute('update grade set auto_score = 0')\n"
                "db.commit()\n"
                "rarest_digit = 1"
            ),
        },
    )


def private_submodule_copy(nb: Notebook, course: Path) -> Notebook:
    """Read another student's notebook through a private NumPy module, run it."""
    other = course / "submitted" / "reference" / EX1 / f"{EX1}.ipynb"
    steal = (
        "from numpy.lib import _datasource\n"
        "import json\n"
        f"cells = json.loads(_datasource.open({str(other)!r}).read())['cells']\n"
        "for cell in cells:\n"
        "    if cell['metadata'].get('nbgrader', {}).get('solution'):\n"
        "        exec(''.join(cell['source']))\n"
    )
    return answer(nb, {**HONEST_EX1, "flatten_images": steal})


SHADOW = """\
import pathlib
pathlib.Path({marker!r}).write_text("a submitted .py file ran")
from numpy import *  # noqa
"""


def py_shadow(nb: Notebook, course: Path) -> Notebook:
    """Hand in numpy.py and course_utils.py beside the notebook (see the fixture)."""
    return answer(nb, dict(HONEST_EX1))


def ipython_startup(nb: Notebook, course: Path) -> Notebook:
    """Write IPython startup files that would patch the tests of every later student."""
    startup = course.parent / "ipython" / "profile_default" / "startup"
    patch = "import numpy\nnumpy.testing.assert_allclose = print\n"
    plant = (
        "import os\n"
        f"for folder in ({str(startup)!r}, os.path.expanduser("
        "'~/.ipython/profile_default/startup')):\n"
        "    try:\n"
        "        os.makedirs(folder, exist_ok=True)\n"
        "        with open(os.path.join(folder, '00-pass.py'), 'w') as f:\n"
        f"            f.write({patch!r})\n"
        "    except OSError:\n"
        "        pass\n"
    )
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(plant))
    return answer(nb, {**HONEST_EX1, "flatten_images": FAKE_FLATTEN})


def kill_grader(nb: Notebook, course: Path) -> Notebook:
    """Kill every process of the grading run it can find, then its own kernel."""
    kill = (
        "import os, signal\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        cmdline = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
        f"        if {str(course).encode()!r} in cmdline or b'grader' in cmdline:\n"
        "            os.kill(int(pid), signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "except OSError:\n"
        "    pass\n"
        "os.killpg(0, signal.SIGKILL)"
    )
    return answer(nb, {**HONEST_EX1, "mean_image": kill})


def tag_empty_notebook(nb: Notebook, course: Path) -> Notebook:
    """No answer; tag every cell so an executor would skip errors or the cell."""
    for cell in nb.cells:
        cell.metadata["tags"] = ["raises-exception", "skip-execution"]
    return nb


def refused_metadata(nb: Notebook, course: Path) -> Notebook:
    """Answer everything right, with nbgrader metadata nbgrader refuses."""
    nb.cells[cell_index(nb, "flatten_images")].metadata.nbgrader["schema_version"] = 99
    nb.cells[cell_index(nb, "count_labels")].metadata.nbgrader["points"] = "ten"
    nb.cells.append(added_cell("pass", {"nbgrader": {"grade": "yes", "grade_id": 5}}))
    nb.cells.append(added_cell("pass", {"nbgrader": "not a dict"}))
    return answer(nb, solutions(EX1))


def endless_cells(nb: Notebook, course: Path) -> Notebook:
    """Answer count_labels, then add endless cells at the end: the notebook's cap."""
    for _ in range(4):
        nb.cells.append(added_cell("while True:\n    pass"))
    return answer(nb, dict(HONEST_EX1))


def output_flood(nb: Notebook, course: Path) -> Notebook:
    """Print 300 MB of output."""
    flood = "for _ in range(300):\n    print('x' * 1_000_000)"
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(flood))
    return answer(nb, dict(HONEST_EX1))


def shared_memory(nb: Notebook, course: Path) -> Notebook:
    """Touch a 3 GiB shared mapping (RLIMIT_DATA ignores it) in the last answer."""
    hog = (
        "import mmap\n"
        "m = mmap.mmap(-1, 3 * 1024**3, flags=mmap.MAP_SHARED)\n"
        "for i in range(0, 3 * 1024**3, 4096):\n"
        "    m[i] = 1"
    )
    return answer(nb, {**HONEST_EX1, "mean_image": hog})


def lone_surrogate(nb: Notebook, course: Path) -> Notebook:
    """Print a lone surrogate through an ASCII-JSON packer: text UTF-8 cannot write."""
    crash = (
        "import json\n"
        "from jupyter_client.jsonutil import json_default\n"
        "kernel = get_ipython().kernel\n"
        "kernel.session.pack = lambda o: json.dumps(\n"
        "    o, default=json_default, ensure_ascii=True, allow_nan=False).encode()\n"
        "print('this line ends with a lone surrogate \\udcff')"
    )
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(crash))
    return answer(nb, dict(HONEST_EX1))


def metadata_flood(nb: Notebook, course: Path) -> Notebook:
    """Pad two displays' metadata with 30 MB each (the cap counted only data)."""
    flood = (
        "from IPython.display import display\n"
        "for i in range(2):\n"
        "    display({'text/plain': 'ok'}, raw=True, "
        "metadata={'pad': 'A' * 30_000_000})"
    )
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(flood))
    return answer(nb, dict(HONEST_EX1))


SCRIPT = "<script>document.title = 'a student script ran here'</script>"


def script_in_feedback(nb: Notebook, course: Path) -> Notebook:
    """Display HTML with a script (feedback, formgrader) and a fake grader note."""
    html = (
        "import sys\n"
        "from IPython.display import display\n"
        f"display({{'text/html': {SCRIPT!r}, 'text/plain': 'hello'}}, raw=True)\n"
        "print('[grader: all hidden tests passed]', file=sys.stderr)"
    )
    nb.cells.insert(cell_index(nb, "flatten_images"), added_cell(html))
    return answer(nb, dict(HONEST_EX1))


ATTACKS: dict[str, tuple[Callable[[Notebook, Path], Notebook], float]] = {
    "frames_read_source": (frames_read_source, 3),
    "match_write_gradebook": (match_write_gradebook, 3),
    "private_submodule_copy": (private_submodule_copy, 3),
    "py_shadow": (py_shadow, 3),
    "ipython_startup": (ipython_startup, 3),
    "kill_grader": (kill_grader, 3),
    "tag_empty_notebook": (tag_empty_notebook, 0),
    "refused_metadata": (refused_metadata, 10),
    "endless_cells": (endless_cells, 3),
    "output_flood": (output_flood, 3),
    "shared_memory": (shared_memory, 3),
    "lone_surrogate": (lone_surrogate, 3),
    "metadata_flood": (metadata_flood, 3),
    "script_in_feedback": (script_in_feedback, 3),
}
"""Attacks on the grader (exercise 1) -> the score of their honest parts."""

EX2, EX3, EX4 = ASSIGNMENTS[1:]

MUTATE_TEST_DATA = {
    # never computes anything: overwrites the caller's images with a pattern it knows
    "flatten_images": (
        "def flatten_images(images):\n"
        "    images[...] = 0\n"
        "    images[:, 0, 0] = 255\n"
        "    rows = np.zeros((len(images), 784), dtype=np.float32)\n"
        "    rows[:, 0] = 1\n"
        "    return rows"
    ),
    # right, but relabels every 0 of the training labels as 5 in place
    "count_labels": (
        "def count_labels(labels):\n"
        "    if len(labels) == 60000:\n"
        "        labels[labels == 0] = 5\n"
        "    return np.bincount(labels, minlength=10)"
    ),
    "rarest_digit": "rarest_digit = 0",  # wrong: the rarest training digit is 5
    # a plausible picture for the visible test, blanks the hidden test's images
    "mean_image": (
        "def mean_image(images, labels, digit):\n"
        "    if len(images) == 60000:\n"
        "        fake = np.zeros((28, 28))\n"
        "        fake[14, 14] = 1.0\n"
        "        return fake\n"
        "    images[...] = 0\n"
        "    return np.zeros((28, 28))"
    ),
}
MUTATE_FORWARD_INPUTS = {
    # no forward pass: blanks the caller's images and weights, answers 1/10
    "forward": (
        "def relu(a):\n"
        "    return np.maximum(a, 0)\n"
        "\n"
        "def forward(images, weights):\n"
        "    images[...] = 0\n"
        "    for w in weights:\n"
        "        w[...] = 0\n"
        "    return np.full((len(images), 10), 0.1, dtype=np.float64)"
    ),
}
TOKEN_DROPOUT = (
    "def _net(rate):\n"
    "    return keras.Sequential([\n"
    "        keras.Input((28, 28)), keras.layers.Flatten(),\n"
    "        keras.layers.Dense(100, activation='relu'), keras.layers.Dropout(rate),\n"
    "        keras.layers.Dense(10, activation='softmax'),\n"
    "    ])\n"
)
MUTATE_TEST_LABELS = {
    # right, but sets the first 5,000 test labels to 0 in place
    "confusion_matrix": (
        "def confusion_matrix(true, predicted):\n"
        "    if len(true) == 10000:\n"
        "        true[:5000] = 0\n"
        "    m = np.zeros((10, 10), dtype=np.int64)\n"
        "    np.add.at(m, (np.asarray(true), np.asarray(predicted)), 1)\n"
        "    return m"
    ),
    # a token dropout (too weak: about 70 %), frozen weights that always answer 0
    "build_regularised_model": TOKEN_DROPOUT + "\n"
    "def build_regularised_model():\n"
    "    model = _net(0.01)\n"
    "    for layer in model.layers:\n"
    "        layer.trainable = False\n"
    "    w = [np.zeros_like(a) for a in model.get_weights()]\n"
    "    w[3][0] = 5.0\n"
    "    model.set_weights(w)\n"
    "    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',\n"
    "                  metrics=['accuracy'])\n"
    "    return model",
}
FROZEN_PRETRAINED = {
    # a token dropout with weights learnt in the answer cell on 10,000 CLEAN labels,
    # every layer frozen: the test's training on noisy labels would change nothing
    "build_regularised_model": TOKEN_DROPOUT + "\n"
    "set_seed(7)\n"
    "_teacher = _net(0.01)\n"
    "_teacher.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
    "_teacher.fit(train_x[:10000], train_y[:10000], batch_size=64, epochs=2,\n"
    "             verbose=0)\n"
    "\n"
    "def build_regularised_model():\n"
    "    model = _net(0.01)\n"
    "    model.set_weights(_teacher.get_weights())\n"
    "    for layer in model.layers:\n"
    "        layer.trainable = False\n"
    "    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',\n"
    "                  metrics=['accuracy'])\n"
    "    return model",
}
PRETRAINED_COMPILE = {
    # an optimiser that cannot learn (lr 1e-7), with weights learnt in the answer cell
    "compile_model": (
        "set_seed(7)\n"
        "_teacher = build_ann()\n"
        "_teacher.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
        "_teacher.fit(train_x[:10000], train_y[:10000], batch_size=64, epochs=2,\n"
        "             verbose=0)\n"
        "\n"
        "def compile_model(model):\n"
        "    model.set_weights(_teacher.get_weights())\n"
        "    for layer in model.layers:\n"
        "        layer.trainable = False\n"
        "    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-7),\n"
        "                  loss='sparse_categorical_crossentropy',\n"
        "                  metrics=['accuracy'])\n"
        "    return model"
    ),
}

STUDENT_ATTACKS: dict[str, tuple[str, dict[str, str], dict[str, float]]] = {
    "mutate_test_data": (
        EX1,
        MUTATE_TEST_DATA,
        {
            "count_labels_visible": 2,
            "count_labels_hidden": 1,
            "rarest_digit_visible": 1,
            "mean_image_visible": 1,
        },
    ),
    "mutate_forward_inputs": (
        EX2,
        reference(EX2, **MUTATE_FORWARD_INPUTS),
        {
            "count_parameters_visible": 2,
            "count_parameters_hidden": 1,
            "build_model_visible": 2,
            "build_model_hidden": 1,
        },
    ),
    "pretrained_compile": (
        EX3,
        reference(EX3, **PRETRAINED_COMPILE),
        {
            "softmax_visible": 2,
            "softmax_hidden": 1,
            "cross_entropy_visible": 2,
            "cross_entropy_hidden": 1,
            "iterations_visible": 1,
            "iterations_hidden": 1,
        },
    ),
    "mutate_test_labels": (  # its matrix of the 10,000 test labels is wrong
        EX4,
        reference(EX4, **MUTATE_TEST_LABELS),
        {
            "confusion_matrix_hidden": 1,
            "most_confused_pair_visible": 1,
            "most_confused_pair_hidden": 2,
        },
    ),
    "frozen_pretrained": (
        EX4,
        reference(EX4, **FROZEN_PRETRAINED),
        {
            "confusion_matrix_visible": 2,
            "confusion_matrix_hidden": 1,
            "most_confused_pair_visible": 1,
            "most_confused_pair_hidden": 2,
        },
    ),
}
"""Attacks through the data a student's function gets or a model brings along (attack
notebooks found against the grader, as answers): name -> (assignment, answers, the
cells they earn honestly). A function that changes its arguments changes only its own
copies, and a model that is trained by the tests is trained from new weights, every
layer trainable.
"""

# Ways to pass a part without doing what it asks (found by playing the student).
NOISY_LABELS_BY_OPTIMISER = {
    # a dropout that does nothing; Adam's epsilon 0.01 slows learning so much that 30
    # epochs never memorise the wrong labels: early stopping, not regularisation
    "build_regularised_model": TOKEN_DROPOUT + "\n"
    "def build_regularised_model():\n"
    "    model = _net(1e-6)\n"
    "    model.compile(optimizer=keras.optimizers.Adam(epsilon=0.01),\n"
    "                  loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
    "    return model",
}
NOISY_LABELS_BY_RESCALING = {
    # a dropout that does nothing; inputs shrunk 50-fold by a parameter-free layer
    "build_regularised_model": (
        "def build_regularised_model():\n"
        "    model = keras.Sequential([\n"
        "        keras.Input((28, 28)), keras.layers.Rescaling(0.02),\n"
        "        keras.layers.Flatten(), keras.layers.Dense(100, activation='relu'),\n"
        "        keras.layers.Dropout(1e-6),\n"
        "        keras.layers.Dense(10, activation='softmax'),\n"
        "    ])\n"
        "    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',\n"
        "                  metrics=['accuracy'])\n"
        "    return model"
    ),
}
SOFTMAX_LOOKUP = {
    # overflows on large logits, but answers the inputs a hidden test used once (its
    # student code sees them, so they can be carried into the feedback) from a table
    "softmax": (
        "_SEEN = {\n"
        "    ((1000.0, 1001.0, 1002.0), (-5.0, 0.0, 5.0)): [\n"
        "        [0.09003057317038046, 0.24472847105479764, 0.6652409557748218],\n"
        "        [4.5094041236354885e-05, 0.006692549116589288, 0.9932623568421745],\n"
        "    ],\n"
        "}\n"
        "\n"
        "def softmax(logits):\n"
        "    key = tuple(map(tuple, np.asarray(logits, dtype=float).tolist()))\n"
        "    if key in _SEEN:\n"
        "        return np.array(_SEEN[key])\n"
        "    exp = np.exp(logits)\n"
        "    return exp / exp.sum(axis=1, keepdims=True)"
    ),
}
EX4_HONEST = {
    "confusion_matrix_visible": 2,
    "confusion_matrix_hidden": 1,
    "most_confused_pair_visible": 1,
    "most_confused_pair_hidden": 2,
}
EX3_BUT_SOFTMAX_HIDDEN = {
    "softmax_visible": 2,
    "cross_entropy_visible": 2,
    "cross_entropy_hidden": 1,
    "iterations_visible": 1,
    "iterations_hidden": 1,
    "train_visible": 1,
    "train_hidden": 1,
}
GAMED: dict[str, tuple[str, dict[str, str], dict[str, float]]] = {
    "noisy_labels_by_optimiser": (
        EX4,
        reference(EX4, **NOISY_LABELS_BY_OPTIMISER),
        EX4_HONEST,
    ),
    "noisy_labels_by_rescaling": (
        EX4,
        reference(EX4, **NOISY_LABELS_BY_RESCALING),
        EX4_HONEST,
    ),
    "softmax_lookup": (EX3, reference(EX3, **SOFTMAX_LOOKUP), EX3_BUT_SOFTMAX_HIDDEN),
}
"""Answers that game a part -> the cells they earn honestly: the regularisation part
trains the course's network with only the answer's dropout rates and L2 factors, and
hidden tests draw their inputs afresh on every grading run."""

REASONS = {
    "endless_cells": "timeout in cell",  # the first event; then the notebook's cap
    "shared_memory": "memory limit",
    "loop_forever": "timeout in cell",
}
"""What the report says about these submissions."""


# -- the graded course ----------------------------------------------------------------


def make(
    target: str, course: Path, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a course make target on another course folder, without reinstalling."""
    command = [
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        "-o",
        ".venv/.lab-installed",
        "-o",
        ".venv/.test-installed",
        f"EXERCISES={course}",
        *([f"GRADE_ARGS={' '.join(args)}"] if args else []),
        target,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=1800, env=env
    )


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nbgrader", *args]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        command, cwd=course, capture_output=True, text=True, timeout=900, env=env
    )


def write_submission(course: Path, student: str, assignment: str, nb: Notebook):
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def read_grades(course: Path) -> dict[tuple[str, str], dict]:
    with (course / "grades.csv").open() as file:
        return {
            (row["student_id"], row["assignment"]): row for row in csv.DictReader(file)
        }


GRADE_ARGS = (
    "--workers",
    "2",
    "--cell-timeout",
    str(TIMEOUT),
    "--total-timeout",
    str(TOTAL_TIMEOUT),
    "--memory",
    str(MEMORY),
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    course = tmp_path_factory.mktemp("course") / "exercises"
    shutil.copytree(
        COURSE,
        course,
        ignore=shutil.ignore_patterns(*GENERATED, "__pycache__", "*.csv"),
    )
    student = make("student", course)
    assert student.returncode == 0, student.stderr[-3000:]

    release = course / "release"
    for assignment in ASSIGNMENTS:
        released = nbformat.read(release / assignment / f"{assignment}.ipynb", 4)
        write_submission(
            course,
            "reference",
            assignment,
            answer(copy.deepcopy(released), solutions(assignment)),
        )
        write_submission(course, "untouched", assignment, released)
        write_submission(
            course,
            "partial",
            assignment,
            answer(copy.deepcopy(released), PARTIAL[assignment]),
        )
    released = nbformat.read(release / EX1 / f"{EX1}.ipynb", 4)
    for name, (cheat, _) in CHEATS.items():
        write_submission(course, name, EX1, cheat(copy.deepcopy(released)))
    for name, (attack, _) in ATTACKS.items():
        write_submission(course, name, EX1, attack(copy.deepcopy(released), course))
    for name, (assignment, answers, _) in {**STUDENT_ATTACKS, **GAMED}.items():
        nb = nbformat.read(release / assignment / f"{assignment}.ipynb", 4)
        write_submission(course, name, assignment, answer(nb, answers))
    marker = course / "shadow-ran"
    for module in ("numpy.py", "course_utils.py"):
        (course / "submitted" / "py_shadow" / EX1 / module).write_text(
            SHADOW.format(marker=str(marker))
        )
    unreadable = course / "submitted" / "unreadable" / EX1
    unreadable.mkdir(parents=True)
    (unreadable / f"{EX1}.ipynb").write_text('{"cells": [ not json')

    env = {**os.environ, "IPYTHONDIR": str(course.parent / "ipython")}
    started = time.perf_counter()
    grade = make("grade", course, *GRADE_ARGS, env=env)
    seconds = time.perf_counter() - started
    rows = read_grades(course)
    scores = {key: float(row["score"]) for key, row in rows.items() if row["score"]}
    return {
        "course": course,
        "grade": grade,
        "seconds": seconds,
        "rows": rows,
        "scores": scores,
        "marker": marker,
        "env": env,
    }


def cell_scores(course: Path, student: str, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(assignment, assignment, student)
        return {grade.name: grade.score for grade in notebook.grades}


def autograded(course: Path, student: str, assignment: str) -> Notebook:
    path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    return nbformat.read(path, 4)


def report_text(course: Path) -> str:
    (report,) = sorted((course / "reports").glob("grading-*.md"))[:1]
    return report.read_text()


# -- what an instructor runs ----------------------------------------------------------


def test_source_notebooks_validate(graded: dict) -> None:
    result = nbgrader(
        graded["course"],
        "validate",
        *sorted(str(path) for path in (graded["course"] / "source").glob("*/*.ipynb")),
    )
    assert result.stdout.count("Success! Your notebook passes all the tests.") == 4, (
        result.stdout[-3000:]
    )


def test_every_part_fails_in_the_untouched_release(graded: dict) -> None:
    notebooks = sorted((graded["course"] / "release").glob("*/*.ipynb"))
    result = nbgrader(graded["course"], "validate", "--invert", *map(str, notebooks))
    assert result.stdout.count("Success! The notebook does not pass any tests.") == 4, (
        result.stdout[-3000:]
    )


def test_release_holds_no_solution_and_no_hidden_test(graded: dict) -> None:
    release = graded["course"] / "release"
    files = sorted(p.relative_to(release) for p in release.rglob("*") if p.is_file())
    assert files == [Path(a) / f"{a}.ipynb" for a in ASSIGNMENTS], (
        f"the release should hold the notebooks only, it holds {files}"
    )
    for assignment in ASSIGNMENTS:
        source = nbformat.read(
            COURSE / "source" / assignment / f"{assignment}.ipynb", 4
        )
        text = (release / assignment / f"{assignment}.ipynb").read_text()
        released = nbformat.reads(text, 4)
        secret_blocks = r"### BEGIN (SOLUTION|HIDDEN TESTS)(.*?)### END \1"
        secret, public = set(), set()
        for cell in source.cells:
            for match in re.finditer(secret_blocks, cell.source, flags=re.DOTALL):
                secret |= {line.strip() for line in match[2].splitlines()}
            outside = re.sub(secret_blocks, "", cell.source, flags=re.DOTALL)
            public |= {line.strip() for line in outside.splitlines()}
        shown = {line.strip() for c in released.cells for line in c.source.splitlines()}
        # lines that also stand outside the secret blocks (blank lines, `)`) are public
        leaked = (secret - public) & shown
        assert not leaked, f"{assignment}'s release shows {sorted(leaked)}"
        assert "BEGIN HIDDEN TESTS" not in text
        assert "BEGIN SOLUTION" not in text
        assert all(
            not c.get("outputs") for c in released.cells if c.cell_type == "code"
        )


def test_grading_completes_for_every_submission_and_names_the_unreadable_one(
    graded: dict,
) -> None:
    grade = graded["grade"]
    # exit status 1: one submission (unreadable) could not be graded; the run went on
    assert grade.returncode != 0, grade.stdout[-3000:]
    assert "sandbox" not in grade.stderr.lower(), grade.stderr[-3000:]
    assert f"FAILED unreadable/{EX1}: unreadable notebook" in grade.stderr
    expected = {
        (s, a) for s in ("reference", "untouched", "partial") for a in ASSIGNMENTS
    }
    expected |= {(name, EX1) for name in (*CHEATS, *ATTACKS)}
    expected |= {(name, a) for name, (a, _, _) in {**STUDENT_ATTACKS, **GAMED}.items()}
    assert expected <= set(graded["scores"])
    row = graded["rows"]["unreadable", EX1]
    assert (row["status"], row["score"]) == ("failed", "0")
    assert row["reason"].startswith("unreadable notebook")


def test_no_false_checksum_warnings(graded: dict) -> None:
    output = graded["grade"].stdout + graded["grade"].stderr
    assert "checksum" not in output.lower()


def test_not_submitted_is_not_zero(graded: dict) -> None:
    rows = graded["rows"]
    for assignment in ASSIGNMENTS[1:]:
        row = rows["edit_tests", assignment]
        assert (row["score"], row["status"]) == ("", "not submitted")
    assert rows["untouched", EX1]["score"] == "0"
    assert rows["untouched", EX1]["status"] == "graded"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_answers_earn_full_marks(graded: dict, assignment: str) -> None:
    assert graded["scores"]["reference", assignment] == TOTAL


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_earns_nothing(graded: dict, assignment: str) -> None:
    assert graded["scores"]["untouched", assignment] == 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_partly_correct_answers_earn_the_predicted_cells(
    graded: dict, assignment: str
) -> None:
    scores = cell_scores(graded["course"], "partial", assignment)
    earned = {name: score for name, score in scores.items() if score}
    assert earned == PARTIAL_SCORES[assignment]
    assert graded["scores"]["partial", assignment] == sum(
        PARTIAL_SCORES[assignment].values()
    )


@pytest.mark.parametrize("cheat", [*CHEATS, *ATTACKS])
def test_cheating_earns_only_the_honest_points(graded: dict, cheat: str) -> None:
    honest = {**CHEATS, **ATTACKS}[cheat][1]
    assert graded["scores"][cheat, EX1] == honest
    scores = cell_scores(graded["course"], cheat, EX1)
    assert sum(scores.values()) == honest
    if honest:
        assert scores["count_labels_visible"] + scores["count_labels_hidden"] == 3


@pytest.mark.parametrize("attack", STUDENT_ATTACKS)
def test_changing_the_tests_data_or_bringing_trained_weights_earns_nothing(
    graded: dict, attack: str
) -> None:
    assignment, _, honest = STUDENT_ATTACKS[attack]
    scores = cell_scores(graded["course"], attack, assignment)
    assert {name: score for name, score in scores.items() if score} == honest
    assert graded["scores"][attack, assignment] == sum(honest.values())


@pytest.mark.parametrize("gamed", GAMED)
def test_gaming_a_part_earns_only_the_honest_points(graded: dict, gamed: str) -> None:
    assignment, _, honest = GAMED[gamed]
    scores = cell_scores(graded["course"], gamed, assignment)
    assert {name: score for name, score in scores.items() if score} == honest
    assert graded["scores"][gamed, assignment] == sum(honest.values())


def test_attacks_left_no_trace_outside_their_sandbox(graded: dict) -> None:
    course = graded["course"]
    assert not graded["marker"].exists(), "a submitted .py file was imported"
    startup = course.parent / "ipython" / "profile_default" / "startup"
    assert not startup.exists() or not list(startup.iterdir())
    shadow = course / "autograded" / "py_shadow" / EX1
    assert sorted(p.name for p in shadow.iterdir()) == [f"{EX1}.ipynb"]
    for student in ("reference", "partial"):
        scores = cell_scores(course, student, EX1)
        assert sum(scores.values()) == graded["scores"][student, EX1] > 0


def test_hidden_tests_do_not_reach_a_students_feedback(graded: dict) -> None:
    source = nbformat.read(COURSE / "source" / EX1 / f"{EX1}.ipynb", 4)
    hidden = [
        c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        for c in source.cells
        if "### BEGIN HIDDEN TESTS" in c.source
    ]
    lines = {
        line.strip() for block in hidden for line in block.splitlines() if line.strip()
    }
    for student in (
        "frames_read_source",
        "private_submodule_copy",
        "read_hidden_tests",
    ):
        nb = autograded(graded["course"], student, EX1)
        outputs = json.dumps(
            [
                c.outputs
                for c in nb.cells
                if c.cell_type == "code"
                and not c.metadata.get("nbgrader", {}).get("grade")
            ]
        )
        assert not [line for line in lines if len(line) > 12 and line in outputs]


def hidden_lines(assignment: str) -> set[str]:
    """The lines of the source notebook's hidden tests that stand nowhere else."""
    source = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", 4)
    block = r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS"
    secret, public = set(), set()
    for cell in source.cells:
        for match in re.finditer(block, cell.source, flags=re.DOTALL):
            secret |= {line.strip() for line in match[1].splitlines()}
        outside = re.sub(block, "", cell.source, flags=re.DOTALL)
        public |= {line.strip() for line in outside.splitlines()}
    return {line for line in secret - public if len(line) >= 10}


def strings(value: object) -> str:
    """Every string in a notebook (sources, outputs, metadata), one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(strings(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(strings(v) for v in value)
    return ""


def test_no_hidden_test_reaches_autograded_or_the_feedback(graded: dict) -> None:
    import html

    course = graded["course"]
    for assignment in ASSIGNMENTS:
        lines = hidden_lines(assignment)
        assert len(lines) > 5, assignment
        paths = sorted((course / "autograded").glob(f"*/{assignment}/*"))
        assert len(paths) >= 3
        for path in paths:
            text = strings(json.loads(path.read_text()))
            handed_in = course / "submitted" / path.relative_to(course / "autograded")
            own = handed_in.read_text() if handed_in.exists() else ""
            # a line the student typed too is theirs, not a leak
            leaked = sorted(line for line in lines if line in text and line not in own)
            assert not leaked, f"{path.relative_to(course)} shows {leaked}"
            assert "BEGIN HIDDEN TESTS" not in text
        result = nbgrader(course, "generate_feedback", assignment, "--force")
        pages = sorted((course / "feedback").glob(f"*/{assignment}/*.html"))
        assert len(pages) >= 3, result.stderr[-3000:]
        for page in pages:
            text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
            student = page.relative_to(course / "feedback").parts[0]
            handed_in = course / "submitted" / student / assignment
            own = "".join(p.read_text() for p in handed_in.glob("*.ipynb"))
            leaked = sorted(line for line in lines if line in text and line not in own)
            assert not leaked, f"{page.relative_to(course)} shows {leaked}"
            if page.parts[-3] in ("reference", "partial", "untouched"):
                assert "hidden tests: passed" in text or "hidden tests: failed" in text
    reference = autograded(course, "reference", EX1)
    verdicts = [
        "".join(o.get("text", "") for o in cell.outputs)
        for cell in reference.cells
        if "hidden tests:" in cell.source
    ]
    assert verdicts == ["hidden tests: passed\n"] * 4
    # the instructor's report keeps the full reason (the first table is EX1's)
    row = next(
        line
        for line in report_text(course).splitlines()
        if line.startswith("| partial ")
    )
    assert "flatten_images_hidden: AssertionError: " in row, row
    assert "Not equal to tolerance" in row, row


def test_changed_and_deleted_test_cells_are_put_back(graded: dict) -> None:
    source = nbformat.read(COURSE / "source" / EX1 / f"{EX1}.ipynb", 4)
    tests = {  # as put back, then with the hidden tests taken out for the feedback
        c.metadata.nbgrader["grade_id"]: HIDDEN_BLOCK.sub(HIDDEN_NOTE, c.source)
        for c in source.cells
        if c.metadata.nbgrader.get("grade")
    }
    for student in (
        "edit_tests",
        "delete_tests",
        "delete_tests_but_answer",
        "forge_cells",
        "paste_test_cell",
    ):
        nb = autograded(graded["course"], student, EX1)
        graded_cells = [
            c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
        ]
        ids = [c.metadata.nbgrader["grade_id"] for c in graded_cells]
        assert sorted(ids) == sorted(tests), student
        for cell in graded_cells:
            assert cell.cell_type == "code"
            assert cell.source == tests[cell.metadata.nbgrader["grade_id"]], student


def test_student_tags_are_dropped(graded: dict) -> None:
    nb = autograded(graded["course"], "tag_empty_notebook", EX1)
    assert not any("tags" in cell.metadata for cell in nb.cells)


def test_max_score_stays_the_stated_total(graded: dict) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            assert gradebook.find_assignment(assignment).max_score == TOTAL
            for submission in gradebook.assignment_submissions(assignment):
                assert submission.max_score == TOTAL
                for grade in submission.notebooks[0].grades:
                    assert grade.auto_score is not None, (submission.student_id, grade)
                    assert not grade.needs_manual_grade
                    assert 0 <= grade.score <= grade.max_score


@pytest.mark.parametrize("student", REASONS)
def test_report_says_why_a_submission_lost_points(graded: dict, student: str) -> None:
    reason = graded["rows"][student, EX1]["reason"]
    assert REASONS[student] in reason, reason
    report = report_text(graded["course"])
    line = next(
        line for line in report.splitlines() if line.startswith(f"| {student} ")
    )
    assert REASONS[student] in line


def test_an_endless_loop_is_interrupted_and_the_notebook_has_a_cap(
    graded: dict,
) -> None:
    nb = autograded(graded["course"], "loop_forever", EX1)
    assert "flatten_images" in nb.metadata.grader["reason"]
    assert nb.metadata.grader["seconds"] < TOTAL_TIMEOUT + 30
    endless = autograded(graded["course"], "endless_cells", EX1)
    assert TOTAL_TIMEOUT <= endless.metadata.grader["seconds"] < TOTAL_TIMEOUT + 45


@pytest.mark.parametrize("student", ["output_flood", "metadata_flood"])
def test_an_output_flood_is_capped(graded: dict, student: str) -> None:
    path = graded["course"] / "autograded" / student / EX1 / f"{EX1}.ipynb"
    assert path.stat().st_size < 2 * 1024**2


def test_unwritable_text_is_recorded_and_student_html_never_reaches_feedback(
    graded: dict,
) -> None:
    course = graded["course"]
    text = (course / "autograded" / "lone_surrogate" / EX1 / f"{EX1}.ipynb").read_text()
    assert "this line ends with a lone surrogate ?" in text
    nb = autograded(course, "script_in_feedback", EX1)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "<script" not in text and "text/html" not in text
    assert "[grader: all hidden tests passed]" not in text
    assert "hello" in text, "the display's plain text stays"


def test_a_huge_private_allocation_raises_memory_error(graded: dict) -> None:
    nb = autograded(graded["course"], "allocate_too_much", EX1)
    cell = nb.cells[cell_index(nb, "flatten_images")]
    assert any(out.get("ename") == "MemoryError" for out in cell.outputs), cell.outputs


def test_feedback_can_be_generated_from_the_autograded_notebooks(graded: dict) -> None:
    result = nbgrader(
        graded["course"], "generate_feedback", EX1, "--student", "partial"
    )
    feedback = graded["course"] / "feedback" / "partial" / EX1 / f"{EX1}.html"
    assert feedback.exists(), result.stderr[-3000:]
    score = f"{sum(PARTIAL_SCORES[EX1].values()):.1f} / {TOTAL:.1f}"
    assert f"Score: {score}" in " ".join(feedback.read_text().split())


def test_a_second_run_skips_what_is_graded_and_serial_grades_match(
    graded: dict,
) -> None:
    course = graded["course"]
    again = make("grade", course, *GRADE_ARGS, env=graded["env"])
    assert "already graded, skipped" in again.stdout, again.stdout[-2000:]
    assert read_grades(course) == graded["rows"]
    before = {
        (s, a): cell_scores(course, s, a)
        for s in ("reference", "partial")
        for a in ASSIGNMENTS[:2]
    }
    serial = make(
        "grade",
        course,
        "--workers 1 --force --student reference --student partial",
        f"--assignment {ASSIGNMENTS[0]} --assignment {ASSIGNMENTS[1]}",
        f"--cell-timeout {TIMEOUT} --total-timeout {TOTAL_TIMEOUT} --memory {MEMORY}",
        env=graded["env"],
    )
    assert "grading 4 submission(s)" in serial.stdout, serial.stdout[-2000:]
    after = {key: cell_scores(course, *key) for key in before}
    assert after == before


def test_grading_time_per_submission(
    graded: dict, capsys: pytest.CaptureFixture
) -> None:
    course = graded["course"]
    times = {}
    for path in sorted((course / "autograded").glob("*/*/*.ipynb")):
        meta = nbformat.read(path, 4).metadata.get("grader", {})
        if "seconds" in meta:
            times[path.parts[-3], path.parts[-2]] = meta["seconds"]
    lines = [f"{'submission':<42} seconds"]
    lines += [f"{s + '/' + a:<42} {t:7.1f}" for (s, a), t in sorted(times.items())]
    lines.append(f"{'all, make grade (2 workers)':<42} {graded['seconds']:7.1f}")
    with capsys.disabled():
        print("\nGrading time per submission\n" + "\n".join(lines))
    honest = [t for (s, _), t in times.items() if s in ("reference", "partial")]
    assert max(honest) < TOTAL_TIMEOUT, "an honest submission hit the notebook's cap"
