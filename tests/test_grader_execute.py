"""The two-kernel run of a notebook and the data bridge between the kernels.

Fast tests check the pieces (which names a cell reads and binds, what the bridge
accepts, the output cap); slow ones start real local kernels (no sandbox) and run small
hand-written notebooks, then the reference solution of exercise 1.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from pathlib import Path

import nbformat
import numpy as np
import pytest
from jupyter_client import KernelManager

from grader import bridge
from grader.execute import (
    RunResult,
    _Budget,
    _Outputs,
    names_bound,
    names_read,
    run_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
EXERCISE_1 = ROOT / "notebooks/exercises/source/01_explore_mnist/01_explore_mnist.ipynb"


# --- fast: names, bridge data, output cap ---------------------------------------------


def test_names_read_finds_globals_used_inside_functions_and_comprehensions():
    source = (
        "rows = flatten_images(train_x[:3])\n"
        "dense = [layer for layer in model.layers if isinstance(layer, Dense)]\n"
        "def check():\n    return rarest_digit\n"
        "%time count_labels(y)\n"
    )
    read = names_read(source)
    assert {"flatten_images", "train_x", "model", "Dense", "rarest_digit"} <= read
    assert {"count_labels", "y"} <= read, "a line magic's code is read too"
    assert "layer" not in read, "a comprehension's own variable is not a global"


def test_names_bound_covers_imports_defs_and_unpacking():
    source = (
        "import numpy as np\nfrom math import ceil\n"
        "(train_x, train_y), (test_x, test_y) = load()\n"
        "def f():\n    global later\n    later = 1\n"
        "for digit, ax in pairs:\n    pass\n"
    )
    assert names_bound(source) == {
        "np", "ceil", "train_x", "train_y", "test_x", "test_y", "f", "later",
        "digit", "ax",
    }  # fmt: skip


def _frame(value: object) -> tuple[object, list[bytearray]]:
    """Encode ``value`` as K_student would and return what K_tests receives."""
    encoder = bridge.Encoder(register=lambda function: 7)
    node = encoder.encode(value)
    blobs = []
    for blob in encoder.blobs:
        parts = blob if isinstance(blob, tuple) else (blob,)
        blobs.append(bytearray(b"".join(bytes(part) for part in parts)))
    return json.loads(json.dumps(node)), blobs


def test_bridge_round_trips_data_and_keeps_numpy_and_tuple_types():
    value = {
        "a": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "s": np.float32(2.5),
        "t": (1, "x", None, True, 2.0),
        3: [np.array(["ab", "c"]), {"nested": np.int64(7)}],
    }
    node, blobs = _frame(value)
    back = bridge.Decoder(blobs, resolve=None).decode(node)
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["a"].dtype == np.uint8
    assert type(back["s"]) is np.float32 and back["s"] == np.float32(2.5)
    assert back["t"] == (1, "x", None, True, 2.0) and type(back["t"]) is tuple
    assert back[3][1]["nested"] == 7 and type(back[3][1]["nested"]) is np.int64


def test_a_module_crosses_as_its_name_and_only_allow_listed_ones_are_imported():
    import math
    import subprocess

    node, blobs = _frame(math)
    assert bridge.Decoder(blobs, None).decode(node) is math
    node, blobs = _frame(subprocess)
    with pytest.raises(bridge.BridgeError, match="not one the grader imports"):
        bridge.Decoder(blobs, None).decode(node)


def test_bridge_sends_a_function_as_a_handle_and_refuses_other_objects():
    def flatten_images(images):
        return images

    node, _ = _frame(flatten_images)
    assert node == {"function": 7, "name": "flatten_images"}
    with pytest.raises(bridge.Unsupported, match="cannot be sent"):
        bridge.Encoder().encode({1, 2})


def test_bridge_refuses_pickles_object_arrays_and_lying_headers():
    decode = bridge.Decoder
    pickled = bytearray(pickle.dumps([1, 2]))
    with pytest.raises(bridge.BridgeError, match="not an array"):
        decode([pickled], None).decode({"array": 0})
    objects = io.BytesIO()
    np.save(objects, np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(bridge.BridgeError, match="dtype object"):
        decode([bytearray(objects.getvalue())], None).decode({"array": 0})
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)}
    )
    with pytest.raises(bridge.BridgeError, match="does not match"):
        decode([bytearray(header.getvalue() + b"\0" * 8)], None).decode({"array": 0})


def test_bridge_refuses_unknown_kinds_and_deep_nesting():
    with pytest.raises(bridge.BridgeError, match="unknown kind"):
        bridge.Decoder([], None).decode({"pickle": "gASV"})
    deep: object = 1
    for _ in range(bridge.MAX_DEPTH + 5):
        deep = {"list": [deep]}
    with pytest.raises(bridge.BridgeError, match="nested"):
        bridge.Decoder([], None).decode(deep)


def test_bridge_frame_over_the_limit_is_refused_before_it_is_read():
    import socket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(bridge.MAGIC + struct.pack(">QQ", 2, 1) + b"{}")
        theirs.sendall(struct.pack(">Q", 10**12))
        with pytest.raises(bridge.BridgeError, match="larger than"):
            bridge.receive(ours, deadline=None, limit=1000)


class _Student:
    """K_student's end of the bridge in a thread of this process (fast tests)."""

    def __init__(
        self, folder: Path, namespace: dict, names: list[str], serve=None
    ) -> None:
        import threading

        self.names = names
        self.path = str(folder / "b.sock")
        self.tests = bridge.TestSide(self.path)
        self.thread = threading.Thread(
            target=serve or bridge.serve, args=(self.path, namespace), daemon=True
        )
        self.thread.start()
        self.scope: dict = {}

    def __enter__(self) -> dict:
        self.tests.begin(sorted(self.names), self.scope, timeout=20, gone="")
        return self.scope

    def __exit__(self, *exc: object) -> None:
        self.tests.end()
        self.thread.join(10)
        self.tests.listener.close()


