"""course_utils.repro: TensorFlow starts quietly and seeded runs repeat exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from course_utils import repro

QUIET_IMPORT = """
from course_utils import repro
repro.quiet_tensorflow()
import keras, numpy as np
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
model.compile("adam", "mse")
model.fit(np.ones((64, 4)), np.ones((64, 2)), verbose=0)
print("trained")
"""


def test_quiet_tensorflow_keeps_cxx_log_lines_out_of_stderr() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    result = subprocess.run(
        [sys.executable, "-c", QUIET_IMPORT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert result.stdout.strip() == "trained"
    assert result.stderr == "", result.stderr


def test_unquiet_tensorflow_would_log_so_the_test_above_means_something() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    result = subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert "oneDNN" in result.stderr or "I0000" in result.stderr


def test_quiet_tensorflow_sets_level_and_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with pytest.warns(UserWarning, match="already imported"):
        repro.quiet_tensorflow(2)  # the test session imported TensorFlow already
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


@pytest.mark.parametrize("level", [-1, 4, "3", True])
def test_quiet_tensorflow_rejects_unknown_levels(level: object) -> None:
    with pytest.raises(ValueError, match="level must be 0, 1, 2 or 3"):
        repro.quiet_tensorflow(level)  # type: ignore[arg-type]


def test_same_seed_gives_same_weights_and_same_training() -> None:
    import keras

    def train() -> np.ndarray:
        repro.set_seed(7)
        x = np.random.rand(64, 28, 28).astype(np.float32)
        y = np.random.randint(0, 10, 64)
        model = keras.Sequential(
            [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        return model.get_weights()[0]

    np.testing.assert_array_equal(train(), train())


STARTING_WEIGHTS = """
from course_utils import models, repro, data
repro.quiet_tensorflow()
repro.set_seed(42)
print(data.array_digest(models.build_ann().get_layer("hidden").get_weights()[0]))
"""


@pytest.mark.slow
def test_seeded_starting_weights_do_not_depend_on_threads_or_onednn() -> None:
    """Lesson 2 compares its Keras starting weights exactly, on any machine."""

    def digest(**settings: str) -> str:
        env = {**os.environ, **settings}
        result = subprocess.run(
            [sys.executable, "-c", STARTING_WEIGHTS],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
        return result.stdout.strip()

    default = digest()
    assert len(default) == 64
    assert digest(TF_NUM_INTRAOP_THREADS="1", TF_ENABLE_ONEDNN_OPTS="0") == default
    assert digest(TF_NUM_INTRAOP_THREADS="16", ONEDNN_MAX_CPU_ISA="AVX2") == default


def test_different_seeds_give_different_numbers() -> None:
    repro.set_seed(1)
    first = np.random.rand(3)
    repro.set_seed(2)
    assert not np.array_equal(first, np.random.rand(3))


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_set_seed_rejects_what_is_not_a_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        repro.set_seed(seed)  # type: ignore[arg-type]
