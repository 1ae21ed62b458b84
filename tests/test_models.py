"""course_utils.models: the course network has the shape the lessons teach."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import repro
from course_utils.models import build_ann


def test_default_network_is_784_100_10_with_79510_parameters() -> None:
    model = build_ann()
    assert model.count_params() == 784 * 100 + 100 + 100 * 10 + 10 == 79_510
    assert [layer.name for layer in model.layers] == ["flatten", "hidden", "output"]
    assert model.get_layer("hidden").get_weights()[0].shape == (784, 100)
    assert model.get_layer("output").get_weights()[0].shape == (100, 10)
    assert model.input_shape == (None, 28, 28)
    assert model.get_layer("hidden").activation.__name__ == "relu"


def test_outputs_are_probabilities_for_each_image() -> None:
    model = build_ann()
    probs = model.predict(np.random.rand(5, 28, 28).astype(np.float32), verbose=0)
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs > 0).all()


def test_rescaled_network_takes_grey_levels_and_gives_the_same_answers() -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    plain, scaled = build_ann(), build_ann(rescale=True)
    assert [layer.name for layer in scaled.layers] == [
        "scale",
        "flatten",
        "hidden",
        "output",
    ]
    assert scaled.count_params() == plain.count_params() == 79_510
    scaled.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        scaled.predict(images, verbose=0),
        plain.predict(images.astype(np.float32) / 255, verbose=0),
        rtol=1e-5,
        atol=1e-7,
    )


def test_dense_layers_start_glorot_uniform_half_the_scale_of_lesson_2s_draws() -> None:
    repro.set_seed(42)
    model = build_ann()
    for name, fan_in, fan_out in (("hidden", 784, 100), ("output", 100, 10)):
        kernel, bias = model.get_layer(name).get_weights()
        limit = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        assert np.abs(kernel).max() > 0.99 * limit  # the whole range is used
        np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.02)
        np.testing.assert_array_equal(bias, 0.0)
    hidden_std = model.get_layer("hidden").get_weights()[0].std()
    assert 0.45 < hidden_std / 0.1 < 0.55


def test_hidden_and_output_sizes_are_configurable() -> None:
    model = build_ann(n_hidden=32, n_output=3)
    assert model.output_shape == (None, 3)
    assert model.count_params() == 784 * 32 + 32 + 32 * 3 + 3


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_sizes_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
        build_ann(n_hidden=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_output must be a positive integer"):
        build_ann(n_output=bad)  # type: ignore[arg-type]


def test_dropout_layer_follows_the_hidden_layer_and_acts_only_in_training() -> None:
    model = build_ann(n_hidden=512, rescale=True, dropout=0.2)
    names = [layer.name for layer in model.layers]
    assert names == ["scale", "flatten", "hidden", "dropout", "output"]
    assert model.get_layer("dropout").rate == 0.2
    assert model.count_params() == 784 * 512 + 512 + 512 * 10 + 10

    units = np.ones((100, 512), dtype=np.float32)
    layer = model.get_layer("dropout")
    np.testing.assert_array_equal(layer(units, training=False), units)
    trained = np.asarray(layer(units, training=True))
    assert 0.15 < np.mean(trained == 0) < 0.25, "about a fifth of the units dropped"
    np.testing.assert_allclose(trained[trained != 0], 1 / 0.8, rtol=1e-6)


def test_no_dropout_layer_unless_asked() -> None:
    assert "dropout" not in [layer.name for layer in build_ann().layers]
    assert build_ann(dropout=0.0).get_layer("dropout").rate == 0.0


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.2", True])
def test_dropout_rate_must_be_in_zero_to_one(bad: object) -> None:
    with pytest.raises(ValueError, match=r"dropout must be a rate in \[0, 1\)"):
        build_ann(dropout=bad)  # type: ignore[arg-type]


def test_dropout_network_starts_as_lesson_4_writes_it_by_hand() -> None:
    import keras

    def by_hand() -> keras.Sequential:
        return keras.Sequential(
            [
                keras.Input(shape=(28, 28), name="image"),
                keras.layers.Rescaling(1 / 255, name="scale"),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(512, activation="relu", name="hidden"),
                keras.layers.Dropout(0.2, name="dropout"),
                keras.layers.Dense(10, activation="softmax", name="output"),
            ]
        )

    repro.set_seed(42)
    expected = by_hand().get_weights()
    repro.set_seed(42)
    got = build_ann(512, rescale=True, dropout=0.2).get_weights()
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)