@pytest.fixture
def short_tmp():
    """A folder with a path short enough for a unix socket."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gb", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_student_function_cannot_write_into_the_tests_arrays(short_tmp):
    def vandal(images, weights, table):
        images[...] = 0
        for w in weights:
            w[...] = 0
        table["labels"][:] = 5
        table["extra"] = np.zeros(2)
        return images

    student = _Student(short_tmp, {"vandal": vandal}, ["vandal"])
    train_x = np.arange(24.0).reshape(4, 6)
    weights = [np.ones((6, 2)), np.ones(2)]
    table = {"labels": np.arange(4)}
    with student as scope:
        back = scope["vandal"](train_x[:2], weights, table)
    np.testing.assert_array_equal(back, 0)
    assert not np.shares_memory(back, train_x)
    np.testing.assert_array_equal(train_x, np.arange(24.0).reshape(4, 6))
    assert all((w == 1).all() for w in weights)
    assert list(table) == ["labels"] and (table["labels"] == np.arange(4)).all()


def test_a_forged_reply_that_names_changed_arrays_writes_nothing(short_tmp):
    def forger(path: str, namespace: dict) -> None:
        """A K_student whose bridge answers a call with "changed" arrays."""
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        with sock:
            request, _ = bridge.receive(sock, None)
            bridge.send(
                sock,
                {"id": request["id"], "values": {"f": {"function": 1, "name": "f"}}},
                [],
            )
            request, _ = bridge.receive(sock, None)
            zeros = bridge._array_bytes(np.zeros(4))
            bridge.send(
                sock,
                {
                    "id": request["id"],
                    "result": None,
                    "changed": [[["args", 0], 0], [[0], 0], [["kwargs", "y"], 0]],
                },
                [zeros],
            )
            bridge.receive(sock, None)

    student = _Student(short_tmp, {}, ["f"], serve=forger)
    test_y = np.arange(4.0)
    other = np.arange(4.0)
    with student as scope:
        assert scope["f"](test_y, y=other) is None
    np.testing.assert_array_equal(test_y, np.arange(4.0))
    np.testing.assert_array_equal(other, np.arange(4.0))


def _dense(units: int) -> dict[str, object]:
    return {"class": "Dense", "config": {"units": units, "activation": "relu"}}


def test_a_model_spec_is_rebuilt_only_from_allow_listed_checked_layers():
    spec = {"layers": [_dense(3)], "input_shape": [None, 4], "compile": None}
    weights = [np.ones((4, 3), np.float32), np.zeros(3, np.float32)]
    model = bridge.build_model(spec, weights)
    assert model.count_params() == 15
    np.testing.assert_allclose(model.predict(np.ones((1, 4)), verbose=0), [[4, 4, 4]])
    refused = {
        "Lambda layer": {**spec, "layers": [{"class": "Lambda", "config": {}}]},
        "custom activation": {
            **spec,
            "layers": [{"class": "Dense", "config": {"units": 3, "activation": "os"}}],
        },
        "weights that do not match": spec,
        "too many parameters": {**spec, "layers": [_dense(10_000)] * 3},
        "unbuilt chain of wide layers": {
            "layers": [{"class": "Flatten", "config": {}}, *[_dense(10_000)] * 3]
        },
        "unbuilt convolution": {
            "layers": [{"class": "Conv2D", "config": {"filters": 8, "kernel_size": 3}}]
        },
    }
    for why, bad in refused.items():
        arrays = weights[:1] if why == "weights that do not match" else []
        if why in ("Lambda layer", "custom activation"):
            arrays = weights
        with pytest.raises(bridge.BridgeError, match="model spec refused"):
            bridge.build_model(bad, arrays)


def test_a_frozen_model_is_rebuilt_with_every_layer_trainable():
    frozen = {
        "class": "Dense",
        "config": {"units": 2, "activation": "linear", "trainable": False},
    }
    spec = {
        "layers": [frozen, {**frozen, "config": {**frozen["config"], "units": 1}}],
        "input_shape": [None, 3],
        "compile": {
            "optimizer": {"class": "SGD", "config": {"learning_rate": 0.1}},
            "loss": "mse",
            "metrics": [],
        },
    }
    weights = [np.ones((3, 2)), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    model = bridge.build_model(spec, [w.astype(np.float32) for w in weights])
    assert all(layer.trainable for layer in model.layers)
    assert len(model.trainable_weights) == 4
    x = np.ones((8, 3), np.float32)
    model.fit(x, np.zeros((8, 1), np.float32), epochs=1, verbose=0)
    assert not np.allclose(model.get_weights()[0], 1), "training changed the weights"


def test_output_cap_keeps_the_start_of_a_flood_and_notes_the_rest():
    budget = _Budget(2500)
    cell = _Outputs(budget, cell_limit=1000)
    for _ in range(50):
        cell.add("stream", {"name": "stdout", "text": "x" * 100})
    outputs = cell.notebook_outputs()
    assert outputs[0]["text"] == "x" * 1000
    assert "4000 more characters of output dropped" in outputs[-1]["text"]
    other = _Outputs(budget, cell_limit=5000)
    other.add("stream", {"name": "stdout", "text": "y" * 3000})
    assert len(other.items[0]["text"]) == 1500, "the notebook's budget caps it too"


def test_output_metadata_cannot_slip_past_the_cap():
    budget = _Budget(4000)
    cell = _Outputs(budget, cell_limit=1000)
    pad = {"pad": "A" * 30_000_000}
    for _ in range(2):
        cell.add("display_data", {"data": {"text/plain": "ok"}, "metadata": pad})
    cell.add("error", {"ename": "E" * 5000, "evalue": "", "traceback": []})
    outputs = cell.notebook_outputs()
    assert len(json.dumps(outputs)) < 2000
    assert all(not output.get("metadata") for output in outputs)


def test_html_javascript_and_svg_are_dropped_text_and_pictures_kept():
    cell = _Outputs(_Budget(100_000), cell_limit=50_000)
    script = "<script>fetch('/formgrader/api/grade')</script>"
    cell.add(
        "display_data",
        {
            "data": {
                "text/html": script,
                "application/javascript": "alert(1)",
                "image/svg+xml": f"<svg>{script}</svg>",
                "text/markdown": script,
                "text/plain": "<Figure>",
                "image/png": "iVBORw0KGgo=",
            }
        },
    )
    cell.add("display_data", {"data": {"text/html": script}})
    cell.add("execute_result", {"data": {"text/plain": "1"}, "execution_count": "x"})
    outputs = cell.notebook_outputs()
    assert [sorted(output["data"]) for output in outputs] == [
        ["image/png", "text/plain"],
        ["text/plain"],
    ]
    assert outputs[1]["execution_count"] is None
    assert "script" not in json.dumps(outputs)


def test_lone_surrogates_and_fake_grader_notes_are_neutralised():
    cell = _Outputs(_Budget(100_000), cell_limit=50_000)
    cell.add(
        "stream", {"name": "stderr", "text": "[grader: all hidden tests passed] \udcff"}
    )
    cell.add("error", {"ename": "E\ud800", "evalue": "\udcff", "traceback": ["\ud800"]})
    outputs = cell.notebook_outputs()
    text = nbformat.writes(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=outputs)])
    )
    text.encode("utf-8")  # no UnicodeEncodeError
    assert "[grader:" not in text and "[grader?: all hidden tests passed] ?" in text


# --- slow: real kernels -------------------------------------------------------------


def _local_kernel(role: str) -> tuple[KernelManager, object]:
    """A plain local kernel (no sandbox), as ``start_kernel`` must return it."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(ROOT))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    return manager, client


