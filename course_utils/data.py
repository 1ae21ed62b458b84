"""Load and check the MNIST digits.

The course ships the full MNIST database inside this package
(``course_utils/resources/mnist.npz``), so nothing is downloaded while a lesson runs.
Every load checks the arrays' keys, shapes, dtypes and SHA-256 digests, and a bad file
raises :class:`MnistFileError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

ENV_VAR = "COURSE_MNIST_PATH"
"""Environment variable that points :func:`load_mnist` at another copy of the data."""

BUNDLED_PATH = Path(__file__).parent / "resources" / "mnist.npz"
"""Where the package keeps its own copy of MNIST."""

EXPECTED = {
    "x_train": (
        (60000, 28, 28),
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ),
    "y_train": (
        (60000,),
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ),
    "x_test": (
        (10000, 28, 28),
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ),
    "y_test": (
        (10000,),
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
}
"""Shape and SHA-256 digest of each array's bytes, keyed as in ``mnist.npz``."""

Split = tuple[np.ndarray, np.ndarray]


class MnistFileError(ValueError):
    """A copy of MNIST is missing, unreadable or not the real data."""


def array_digest(array: np.ndarray) -> str:
    """Return the SHA-256 hex digest of an array's bytes in C order.

    Two arrays with the same dtype, shape and values have the same digest, whatever
    their memory layout.

    Example
    -------
    >>> array_digest(np.zeros(3, dtype=np.uint8))[:12]
    '709e80c88487'
    """
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the MNIST file to use, or ``None`` when there is no local copy.

    The order is: the ``path`` argument, then the ``COURSE_MNIST_PATH`` environment
    variable, then the copy bundled with the package. A path given explicitly (argument
    or variable) must exist.

    Parameters
    ----------
    path
        A file to use instead of the bundled copy.

    Returns
    -------
    Path or None
        The file, or ``None`` when nothing was given and the bundled copy is absent.

    Raises
    ------
    MnistFileError
        When the given path does not exist.

    Example
    -------
    >>> resolve_path().name
    'mnist.npz'
    """
    given = path if path is not None else os.environ.get(ENV_VAR) or None
    if given is None:
        return BUNDLED_PATH if BUNDLED_PATH.is_file() else None
    chosen = Path(given).expanduser()
    if not chosen.is_file():
        origin = "the path argument" if path is not None else f"${ENV_VAR}"
        raise MnistFileError(
            f"MNIST file {chosen} (from {origin}) does not exist; pass the path of a "
            f"mnist.npz, or unset {ENV_VAR} to use the copy bundled with course_utils"
        )
    return chosen


def check_arrays(arrays: dict[str, np.ndarray], source: str = "the arrays") -> None:
    """Check that four arrays are the real MNIST: keys, shapes, dtype and digests.

    Parameters
    ----------
    arrays
        ``x_train``, ``y_train``, ``x_test`` and ``y_test``, as in ``mnist.npz``.
    source
        Where the arrays came from, for the error message.

    Raises
    ------
    MnistFileError
        Naming the first array that is missing or differs from MNIST, and the fix.

    Example
    -------
    >>> with np.load(BUNDLED_PATH) as f:
    ...     check_arrays(dict(f), "mnist.npz")
    """
    fix = (
        "replace it with a good copy, or delete it and let course_utils use its "
        f"bundled copy (unset {ENV_VAR})"
    )
    missing = sorted(set(EXPECTED) - set(arrays))
    if missing:
        raise MnistFileError(
            f"{source} lacks the key(s) {missing} (it has {sorted(arrays)}); "
            f"an MNIST file holds {sorted(EXPECTED)}: {fix}"
        )
    for key, (shape, digest) in EXPECTED.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != np.uint8:
            raise MnistFileError(
                f"{source}: {key} has shape {array.shape} and dtype {array.dtype}, "
                f"expected {shape} and uint8: {fix}"
            )
        if array_digest(array) != digest:
            raise MnistFileError(
                f"{source}: {key} has the right shape but not MNIST's content "
                f"(SHA-256 {array_digest(array)[:12]}…, expected {digest[:12]}…): {fix}"
            )


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file into memory, with clear errors.

    Parameters
    ----------
    path
        The ``.npz`` file.

    Returns
    -------
    dict
        Array name to array.

    Raises
    ------
    MnistFileError
        When the file is missing, truncated or not an ``.npz`` archive.

    Example
    -------
    >>> sorted(read_npz(BUNDLED_PATH))
    ['x_test', 'x_train', 'y_test', 'y_train']
    """
    path = Path(path)
    fix = f"copy mnist.npz again, or unset {ENV_VAR} to use the bundled copy"
    if not path.is_file():
        raise MnistFileError(f"MNIST file {path} does not exist: {fix}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise MnistFileError(
            f"{path} is not a readable .npz archive (truncated or another format: "
            f"{error}): {fix}"
        ) from error


