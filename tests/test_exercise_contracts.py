"""Each exercise part states a contract, and its tests hold answers to it.

The slow tests run a source notebook (reference answers and hidden tests) from the top
in a plain kernel, with some answer cells replaced by plausible wrong or cheating
answers, and assert exactly which test cells fail: a wrong answer fails its part's
tests, the right one passes them all. Answers that do not interfere with each other
share a run, so one run covers several parts. A test cell fails as nbgrader judges it
(``nbgrader.utils.determine_grade``): an error, a line on stderr, or a number shown as
its result (which nbgrader reads as partial credit).

The fast tests read the notebooks: no test cell ends with an expression nbgrader would
read as points, neither in the source nor in the student's copy without hidden tests,
and the parts' texts state the contracts their tests check.
"""

from __future__ import annotations

import ast
import copy
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks" / "exercises" / "source"
ASSIGNMENTS = (
    "01_explore_mnist",
    "02_build_the_ann",
    "03_train_the_ann",
    "04_evaluate_and_regularise",
)
EX1, EX2, EX3, EX4 = ASSIGNMENTS
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)
SECONDS_PER_RUN = 120  # a run takes 10-40 s on 2 busy cores


def source_notebook(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", 4)


def cells_by_id(assignment: str) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata.nbgrader["grade_id"]: cell
        for cell in source_notebook(assignment).cells
    }


def graded_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.metadata.nbgrader.get("grade")]


# -- wrong and cheating answers, grouped so that one run covers several parts ----------