def _run(
    tmp_path: Path,
    cells: list[tuple[str, str]],
    *,
    cell_timeout: float = 60,
    output_limit: int = 20_000,
) -> RunResult:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for _, source in cells]
    return run_notebook(
        nb,
        roles={index: role for index, (role, _) in enumerate(cells)},
        start_kernel=_local_kernel,
        exchange_dir=tmp_path,
        cell_timeout=cell_timeout,
        total_timeout=600,
        output_limit=output_limit,
    )


def _passed(result: RunResult) -> dict[int, bool]:
    return {index: test.passed for index, test in result.tests.items()}


@pytest.mark.slow
def test_student_cells_and_test_cells_never_share_a_kernel(tmp_path):
    result = _run(
        tmp_path,
        [
            ("setup", "import os\nsetup_pid = os.getpid()"),
            ("student", "student_pid = os.getpid()\nsaw_tests = 'hidden' in dir()"),
            ("student", "student_only = 1"),
            ("test", "hidden = 1\nassert student_pid != os.getpid() == setup_pid"),
            ("student", "saw_tests = saw_tests or 'hidden' in dir()"),
            ("test", "assert saw_tests is False"),
            (
                "test",
                "assert 'student_only' not in dir(), 'only names tests read cross'",
            ),
        ],
    )
    assert _passed(result) == {3: True, 5: True, 6: True}
    assert result.failure is None


