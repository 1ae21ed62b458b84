"""The lesson check still catches broken lessons.

Comparing trained outputs within bands instead of digit for digit must not make the
check blind. Each case here copies one lesson, plants a real bug in its code (the kind
a teacher editing the lesson could make), runs the lesson check on the copy (nbval with
the same options as ``make lessons``) and expects it to fail. The README lists what is
caught and what is knowingly not.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NBVAL = [
    "--nbval",
    "--nbval-current-env",
    "--nbval-sanitize-with",
    str(ROOT / "tests" / "nbval_sanitize.cfg"),
    "--nbval-cell-timeout",
    "900",
]


@dataclass(frozen=True)
class Bug:
    """A bug planted in one lesson: ``old`` (found exactly once) becomes ``new``."""

    lesson: str
    what: str
    old: str
    new: str

    @property
    def id(self) -> str:
        return f"{self.lesson[:2]}-{self.what.replace(' ', '-')}"


BUGS = [
    Bug(
        "01_explore_mnist",
        "normalisation lost",
        "train_x = data.scale_images(train_x)",
        "train_x = train_x.astype(np.float32)",
    ),
    Bug(
        "02_build_the_ann",
        "hidden layer of 50 units",
        "n_hidden = 100",
        "n_hidden = 50",
    ),
    Bug(
        "02_build_the_ann",
        "softmax without the exponential",
        "np.exp(z - z.max(axis=-1, keepdims=True))",
        "(z - z.min(axis=-1, keepdims=True))",
    ),
    Bug(
        "03_train_the_ann",
        "one epoch instead of five",
        "n_epoch = 5",
        "n_epoch = 1",
    ),
    Bug(
        "03_train_the_ann",
        "base-10 logarithm in the hand loss",
        "loss_by_hand = -np.mean(np.log(p_true))",
        "loss_by_hand = -np.mean(np.log10(p_true))",
    ),
    Bug(
        "03_train_the_ann",
        "labels shuffled",
        "(train_x, train_y), (test_x, test_y) = data.load_mnist()",
        "(train_x, train_y), (test_x, test_y) = data.load_mnist()\n"
        "train_y = np.random.default_rng(0).permutation(train_y)",
    ),
    Bug(
        "03_train_the_ann",
        "ReLU mask left out of backpropagation",
        "dz1 = (dz2 @ w2.T) * (z1 > 0)",
        "dz1 = dz2 @ w2.T",
    ),
    Bug(
        "03_train_the_ann",
        "grey levels fed to the network unscaled",
        "repro.set_seed(42)\nmodel = models.build_ann(rescale=True)",
        "repro.set_seed(42)\nmodel = models.build_ann(rescale=False)",
    ),
    Bug(
        "04_evaluate_and_regularise",
        "labels shuffled",
        "(train_x, train_y), (test_x, test_y) = data.load_mnist()",
        "(train_x, train_y), (test_x, test_y) = data.load_mnist()\n"
        "train_y = np.random.default_rng(0).permutation(train_y)",
    ),
    Bug(
        "05_go_further_with_a_cnn",
        "second pooling layer left out",
        'keras.layers.MaxPooling2D(2, name="pool2"),',
        "",
    ),
    Bug(
        "05_go_further_with_a_cnn",
        "CNN trained 2 epochs instead of 10",
        "n_epoch = 10",
        "n_epoch = 2",
    ),
]


def plant(bug: Bug, folder: Path) -> Path:
    """Write a copy of the lesson with the bug in it; the pattern must occur once."""
    notebook = nbformat.read(NOTEBOOKS / f"{bug.lesson}.ipynb", as_version=4)
    hits = [c for c in notebook.cells if c.cell_type == "code" and bug.old in c.source]
    found = sum(c.source.count(bug.old) for c in hits)
    assert found == 1, (
        f"{bug.lesson}: expected `{bug.old}` once in the code, found it {found} "
        "times; update the planted bug to the lesson's current code"
    )
    hits[0].source = hits[0].source.replace(bug.old, bug.new)
    path = folder / f"{bug.lesson}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("bug", BUGS, ids=[bug.id for bug in BUGS])
def test_the_lesson_check_fails_on_a_planted_bug(bug: Bug, tmp_path: Path) -> None:
    path = plant(bug, tmp_path)
    # -x: the check has failed once a cell fails; the rest of the lesson need not run.
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *NBVAL, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1:] or [result.stderr[-500:]]
    assert result.returncode == 1 and " failed" in summary[0], (
        f"the lesson check did not catch '{bug.what}' in {bug.lesson} "
        f"(exit {result.returncode}): {summary[0]}"
    )