RUNS: dict[str, tuple[str, dict[str, str], set[str]]] = {
    "ex1_reference": (EX1, {}, set()),
    "ex1_wrong": (
        EX1,
        {
            # float64 rows: the division by 255 without the cast
            "flatten_images": (
                "def flatten_images(images):\n"
                "    return images.reshape(len(images), 784) / 255"
            ),
            # no minlength: labels without a 9 give fewer than 10 counts
            "count_labels": (
                "def count_labels(labels):\n    return np.bincount(labels)"
            ),
            # the most frequent digit: an int from 0 to 9, but the wrong one
            "rarest_digit": "rarest_digit = int(np.argmax(count_labels(train_y)))",
            # the mean grey level, one number instead of a 28x28 image
            "mean_image": (
                "def mean_image(images, labels, digit):\n"
                "    return images[labels == digit].mean()"
            ),
        },
        {
            "flatten_images_visible",
            "flatten_images_hidden",
            "count_labels_visible",
            "count_labels_hidden",
            "rarest_digit_hidden",
            "mean_image_visible",
            "mean_image_hidden",
        },
    ),
    "ex2_reference": (EX2, {}, set()),
    "ex2_global_model": (
        EX2,
        {
            # forgets the biases
            "count_parameters": (
                "def count_parameters(n_input, n_hidden, n_output):\n"
                "    return n_input * n_hidden + n_hidden * n_output"
            ),
            # the forward pass of the notebook's own Keras model, whatever the weights
            "forward": (
                "def relu(a):\n"
                "    return np.maximum(a, 0)\n"
                "\n"
                "def forward(images, weights):\n"
                "    return np.asarray(model(images))"
            ),
        },
        {
            "count_parameters_visible",
            "count_parameters_hidden",
            "forward_visible",
            "forward_hidden",
        },
    ),
    "ex2_keras_with_the_weights": (
        EX2,
        {
            # softmax on top of ReLU: the output layer's activation is wrong
            "build_model": (
                "def build_model(n_hidden):\n"
                "    return keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(n_hidden, activation='relu'),\n"
                "        keras.layers.Dense(n_output, activation='relu'),\n"
                "    ])"
            ),
            # a Keras model of the weights' size, given the weights: float32
            "forward": (
                "def relu(a):\n"
                "    return np.maximum(a, 0)\n"
                "\n"
                "def forward(images, weights):\n"
                "    keras_model = build_ann(n_hidden=len(weights[1]))\n"
                "    keras_model.set_weights(weights)\n"
                "    return np.asarray(keras_model(images))"
            ),
        },
        {
            "build_model_visible",
            "build_model_hidden",
            "forward_visible",
            "forward_hidden",
        },
    ),
    "ex2_keras_cast_to_float64": (
        EX2,
        {
            # the same Keras forward pass, made to look like float64 NumPy
            "forward": (
                "def relu(a):\n"
                "    return np.maximum(a, 0)\n"
                "\n"
                "def forward(images, weights):\n"
                "    keras_model = build_ann(n_hidden=len(weights[1]))\n"
                "    keras_model.set_weights(weights)\n"
                "    p = np.asarray(keras_model(images)).astype(np.float64)\n"
                "    return p / p.sum(axis=1, keepdims=True)"
            ),
        },
        {"forward_hidden"},
    ),
    "ex3_reference": (EX3, {}, set()),
    "ex3_wrong": (
        EX3,
        {
            # divides by a sum repeated 10 times: works for 10 classes only
            "softmax": (
                "def softmax(logits):\n"
                "    exp = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
                "    return exp / np.tile(exp.sum(axis=1), (10, 1)).T"
            ),
            # the log of the largest probability, not of the true class's
            "cross_entropy": (
                "def cross_entropy(probabilities, labels):\n"
                "    return float(-np.mean(np.log(probabilities.max(axis=1))))"
            ),
            # the right count as a float
            "iterations_per_epoch": (
                "def iterations_per_epoch(n_samples, n_batch):\n"
                "    return np.ceil(n_samples / n_batch)"
            ),
            # a network that cannot learn, and an accuracy metric that says 100 %
            "compile_model": (
                "def compile_model(model):\n"
                "    def accuracy(y_true, y_pred):\n"
                "        return keras.ops.ones_like(y_true, dtype='float32')\n"
                "\n"
                "    model.compile(\n"
                "        optimizer=keras.optimizers.Adam(learning_rate=1e-7),\n"
                "        loss='sparse_categorical_crossentropy',\n"
                "        metrics=[accuracy],\n"
                "    )\n"
                "    return model"
            ),
        },
        {
            "softmax_visible",
            "softmax_hidden",
            "cross_entropy_hidden",
            "iterations_hidden",
            "train_visible",
            "train_hidden",
        },
    ),
    "ex3_other_optimiser_and_loss": (
        EX3,
        {
            # no max subtracted: right, until np.exp overflows
            "softmax": (
                "def softmax(logits):\n"
                "    exp = np.exp(logits)\n"
                "    return exp / exp.sum(axis=1, keepdims=True)"
            ),
            # plain SGD, and a loss that is not the cross-entropy
            "compile_model": (
                "def compile_model(model):\n"
                "    model.compile(optimizer='sgd', loss=keras.losses.Poisson(),\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        {"softmax_hidden", "train_visible", "train_hidden"},
    ),
    "ex4_reference": (EX4, {}, set()),
    "ex4_wrong": (
        EX4,
        {
            # rows are the predictions, columns the true classes
            "confusion_matrix": (
                "def confusion_matrix(true, predicted):\n"
                "    return np.bincount(\n"
                "        np.asarray(predicted) * 10 + np.asarray(true), minlength=100\n"
                "    ).reshape(10, 10)"
            ),
            # the diagonal set to 0: a matrix without mistakes gives (0, 0)
            "most_confused_pair": (
                "def most_confused_pair(matrix):\n"
                "    mistakes = np.array(matrix, copy=True)\n"
                "    np.fill_diagonal(mistakes, 0)\n"
                "    cell = np.argmax(mistakes)\n"
                "    true, predicted = np.unravel_index(cell, (10, 10))\n"
                "    return int(true), int(predicted)"
            ),
            # a dropout layer that drops nothing, and a metric that says 100 %
            "build_regularised_model": (
                "def build_regularised_model():\n"
                "    def accuracy(y_true, y_pred):\n"
                "        return keras.ops.ones_like(y_true, dtype='float32')\n"
                "\n"
                "    model = keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu'),\n"
                "        keras.layers.Dropout(0.0),\n"
                "        keras.layers.Dense(n_output, activation='softmax'),\n"
                "    ])\n"
                "    model.compile(optimizer='adam',\n"
                "                  loss='sparse_categorical_crossentropy',\n"
                "                  metrics=[accuracy])\n"
                "    return model"
            ),
        },
        {
            "confusion_matrix_visible",
            "confusion_matrix_hidden",
            "most_confused_pair_hidden",
            "regularised_visible",
            "regularised_hidden",
        },
    ),
    "ex4_lesson_dropout": (
        EX4,
        {
            # the lesson's dropout 0.2: below 76 % on labels this noisy
            "build_regularised_model": (
                "def build_regularised_model():\n"
                "    model = keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu'),\n"
                "        keras.layers.Dropout(0.2),\n"
                "        keras.layers.Dense(n_output, activation='softmax'),\n"
                "    ])\n"
                "    model.compile(optimizer='adam',\n"
                "                  loss='sparse_categorical_crossentropy',\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        {"regularised_visible", "regularised_hidden"},
    ),
    "ex4_pretrained_frozen": (
        EX4,
        {
            # a token dropout with weights learnt on clean labels, every layer frozen:
            # the test trains a fresh copy, so only the weak regularisation counts
            "build_regularised_model": (
                "def _net(rate):\n"
                "    return keras.Sequential([\n"
                "        keras.Input((28, 28)), keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu'),\n"
                "        keras.layers.Dropout(rate),\n"
                "        keras.layers.Dense(10, activation='softmax'),\n"
                "    ])\n"
                "\n"
                "set_seed(7)\n"
                "_teacher = _net(0.01)\n"
                "_teacher.compile(optimizer='adam', "
                "loss='sparse_categorical_crossentropy')\n"
                "_teacher.fit(train_x[:10000], train_y[:10000], batch_size=64, "
                "epochs=2, verbose=0)\n"
                "\n"
                "def build_regularised_model():\n"
                "    model = _net(0.01)\n"
                "    model.set_weights(_teacher.get_weights())\n"
                "    for layer in model.layers:\n"
                "        layer.trainable = False\n"
                "    model.compile(optimizer='adam', "
                "loss='sparse_categorical_crossentropy',\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        {"regularised_visible", "regularised_hidden"},
    ),
    "ex4_regularised_by_the_optimiser": (
        EX4,
        {
            # a dropout that drops nothing; Adam's epsilon 0.01 learns so slowly that
            # the wrong labels are never memorised: the test trains with its own Adam
            "build_regularised_model": (
                "def build_regularised_model():\n"
                "    model = keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu'),\n"
                "        keras.layers.Dropout(1e-6),\n"
                "        keras.layers.Dense(n_output, activation='softmax'),\n"
                "    ])\n"
                "    model.compile(optimizer=keras.optimizers.Adam(epsilon=0.01),\n"
                "                  loss='sparse_categorical_crossentropy',\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        {"regularised_visible", "regularised_hidden"},
    ),
    "ex4_other_layers": (
        EX4,
        {
            # a strong dropout, but a layer the course's network does not have
            "build_regularised_model": (
                "def build_regularised_model():\n"
                "    model = keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Rescaling(0.02),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu'),\n"
                "        keras.layers.Dropout(0.5),\n"
                "        keras.layers.Dense(n_output, activation='softmax'),\n"
                "    ])\n"
                "    model.compile(optimizer='adam',\n"
                "                  loss='sparse_categorical_crossentropy',\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        {"regularised_visible", "regularised_hidden"},
    ),
    "ex4_l2": (
        EX4,
        {
            # L2 penalties instead of dropout: they reach 76 % too
            "build_regularised_model": (
                "def build_regularised_model():\n"
                "    penalty = keras.regularizers.L2(1e-2)\n"
                "    model = keras.Sequential([\n"
                "        keras.Input(shape=(28, 28)),\n"
                "        keras.layers.Flatten(),\n"
                "        keras.layers.Dense(100, activation='relu',\n"
                "                           kernel_regularizer=penalty),\n"
                "        keras.layers.Dense(n_output, activation='softmax',\n"
                "                           kernel_regularizer=penalty),\n"
                "    ])\n"
                "    model.compile(optimizer='adam',\n"
                "                  loss='sparse_categorical_crossentropy',\n"
                "                  metrics=['accuracy'])\n"
                "    return model"
            ),
        },
        set(),
    ),
}
"""Run name -> (assignment, answers replaced by grade_id, test cells that must fail)."""


def with_answers(assignment: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = source_notebook(assignment)
    ids = {cell.metadata.nbgrader["grade_id"]: cell for cell in nb.cells}
    for grade_id, code in answers.items():
        assert ids[grade_id].metadata.nbgrader["solution"], f"{grade_id} is no answer"
        ids[grade_id].source = code
    return nb


def execute(nb: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """Run nb from the top in a fresh plain kernel, going on after errors."""
    from nbclient import NotebookClient

    executed = copy.deepcopy(nb)
    NotebookClient(
        executed,
        timeout=SECONDS_PER_RUN,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    return executed


def failed_tests(nb: nbformat.NotebookNode) -> set[str]:
    """The test cells that nbgrader gives fewer than their points."""
    from nbgrader.utils import determine_grade

    failed = set()
    for cell in graded_cells(nb):
        score, points = determine_grade(cell)
        if score is None or score < points:
            failed.add(cell.metadata.nbgrader["grade_id"])
    return failed


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory):
    """Run each notebook once per case, on demand; remember the result and its time."""
    done: dict[str, tuple[nbformat.NotebookNode, float]] = {}

    def run(name: str) -> tuple[nbformat.NotebookNode, float]:
        if name not in done:
            assignment, answers, _ = RUNS[name]
            started = time.perf_counter()
            nb = execute(
                with_answers(assignment, answers), tmp_path_factory.mktemp(name)
            )
            done[name] = nb, time.perf_counter() - started
        return done[name]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_exactly_the_wrong_answers_fail_their_tests(executed, name: str) -> None:
    expected = RUNS[name][2]
    nb, _ = executed(name)
    failed = failed_tests(nb)
    messages = {
        cell.metadata.nbgrader["grade_id"]: output_text(cell)[-400:]
        for cell in graded_cells(nb)
    }
    assert failed == expected, {
        "fail but should pass": {k: messages[k] for k in failed - expected},
        "pass but should fail": sorted(expected - failed),
    }


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_test_cells_print_one_short_verdict(executed, assignment) -> None:
    """What nbgrader validate shows a student: no value, no stderr, one short line."""
    nb, seconds = executed(f"ex{ASSIGNMENTS.index(assignment) + 1}_reference")
    for cell in graded_cells(nb):
        grade_id = cell.metadata.nbgrader["grade_id"]
        kinds = [(out.output_type, out.get("name")) for out in cell.outputs]
        assert kinds == [("stream", "stdout")], (grade_id, kinds)
        lines = output_text(cell).splitlines()
        assert len(lines) == 1 and len(lines[0]) <= 100, (grade_id, lines)
        verdicts = (
            "passes the visible tests",
            "the hidden tests are checked when graded",
        )
        assert any(verdict in lines[0] for verdict in verdicts), (grade_id, lines)
    # under a minute on 2 quiet cores; it must fit the grader's whole-notebook limit
    # (python -m grader grade --total-timeout, 300 s) even on busy shared cores
    assert seconds < 300, f"{assignment} took {seconds:.0f} s"


# -- what the notebooks say, read without running them -------------------------------


def last_statement(code: str) -> ast.stmt | None:
    body = ast.parse(code).body
    return body[-1] if body else None


def shows_a_value(statement: ast.stmt | None) -> bool:
    """An expression statement that IPython displays (print(...) returns None)."""
    if not isinstance(statement, ast.Expr):
        return False
    call = statement.value
    return not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "print"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_test_cell_shows_a_value_nbgrader_would_read_as_points(assignment) -> None:
    """nbgrader reads a test cell's displayed number as its score ("partial credit")."""
    for cell in graded_cells(source_notebook(assignment)):
        grade_id = cell.metadata.nbgrader["grade_id"]
        for form, code in (
            ("source", cell.source),
            ("release", HIDDEN.sub("", cell.source)),
        ):
            statement = last_statement(code)
            assert not shows_a_value(statement), (
                f"{grade_id} ({form}) ends with a value"
            )
            assert isinstance(statement, ast.Expr), (
                f"{grade_id} ({form}): end with print"
            )


def test_shows_a_value_tells_a_print_from_a_result() -> None:
    assert shows_a_value(last_statement("x = 1\nx"))
    assert shows_a_value(last_statement("count_parameters(4, 3, 2)"))
    assert not shows_a_value(last_statement("print('count_parameters passes')"))
    assert not shows_a_value(last_statement("n = count_parameters(4, 3, 2)"))


def markdown(assignment: str) -> str:
    return "\n".join(
        cell.source
        for cell in source_notebook(assignment).cells
        if cell.cell_type == "markdown"
    )


def test_softmax_states_any_number_of_classes_in_text_and_docstring() -> None:
    cells = cells_by_id(EX3)
    text = cells["text-05"].source
    assert "(n, K)" in text and "any" in text and "(n, 10)" not in text
    assert "(n, K)" in cells["softmax"].source
    assert (
        "(n, K)" in cells["text-06"].source
        and "(n, K)" in cells["cross_entropy"].source
    )


def test_most_confused_pair_states_ties_and_the_matrix_without_mistakes() -> None:
    text = cells_by_id(EX4)["text-08"].source
    assert "*different* digits" in text
    assert "np.eye(10)" in text and "(0, 1)" in text
    assert "reading order" in text


def test_regularisation_part_says_the_lessons_settings_fall_short() -> None:
    text = cells_by_id(EX4)["text-10"].source
    assert "dropout 0.2" in text and "1e-3" in text and "below 76 %" in text
    assert "around 0.5" in text and "1e-2" in text
    assert "own predictions" in text


def test_regularisation_part_says_what_is_trained() -> None:
    """Only the answer's dropout rates and L2 factors are trained, with the grader's
    own network and optimiser; the tests hold the answer to that."""
    cells = cells_by_id(EX4)
    text = " ".join(cells["text-10"].source.split())
    assert "keras.optimizers.Adam()" in text and "new initial weights" in text
    assert "at least 0.1" in text and "at least 1e-3" in text
    assert "`Input`, `Flatten`, `Dense` and `Dropout`" in text
    assert "are not used" in text
    setup = cells["setup-11"].source
    assert "keras.optimizers.Adam()" in setup and "clone_model" not in setup
    assert "model.optimizer" not in setup and "model.loss" not in setup
    for grade_id in ("regularised_visible", "regularised_hidden"):
        test = cells[grade_id].source
        assert '"InputLayer", "Flatten", "Dense", "Dropout"' in test
        assert ">= 0.1" in test and ">= 1e-3" in test


FRESH_INPUTS = {
    EX1: ("flatten_images_hidden", "count_labels_hidden", "mean_image_hidden"),
    EX2: ("count_parameters_hidden", "build_model_hidden", "forward_hidden"),
    EX3: ("softmax_hidden", "cross_entropy_hidden", "iterations_hidden"),
    EX4: ("confusion_matrix_hidden", "most_confused_pair_hidden"),
}
"""Hidden tests whose inputs are drawn afresh on every grading run: a student's code
sees the inputs it is called with, so fixed ones could be carried from one graded
submission's feedback into a table in the next."""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_tests_draw_their_inputs_afresh(assignment: str) -> None:
    cells = cells_by_id(assignment)
    for grade_id, cell in cells.items():
        block = "".join(HIDDEN.findall(cell.source))
        seeds = re.findall(r"default_rng\((.*?)\)", block)
        assert all(seed == "" for seed in seeds), f"{grade_id} seeds its inputs"
    for grade_id in FRESH_INPUTS[assignment]:
        block = "".join(HIDDEN.findall(cells[grade_id].source))
        assert "np.random.default_rng()" in block, grade_id


def test_count_labels_states_ten_counts_when_digits_are_missing() -> None:
    text = cells_by_id(EX1)["text-06"].source
    assert "exactly 10 counts" in text and "counts 0" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_use_the_course_notation(assignment: str) -> None:
    """x input, z logits, p = softmax(z), y label, k = 0..9, log natural."""
    text = markdown(assignment)
    assert r"\ln" not in text and " ln " not in text, "write log (natural)"
    assert not re.search(r"k\s*=\s*1", text), "classes are k = 0, ..., 9"
    assert not re.search(r"\\mathcal N\(0, 0\.1\)", text), "write N(mu, sigma^2)"
    if "softmax" in text and "$" in text:
        assert r"\mathbf z" in text and "k = 0" in text