@pytest.mark.slow
def test_a_student_who_patches_their_kernel_cannot_pass_a_wrong_answer(tmp_path):
    cheats = (
        "import builtins, numpy as np, sys\n"
        "class Anything(float):\n"
        "    def __eq__(self, other): return True\n"
        "    __ne__ = lambda self, other: False\n"
        "    def __bool__(self): return True\n"
        "def answer(x): return Anything(0)\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "np.testing.assert_array_equal = lambda *a, **k: None\n"
        "builtins.AssertionError = type('Quiet', (Exception,), {})\n"
        "get_ipython().events.register('post_run_cell', lambda r: None)\n"
        "get_ipython().showtraceback = lambda *a, **k: None\n"
        "sys.modules['_grader_bridge'].TESTS = None\n"
        "counts = np.zeros(10)\n"
        "label = Anything(3)\n"
    )
    result = _run(
        tmp_path,
        [
            ("setup", "import numpy as np"),
            ("student", cheats),
            ("test", "np.testing.assert_allclose(answer(1), 42)"),
            ("test", "np.testing.assert_array_equal(counts, np.arange(10))"),
            ("test", "assert answer(2) == 42"),
            ("test", "assert label == 5"),
            ("test", "assert isinstance(label, str)"),
            ("test", "assert isinstance(answer, object) and float(label) == 3.0"),
        ],
    )
    assert _passed(result) == {
        2: False, 3: False, 4: False, 5: False, 6: False, 7: True,
    }  # fmt: skip
    assert "DESIRED: array(42)" in result.tests[2].message


