"""Make runs repeatable and TensorFlow quiet.

Call :func:`quiet_tensorflow` in a lesson's first cell, before importing keras, then
:func:`set_seed` before building a model.
"""

from __future__ import annotations

import os
import sys
import warnings


def quiet_tensorflow(level: int = 3) -> None:
    """Import TensorFlow without its C++ log lines; call it before importing keras.

    TensorFlow prints start-up notices (CPU instruction sets, oneDNN) and, while
    training, internal messages that are not the student's business. This sets
    ``TF_CPP_MIN_LOG_LEVEL`` (read by TensorFlow's logger) and imports TensorFlow with
    the process's standard error briefly closed, because the start-up notices are
    written before that variable is honoured. Python exceptions still surface. It also
    selects the TensorFlow backend for Keras.

    Parameters
    ----------
    level
        0 shows every C++ log line, 1 hides information lines, 2 also warnings,
        3 also errors.

    Raises
    ------
    ValueError
        When ``level`` is not 0, 1, 2 or 3.

    Example
    -------
    >>> quiet_tensorflow()
    >>> os.environ["TF_CPP_MIN_LOG_LEVEL"]
    '3'
    """
    if isinstance(level, bool) or level not in (0, 1, 2, 3):
        raise ValueError(f"level must be 0, 1, 2 or 3, got {level!r}")
    if "tensorflow" in sys.modules:
        warnings.warn(
            "TensorFlow is already imported, so its C++ log level can no longer "
            "change; call quiet_tensorflow() in the first cell, before importing keras",
            stacklevel=2,
        )
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(level)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def set_seed(seed: int = 42, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic.

    With the same seed, the starting weights Keras draws are the same on every
    machine, whatever its CPU, thread count or oneDNN setting. With the same seed, the
    same machine and the same number of CPU threads, training then gives the same
    weights, losses and accuracies on every run; on another machine the trained numbers
    can differ in their last digits (the order of floating-point additions changes),
    which is why the lessons check them against bands.

    Parameters
    ----------
    seed
        Any non-negative integer.
    deterministic
        Also ask TensorFlow for deterministic kernels (slightly slower on some ops).

    Raises
    ------
    ValueError
        When ``seed`` is not a non-negative integer.

    Example
    -------
    >>> set_seed(42)
    >>> import numpy as np
    >>> first = np.random.rand()
    >>> set_seed(42)
    >>> first == np.random.rand()
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
