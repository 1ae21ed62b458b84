"""course_utils.data: the bundled MNIST loads like Keras's, bad files never do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from course_utils import data
from course_utils.data import MnistFileError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return data.read_npz(data.BUNDLED_PATH)


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.ENV_VAR, raising=False)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def test_bundled_copy_has_keras_layout_and_published_counts() -> None:
    (train_x, train_y), (test_x, test_y) = data.load_mnist()
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (10000, 28, 28) and test_x.dtype == np.uint8
    assert train_y.shape == (60000,) and test_y.shape == (10000,)
    assert train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(train_y).tolist() == TRAIN_COUNTS
    assert np.bincount(test_y).tolist() == TEST_COUNTS
    assert train_x.mean() == pytest.approx(33.3184, abs=1e-4)


def test_scaled_images_are_float32_in_unit_range_and_equal_x_over_255() -> None:
    (raw_x, _), _ = data.load_mnist()
    (train_x, _), (test_x, _) = data.load_mnist(scaled=True)
    assert train_x.dtype == np.float32 and test_x.dtype == np.float32
    assert train_x.min() == 0.0 and train_x.max() == 1.0
    np.testing.assert_allclose(train_x, raw_x / 255.0, rtol=1e-6)
    assert train_x.nbytes == 60000 * 784 * 4  # 188 MB, half of float64


def test_bundled_file_ships_inside_the_package() -> None:
    assert data.BUNDLED_PATH.is_file()
    assert data.BUNDLED_PATH.parent.parent == Path(data.__file__).parent
    assert data.resolve_path() == data.BUNDLED_PATH


def test_path_argument_takes_precedence_over_the_environment(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = write_npz(tmp_path / "copy.npz", arrays)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "elsewhere.npz"))
    assert data.resolve_path(copy) == copy
    (train_x, _), _ = data.load_mnist(copy)
    assert train_x.shape == (60000, 28, 28)


def test_environment_variable_points_at_another_copy(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = write_npz(tmp_path / "mine.npz", arrays)
    monkeypatch.setenv(data.ENV_VAR, str(copy))
    assert data.resolve_path() == copy
    _, (_, test_y) = data.load_mnist()
    assert test_y[:3].tolist() == [7, 2, 1]


def test_missing_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(MnistFileError, match=r"nowhere\.npz.*does not exist") as error:
        data.load_mnist(missing)
    assert data.ENV_VAR in str(error.value)


def test_missing_file_from_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "gone.npz"))
    with pytest.raises(MnistFileError, match=r"gone\.npz \(from \$COURSE_MNIST_PATH\)"):
        data.load_mnist()


def test_truncated_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data.BUNDLED_PATH.read_bytes()[:1_000_000])
    with pytest.raises(MnistFileError, match=r"truncated\.npz is not a") as error:
        data.load_mnist(truncated)
    assert "copy mnist.npz again" in str(error.value)


def test_file_that_is_not_an_npz_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "mnist.npz"
    text.write_text("x_train,y_train\n1,2\n")
    with pytest.raises(MnistFileError, match=r"not a readable \.npz archive"):
        data.load_mnist(text)


def test_wrong_keys_are_listed(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    renamed = {("images" if k == "x_train" else k): v for k, v in arrays.items()}
    path = write_npz(tmp_path / "renamed.npz", renamed)
    with pytest.raises(MnistFileError, match=r"lacks the key\(s\) \['x_train'\]"):
        data.load_mnist(path)


def test_flattened_images_are_refused_with_their_shape(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    flat = dict(arrays, x_test=arrays["x_test"].reshape(-1, 784))
    path = write_npz(tmp_path / "flat.npz", flat)
    with pytest.raises(MnistFileError, match=r"x_test has shape \(10000, 784\)"):
        data.load_mnist(path)


def test_wrong_dtype_is_refused(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    floats = dict(arrays, y_train=arrays["y_train"].astype(np.int64))
    path = write_npz(tmp_path / "int64.npz", floats)
    with pytest.raises(MnistFileError, match=r"y_train .* dtype int64, expected"):
        data.load_mnist(path)


def test_one_changed_pixel_fails_the_digest(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    tampered = arrays["x_train"].copy()
    tampered[123, 14, 14] ^= 1
    path = write_npz(tmp_path / "tampered.npz", dict(arrays, x_train=tampered))
    with pytest.raises(MnistFileError, match="x_train has the right shape but not"):
        data.load_mnist(path)


def test_without_bundled_copy_keras_downloads_and_digests_are_checked(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "BUNDLED_PATH", tmp_path / "absent.npz")
    calls = []

    def fake_download() -> dict[str, np.ndarray]:
        calls.append(1)
        return dict(arrays)

    monkeypatch.setattr(data, "_download_with_keras", fake_download)
    assert data.resolve_path() is None
    (train_x, _), _ = data.load_mnist()
    assert calls == [1] and train_x.shape == (60000, 28, 28)

    monkeypatch.setattr(
        data, "_download_with_keras", lambda: dict(arrays, y_test=arrays["y_test"] * 0)
    )
    with pytest.raises(MnistFileError, match="Keras downloaded: y_test"):
        data.load_mnist()


def test_keras_download_function_calls_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    fake = (np.zeros((1, 28, 28)), np.zeros(1)), (np.ones((1, 28, 28)), np.ones(1))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    got = data._download_with_keras()
    assert sorted(got) == ["x_test", "x_train", "y_test", "y_train"]
    assert got["x_test"].sum() == 784


def test_array_digest_ignores_memory_layout() -> None:
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert data.array_digest(a) == data.array_digest(np.asfortranarray(a))
    assert data.array_digest(a) != data.array_digest(a.T)
    assert data.array_digest(np.zeros(3, np.uint8)).startswith("709e80c88487")


def test_check_arrays_accepts_the_real_data(arrays: dict[str, np.ndarray]) -> None:
    data.check_arrays(arrays, "bundled")


def test_scale_images_refuses_already_scaled_input() -> None:
    scaled = data.scale_images(np.array([[0, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(scaled, [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"got dtype float32; scale .* once"):
        data.scale_images(scaled)


@pytest.mark.parametrize(
    ("shape", "fix"),
    [
        ((5, 784), r"x\.reshape\(-1, 28, 28\)"),
        ((28, 28), r"add a batch axis with x\[None\]"),
        ((5, 32, 32), "pass a batch of MNIST images"),
    ],
)
def test_check_images_names_the_shape_and_the_fix(
    shape: tuple[int, ...], fix: str
) -> None:
    data.check_images(np.zeros((5, 28, 28)))
    with pytest.raises(ValueError, match=rf"got \({shape[0]}, .*; .*{fix}"):
        data.check_images(np.zeros(shape))