@pytest.mark.slow
def test_a_function_changes_only_its_copies_never_the_tests_arrays(tmp_path):
    result = _run(
        tmp_path,
        [
            ("setup", "import numpy as np\nlabels = np.arange(6)"),
            (
                "student",
                "def scale(images, factor=2):\n"
                "    print('scaling', images.shape)\n"
                "    images *= factor\n"
                "    return {'sum': images.sum(), 'shape': images.shape}\n"
                "def relabel(labels, weights):\n"
                "    labels[...] = 0\n"
                "    for w in weights:\n"
                "        w[...] = 0\n"
                "    return labels\n"
                "def broken(x):\n    raise ValueError('not done yet')",
            ),
            (
                "test",
                "kept = np.ones((2, 3))\nout = scale(kept, factor=3)\n"
                "assert out == {'sum': 18.0, 'shape': (2, 3)}\n"
                "np.testing.assert_array_equal(kept, 1)",
            ),
            ("test", "broken(1)"),
            (
                "test",
                "weights = [np.ones(3), {'b': np.ones(2)}['b']]\n"
                "back = relabel(labels[:4], weights)\n"
                "np.testing.assert_array_equal(back, 0)\n"
                "np.testing.assert_array_equal(labels, np.arange(6))\n"
                "assert all((w == 1).all() for w in weights)",
            ),
            ("test", "np.testing.assert_array_equal(labels, np.arange(6))"),
        ],
    )
    assert _passed(result) == {2: True, 3: False, 4: True, 5: True}
    assert result.tests[3].message == (
        "ValueError: in your function broken: ValueError: not done yet"
    )
    texts = [output.get("text", "") for output in result.notebook.cells[2].outputs]
    assert any("scaling (2, 3)" in text for text in texts), "their print shows too"


@pytest.mark.slow
def test_a_setup_cell_shows_what_the_test_kernel_computed(tmp_path):
    result = _run(
        tmp_path,
        [
            ("setup", "import numpy as np\nlabels = np.arange(4)"),
            ("student", "def spoil(v):\n    v[:] = 0\n    return int(v.sum())"),
            ("setup", "print('sums', spoil(labels), labels.sum())"),
            ("test", "assert labels.sum() == 6"),
        ],
    )
    assert _passed(result) == {3: True}
    text = "".join(o.get("text", "") for o in result.notebook.cells[2].outputs)
    assert text == "sums 0 6\n", "K_tests' labels, not the student's spoiled copy"


