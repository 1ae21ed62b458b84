"""The course's network, built in one place for every lesson and exercise."""

from __future__ import annotations

import keras


def build_ann(
    n_hidden: int = 100,
    n_output: int = 10,
    *,
    rescale: bool = False,
    dropout: float | None = None,
) -> keras.Sequential:
    """Build the course's 784-100-10 network (uncompiled).

    28×28 images go in, ``Flatten`` turns each into 784 numbers, a ``Dense`` layer of
    ``n_hidden`` ReLU units follows, and a ``Dense`` softmax layer gives ``n_output``
    class probabilities (the softmax of the layer's logits). With the defaults it has
    79,510 parameters: 784·100 + 100 weights and biases, then 100·10 + 10.

    Keras starts each ``Dense`` layer's biases at 0 and its weights Glorot-uniform:
    uniform on [-l, l] with l = sqrt(6 / (fan_in + fan_out)), so their standard
    deviation is l / sqrt(3), about 0.048 for the hidden layer (784 inputs, 100 units),
    half the 0.1 of the normal draws lesson 2 makes by hand. Call
    ``repro.set_seed`` first for the same starting weights on every run.

    With ``rescale=True`` a ``Rescaling(1/255)`` layer comes first, so the network
    takes the uint8 grey levels 0..255 themselves and divides them batch by batch:
    ``fit`` then copies 47 MB of training images instead of 188 MB of float32 ones.
    It adds no parameters.

    With ``dropout=r`` a ``Dropout(r)`` layer follows the hidden layer, as lesson 4
    adds it: while training it zeroes each hidden unit's output with probability r (and
    scales the others by 1 / (1 - r)); it adds no parameters and does nothing when the
    network predicts. Lesson 4 defines the same network by hand first.

    Parameters
    ----------
    n_hidden
        Units in the hidden layer.
    n_output
        Classes, one output each.
    rescale
        Put a ``Rescaling(1/255)`` layer named ``scale`` first, for uint8 input.
    dropout
        Put a ``Dropout`` layer of this rate, named ``dropout``, after the hidden
        layer; ``None`` for none.

    Returns
    -------
    keras.Sequential
        Layers named ``flatten``, ``hidden`` and ``output`` (after ``scale``;
        ``dropout`` between ``hidden`` and ``output``).

    Raises
    ------
    ValueError
        When a size is not a positive integer, or the dropout rate is not a number
        in [0, 1).

    Example
    -------
    >>> build_ann().count_params()
    79510
    """
    for name, value in (("n_hidden", n_hidden), ("n_output", n_output)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if dropout is not None and (
        isinstance(dropout, bool)
        or not isinstance(dropout, int | float)
        or not 0 <= dropout < 1
    ):
        raise ValueError(f"dropout must be a rate in [0, 1) or None, got {dropout!r}")
    # Layers are made in the order they run: a Dropout layer draws its seed from the
    # global one when it is made, and so shifts the seeds of the layers made after it.
    layers = [keras.Input(shape=(28, 28), name="image")]
    if rescale:
        layers.append(keras.layers.Rescaling(1 / 255, name="scale"))
    layers.append(keras.layers.Flatten(name="flatten"))
    layers.append(keras.layers.Dense(n_hidden, activation="relu", name="hidden"))
    if dropout is not None:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    layers.append(keras.layers.Dense(n_output, activation="softmax", name="output"))
    return keras.Sequential(layers, name=f"ann_784_{n_hidden}_{n_output}")