def scale_images(images: np.ndarray) -> np.ndarray:
    """Scale uint8 grey levels 0..255 to float32 values in [0, 1].

    float32 halves the memory of NumPy's default float64: the 60,000 training images
    take 188 MB instead of 376 MB.

    Example
    -------
    >>> scale_images(np.array([[0, 51, 255]], dtype=np.uint8))
    array([[0. , 0.2, 1. ]], dtype=float32)
    """
    if images.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 grey levels 0..255, got dtype {images.dtype}; "
            "scale the images returned by load_mnist() once, not twice"
        )
    return images.astype(np.float32) / np.float32(255)


def load_mnist(
    path: str | os.PathLike[str] | None = None, *, scaled: bool = False
) -> tuple[Split, Split]:
    """Load MNIST as ``(train_x, train_y), (test_x, test_y)`` and check it.

    Without ``scaled`` the arrays are exactly those of
    ``tf.keras.datasets.mnist.load_data()``: uint8 images of shape (60000, 28, 28) and
    (10000, 28, 28), uint8 labels 0..9. With ``scaled=True`` the images are float32 in
    [0, 1], the form the lessons train on. The file is the ``path`` argument, else
    ``$COURSE_MNIST_PATH``, else the copy bundled with the package; when that copy is
    absent, Keras downloads MNIST. Either way the four arrays' SHA-256 digests are
    checked.

    Parameters
    ----------
    path
        Another copy of ``mnist.npz``.
    scaled
        Return the images as float32 in [0, 1] instead of uint8.

    Returns
    -------
    tuple
        ``(train_x, train_y), (test_x, test_y)``.

    Raises
    ------
    MnistFileError
        When the file is missing, unreadable, or not MNIST.

    Example
    -------
    >>> (train_x, train_y), (test_x, test_y) = load_mnist(scaled=True)
    >>> train_x.shape, train_x.dtype, test_y[:3]
    ((60000, 28, 28), dtype('float32'), array([7, 2, 1], dtype=uint8))
    """
    chosen = resolve_path(path)
    if chosen is None:
        arrays = _download_with_keras()
        source = "the MNIST copy Keras downloaded"
    else:
        arrays = read_npz(chosen)
        source = str(chosen)
    check_arrays(arrays, source)
    train_x, test_x = arrays["x_train"], arrays["x_test"]
    if scaled:
        train_x, test_x = scale_images(train_x), scale_images(test_x)
    return (train_x, arrays["y_train"]), (test_x, arrays["y_test"])


def _download_with_keras() -> dict[str, np.ndarray]:
    """Fetch MNIST with Keras's downloader (needs internet)."""
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def check_images(images: np.ndarray) -> None:
    """Check that ``images`` is a batch of 28×28 digits, shape (n, 28, 28).

    Raises
    ------
    ValueError
        Naming the shape received and how to reshape it.

    Example
    -------
    >>> check_images(np.zeros((2, 28, 28)))
    >>> check_images(np.zeros((2, 784)))
    Traceback (most recent call last):
    ...
    ValueError: expected images of shape (n, 28, 28), got (2, 784); reshape with x.reshape(-1, 28, 28)
    """  # noqa: E501
    if images.ndim == 2 and images.shape[1] == 28 * 28:
        fix = "reshape with x.reshape(-1, 28, 28)"
    elif images.shape == (28, 28):
        fix = "for one image, add a batch axis with x[None]"
    else:
        fix = "pass a batch of MNIST images, as load_mnist() returns them"
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"expected images of shape (n, 28, 28), got {images.shape}; {fix}"
        )