@pytest.mark.slow
def test_models_histories_and_functions_cross_as_data(tmp_path):
    student = (
        "def build(n_hidden):\n"
        "    model = keras.Sequential([keras.Input(shape=(4,)),\n"
        "        keras.layers.Dense(n_hidden, activation='relu'),\n"
        "        keras.layers.Dropout(0.25),\n"
        "        keras.layers.Dense(3, activation='softmax')])\n"
        "    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),\n"
        "        loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "    return model\n"
        "model = build(5)\n"
        "history = model.fit(x, y, epochs=2, verbose=0)\n"
        "def compile_model(model):\n"
        "    model.compile(optimizer='adam', loss='mse')\n"
        "    return model\n"
    )
    test = (
        "assert [type(l).__name__ for l in model.layers] == "
        "['Dense', 'Dropout', 'Dense']\n"
        "assert model.layers[1].rate == 0.25 and model.count_params() == 43\n"
        "assert model.layers[0].activation.__name__ == 'relu'\n"
        "assert type(model.optimizer).__name__ == 'SGD'\n"
        "assert abs(float(model.optimizer.learning_rate) - 0.05) < 1e-7\n"
        "assert model.loss == 'sparse_categorical_crossentropy'\n"
        "w1, b1, w2, b2 = model.get_weights()\n"
        "z = np.maximum(x @ w1 + b1, 0) @ w2 + b2\n"
        "p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)\n"
        "np.testing.assert_allclose(model.predict(x, verbose=0), p, rtol=1e-4)\n"
        "assert len(history.history['loss']) == 2 == history.params['epochs']\n"
        "assert build(7).count_params() == 4 * 7 + 7 + 7 * 3 + 3\n"
        "again = compile_model(keras.Sequential([keras.Input((2,)), "
        "keras.layers.Dense(1)]))\n"
        "assert type(again.optimizer).__name__ == 'Adam' and again.loss == 'mse'\n"
        "assert model.evaluate(x, y, verbose=0)[1] >= 0"
    )
    result = _run(
        tmp_path,
        [
            (
                "setup",
                "import numpy as np, keras\nx = np.random.default_rng(0)"
                ".normal(size=(8, 4)).astype('float32')\ny = np.arange(8) % 3",
            ),
            ("student", student),
            ("test", test),
            ("student", "model.add(keras.layers.Lambda(lambda t: t * 0 + 1))"),
            ("test", "assert model.count_params() == 43"),
        ],
        cell_timeout=240,
    )
    assert result.tests[2].passed, result.tests[2].message
    assert not result.tests[4].passed
    assert "Lambda" in result.tests[4].message and "model" in result.tests[4].message


@pytest.mark.slow
def test_a_dead_student_kernel_fails_only_the_tests_that_need_it(tmp_path):
    result = _run(
        tmp_path,
        [
            ("setup", "import numpy as np\nlabels = np.arange(5)"),
            ("student", "def count(v):\n    return len(v)"),
            ("test", "assert count(labels) == 5"),
            ("student", "import os\nos._exit(3)"),
            ("test", "assert count(labels) == 5"),
            ("test", "assert labels.sum() == 10"),
        ],
    )
    assert _passed(result) == {2: True, 4: False, 5: True}
    assert "died" in result.tests[4].message and "cell 3" in result.tests[4].message
    assert result.failure == "kernel died (exit status 3) in cell 3"


@pytest.mark.slow
def test_endless_student_code_is_interrupted_and_fails_only_its_tests(tmp_path):
    result = _run(
        tmp_path,
        [
            ("setup", "import time"),
            ("student", "while True:\n    pass"),
            ("student", "def hang():\n    while True:\n        time.sleep(0.01)"),
            ("student", "def fine():\n    return 1"),
            ("test", "hang()"),
            ("test", "assert fine() == 1"),
        ],
        cell_timeout=4,
    )
    assert _passed(result) == {4: False, 5: True}
    assert result.tests[4].message == (
        "TimeoutError: your function hang did not return in time"
    )
    assert result.failure == "timeout in cell 1 after 4 s"


@pytest.mark.slow
def test_a_student_bridge_that_sends_garbage_only_fails_its_own_tests(tmp_path):
    garbage = (
        "import socket, sys, struct\n"
        "def serve(path, namespace):\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    s.connect(path)\n"
        "    s.recv(1 << 16)\n"
        "    s.sendall(b'GRB1' + struct.pack('>QQ', 2, 0) + b'[]')\n"
        "    s.close()\n"
        "sys.modules['_grader_bridge'].serve = serve\n"
        "answer = 42"
    )
    result = _run(
        tmp_path,
        [
            ("setup", "base = 2"),
            ("student", garbage),
            ("test", "assert answer == 42"),
            ("test", "assert base == 2"),
        ],
    )
    assert _passed(result) == {2: False, 3: True}
    assert "answer" in result.tests[2].message
    assert "not a JSON object" in result.tests[2].message


@pytest.mark.slow
def test_an_output_flood_is_capped_per_cell_and_per_notebook(tmp_path):
    flood = "for _ in range(2000):\n    print('x' * 5000)"
    result = _run(
        tmp_path,
        [("student", flood), ("student", flood), ("setup", "print('after')")],
        output_limit=10_000,
    )
    texts = [
        "".join(output.get("text", "") for output in cell.outputs)
        for cell in result.notebook.cells
    ]
    assert texts[0].replace("\n", "").startswith("x" * 9000)
    assert "9992000 more characters of output dropped" in texts[0]
    assert sum(text.count("x") for text in texts) <= 4 * 10_000
    assert "after" in texts[2]


@pytest.mark.slow
def test_reference_solution_of_exercise_1_passes_every_test_split_in_two(tmp_path):
    nb = nbformat.read(EXERCISE_1, as_version=4)
    roles = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and meta.get("locked"):
            roles[index] = "test"
        else:
            roles[index] = "setup" if meta.get("locked") else "student"
    result = run_notebook(
        nb,
        roles=roles,
        start_kernel=_local_kernel,
        exchange_dir=tmp_path,
        cell_timeout=300,
        total_timeout=900,
        output_limit=200_000,
    )
    assert result.tests and result.failure is None
    failed = {i: t.message for i, t in result.tests.items() if not t.passed}
    assert not failed


FLOOD = """
import hashlib, hmac, json, time
session = get_ipython().kernel.session
iopub = get_ipython().kernel.iopub_socket
metadata = b"[" + b"0," * (MiB // 2 - 1) + b"0]"  # 1 MiB of JSON to parse
header = json.dumps({"msg_id": "flood", "msg_type": "status", "username": "u",
                     "session": session.session, "date": "2024-01-01T00:00:00Z",
                     "version": "5.3"}).encode()
parent = json.dumps(PARENT, default=str).encode()
sent = 0
for n in range(COUNT):
    content = json.dumps({"execution_state": "busy", "n": n}).encode()
    signature = hmac.new(session.key, digestmod=hashlib.sha256)
    for part in (header, parent, metadata, content):
        signature.update(part)
    frames = [b"kernel.flood.status", b"<IDS|MSG>", signature.hexdigest().encode(),
              header, parent, metadata, content]
    iopub.send_multipart(frames, copy=False)
    sent += 1
time.sleep(SLEEP)
print("sent", sent)
"""


def _flood(count: int, sleep: float, parent: str) -> str:
    """A cell that publishes ``count`` validly signed 1 MiB messages on its own IOPub
    socket, for another request's parent (``{}``) or its own (the current one)."""
    parents = {"other": "{}", "own": "get_ipython().kernel.get_parent()['header']"}
    return (
        f"MiB = 1024**2\nCOUNT, SLEEP = {count}, {sleep}\nPARENT = {parents[parent]}\n"
        + FLOOD
    )


@pytest.mark.slow
@pytest.mark.parametrize("parent", ["other", "own"])
def test_an_iopub_flood_kills_the_kernel_and_fails_only_its_submission(
    tmp_path, parent
):
    """A kernel may publish validly signed messages of its own; past the notebook's
    IOPub budget it is killed, and the grader never queues nor parses the flood."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    nb = nbformat.v4.new_notebook()
    cells = [
        ("setup", "base = 2"),
        ("student", "answer = 42"),
        ("student", _flood(200, 20, parent)),
        ("test", "assert answer == 42"),
        ("test", "assert base == 2"),
    ]
    nb.cells = [nbformat.v4.new_code_cell(source) for _, source in cells]
    result = run_notebook(
        nb,
        roles={index: role for index, (role, _) in enumerate(cells)},
        start_kernel=_local_kernel,
        exchange_dir=tmp_path,
        cell_timeout=60,
        total_timeout=600,
        output_limit=20_000,
        iopub_limit=16 * 1024**2,
    )
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.failure == (
        "kernel was stopped for an output flood (more than 16 MiB of output "
        "messages) in cell 2"
    )
    assert _passed(result) == {3: False, 4: True}
    assert "output flood" in result.tests[3].message
    assert time.monotonic() - started < 15, "killed at once, not after its 20 s"
    assert grown < 100 * 1024, f"the grader grew by {grown} KiB for 200 MiB sent"
