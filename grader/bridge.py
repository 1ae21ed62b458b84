"""The data bridge between a submission's two kernels.

The grader runs a submission in two kernels (see :mod:`grader.execute`): K_student runs
the student's code, K_tests runs the tests. A test that reads a name the student
defined gets it from K_student through this bridge, as DATA:

- ``None``, ``bool``, ``int``, ``float``, ``str``, and lists, tuples and dicts of them;
- NumPy arrays and scalars of booleans, numbers or strings (``.npy`` bytes, read back
  with ``allow_pickle=False``; object and structured dtypes are refused);
- a Keras model as a spec: Sequential (or a functional chain) of allow-listed layer
  classes with JSON-primitive configs, its weights, and how it was compiled (optimizer
  class and hyperparameters, loss, metrics), rebuilt in K_tests from K_tests' own Keras
  with every layer trainable (a frozen layer's flag does not cross);
- a Keras ``History`` as an object with ``.history`` (lists of floats), ``.params`` and
  ``.epoch``;
- a module (``import math`` in an answer) as its name: K_tests imports its own copy,
  for allow-listed modules only (:data:`MODULES`, :data:`PACKAGES`);
- a function as a :class:`StudentFunction` proxy: calling it in K_tests sends copies
  of its arguments (data) to K_student, runs the student's function there and brings
  the result (data) back. Nothing flows the other way: whatever the function does to
  its copies stays in K_student, and K_tests' own arrays are never written.

Nothing is pickled and no object crosses with its behaviour: whatever K_student sends
is untrusted and decoded strictly (sizes, depth and count capped; every type checked),
so what a student does to its own interpreter (patched ``np.testing``, always-equal
objects, IPython hooks) stays there.

The wire: K_tests listens on a unix socket in the exchange folder, K_student connects
once, before any student code runs, and K_tests then closes and removes the listening
socket. Each message is a frame ``b"GRB1"``, header length, blob count, a JSON header,
then each blob (``.npy`` bytes) with its length. K_tests asks (``get`` names, ``call`` a
function); K_student answers inside :func:`serve`, which the grader runs on K_student's
main thread while K_tests runs a cell, and which returns on ``done`` or when K_tests
is gone.

This module is sent as source text into both kernels (neither can import the grader)
and runs there as the module ``_grader_bridge``; it needs only the standard library and
NumPy (Keras when a model crosses).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import itertools
import json
import math
import re
import socket
import struct
import sys
import time
import traceback
import types
from typing import Any

MAGIC = b"GRB1"
MAX_MESSAGE = 256 * 1024**2
"""Bytes one message may hold (header and arrays)."""
MAX_HEADER = 16 * 1024**2
MAX_DEPTH = 40
MAX_NODES = 200_000
MAX_UNITS = 10_000
"""Largest units / filters of one rebuilt layer."""
MAX_PARAMS = 20_000_000
"""Most parameters a rebuilt model may have."""
MODULES = {
    "math", "random", "statistics", "itertools", "functools", "collections",
    "operator", "string", "time",
}  # fmt: skip
"""Modules a student's name may stand for; K_tests imports its own copy."""
PACKAGES = {"numpy", "keras", "tensorflow", "matplotlib", "course_utils"}
"""Packages whose modules (``numpy.linalg``...) K_tests imports likewise."""
_ARRAY_KINDS = "biufcUS"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class BridgeError(RuntimeError):
    """The other kernel is gone, too slow, or sent something that is not data."""


class Unsupported(TypeError):
    """A value that cannot cross the bridge as data."""


# --- framing -----------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        if deadline is None:
            sock.settimeout(None)
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:])
        except TimeoutError:
            raise
        except OSError as error:
            raise BridgeError(f"connection lost ({error})") from None
        if k == 0:
            raise BridgeError("connection closed")
        got += k
    return buffer


Blob = bytes | bytearray | tuple[bytes, memoryview]
"""An array's bytes: whole, or its ``.npy`` header and its memory (no copy)."""


def send(sock: socket.socket, header: dict[str, Any], blobs: list[Blob]) -> None:
    """Send one frame: ``header`` as JSON and ``blobs`` as raw bytes."""
    text = json.dumps(header, allow_nan=True).encode()
    sock.settimeout(None)
    sock.sendall(MAGIC + struct.pack(">QQ", len(text), len(blobs)) + text)
    for blob in blobs:
        parts = blob if isinstance(blob, tuple) else (blob,)
        sock.sendall(
            struct.pack(">Q", sum(part.nbytes for part in map(memoryview, parts)))
        )
        for part in parts:
            sock.sendall(part)


def receive(
    sock: socket.socket, deadline: float | None, limit: int = MAX_MESSAGE
) -> tuple[dict[str, Any], list[bytearray]]:
    """Read one frame, refusing it (BridgeError) once it would exceed ``limit``."""
    start = _recv_exact(sock, 20, deadline)
    if start[:4] != MAGIC:
        raise BridgeError("not a bridge message")
    header_size, count = struct.unpack(">QQ", start[4:])
    if header_size > min(MAX_HEADER, limit) or count > MAX_NODES:
        raise BridgeError("message too large")
    total = header_size
    try:
        header = json.loads(_recv_exact(sock, header_size, deadline))
    except (ValueError, RecursionError):
        raise BridgeError("header is not JSON") from None
    if not isinstance(header, dict):
        raise BridgeError("header is not a JSON object")
    blobs = []
    for _ in range(count):
        (size,) = struct.unpack(">Q", _recv_exact(sock, 8, deadline))
        total += size
        if total > limit:
            raise BridgeError(f"message larger than {limit} bytes")
        blobs.append(_recv_exact(sock, size, deadline))
    return header, blobs


# --- arrays ------------------------------------------------------------------------


def _array_bytes(array: Any) -> Blob:
    import numpy as np

    array = np.asarray(array)
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
        raise Unsupported(f"an array of dtype {array.dtype} cannot be sent")
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, np.lib.format.header_data_from_array_1_0(array)
    )
    return header.getvalue(), memoryview(array.reshape(-1)).cast("B")


def _array(blob: bytes | bytearray) -> Any:
    """Read ``.npy`` bytes strictly: plain dtypes only, size checked before reading.

    Like ``np.load(allow_pickle=False)``, with the data left in ``blob`` (no copy).
    """
    import numpy as np

    stream = io.BytesIO(bytes(memoryview(blob)[:65_600]))
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(version)
    except Exception as error:
        raise BridgeError(f"not an array ({error})") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.hasobject:
        raise BridgeError(f"arrays of dtype {dtype} are not accepted")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise BridgeError("bad array shape")
    count = math.prod(shape)
    if count * dtype.itemsize != len(blob) - stream.tell():
        raise BridgeError("array size does not match its data")
    flat = np.frombuffer(blob, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran else "C")


# --- encoding ------------------------------------------------------------------------


def _is_keras(value: Any, name: str) -> bool:
    keras = sys.modules.get("keras")
    if keras is None:
        return False
    kind = {"model": "Model", "history": "callbacks.History"}[name]
    target: Any = keras
    for part in kind.split("."):
        target = getattr(target, part)
    return isinstance(value, target)


class Encoder:
    """Turn a value into a JSON tree plus ``.npy`` blobs.

    ``register`` gives a handle for a function (K_student); without it, only
    :class:`StudentFunction` proxies (K_tests) are sent, as their handles.
    """

    def __init__(self, register: Any = None) -> None:
        self.register = register
        self.blobs: list[Blob] = []
        self.nodes = 0

    def blob(self, array: Any) -> int:
        self.blobs.append(_array_bytes(array))
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        import numpy as np

        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise Unsupported("too deeply nested or too many items")
        if value is None or isinstance(value, bool | str):
            return value if not isinstance(value, str) else str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, np.ndarray):
            return {"array": self.blob(value)}
        if isinstance(value, np.generic):
            return {"scalar": self.blob(np.asarray(value))}
        if isinstance(value, list | tuple):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {kind: [self.encode(item, depth + 1) for item in value]}
        if isinstance(value, dict):
            return {
                "dict": [
                    [self.encode(key, depth + 1), self.encode(item, depth + 1)]
                    for key, item in value.items()
                ]
            }
        if isinstance(value, StudentFunction):
            return {"function": value.handle, "name": value.__name__}
        if isinstance(value, types.ModuleType):
            return {"module": str(value.__name__)}
        if _is_keras(value, "model"):
            return {"model": model_spec(value, self)}
        if _is_keras(value, "history"):
            return {
                "history": {
                    "history": self.encode(
                        {
                            str(k): [float(x) for x in v]
                            for k, v in value.history.items()
                        }
                    ),
                    "params": self.encode(dict(value.params or {})),
                    "epoch": [int(e) for e in getattr(value, "epoch", [])],
                }
            }
        if (
            self.register is not None
            and callable(value)
            and not isinstance(value, type)
        ):
            name = str(getattr(value, "__name__", "function"))
            return {"function": self.register(value), "name": name}
        if hasattr(value, "__array__") and not callable(value):
            array = np.asarray(value)
            return {"array" if array.ndim else "scalar": self.blob(array)}
        raise Unsupported(
            f"a {type(value).__name__} cannot be sent between the kernels; "
            "use NumPy arrays, numbers, strings, lists, tuples, dicts or Keras models"
        )


# --- Keras models --------------------------------------------------------------------

_ACTIVATIONS = {
    "relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "softplus",
    "softsign", "swish", "silu", "gelu", "exponential", "leaky_relu", "relu6",
    "hard_sigmoid", "log_softmax", "mish",
}  # fmt: skip
_LAYERS = {
    "Flatten", "Dense", "Conv2D", "MaxPooling2D", "Dropout", "GaussianNoise",
    "Rescaling", "Reshape", "Activation", "BatchNormalization",
}  # fmt: skip
_FLAT_LAYERS = {
    "Dense", "Dropout", "Activation", "Rescaling", "GaussianNoise",
    "BatchNormalization",
}  # fmt: skip
_DTYPES = {"float16", "bfloat16", "float32", "float64", "uint8", "int32", "int64"}
_POLICIES = _DTYPES | {"mixed_float16", "mixed_bfloat16"}
_OPTIMIZERS = {
    "SGD": {"momentum", "nesterov"},
    "Adam": {"beta_1", "beta_2", "epsilon", "amsgrad"},
    "AdamW": {"beta_1", "beta_2", "epsilon", "amsgrad", "weight_decay"},
    "RMSprop": {"rho", "momentum", "epsilon", "centered"},
    "Adagrad": {"initial_accumulator_value", "epsilon"},
    "Adadelta": {"rho", "epsilon"},
    "Adamax": {"beta_1", "beta_2", "epsilon"},
    "Nadam": {"beta_1", "beta_2", "epsilon"},
}
_LOSS_NAMES = {
    "sparse_categorical_crossentropy", "categorical_crossentropy",
    "binary_crossentropy", "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "kl_divergence", "hinge", "categorical_hinge", "poisson", "huber",
}  # fmt: skip
_LOSS_CLASSES = {
    "SparseCategoricalCrossentropy": {"from_logits", "ignore_class"},
    "CategoricalCrossentropy": {"from_logits", "label_smoothing"},
    "BinaryCrossentropy": {"from_logits", "label_smoothing"},
    "MeanSquaredError": set(),
    "MeanAbsoluteError": set(),
}
_METRICS = {
    "accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
    "binary_accuracy", "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
    "mse", "mae", "mean_squared_error", "mean_absolute_error",
    "sparse_categorical_crossentropy", "categorical_crossentropy",
}  # fmt: skip
_METRIC_CLASSES = {
    "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
    "CategoricalAccuracy": "categorical_accuracy",
    "Accuracy": "accuracy",
    "BinaryAccuracy": "binary_accuracy",
}


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON primitives (tuples become lists); anything else as None."""
    if depth > 8:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    return None


def model_spec(model: Any, encoder: Encoder) -> dict[str, Any]:
    """The spec of a Sequential or functional-chain Keras model (see module doc)."""
    import keras

    layers = list(model.layers)
    kind = type(model).__name__
    if kind == "Functional":
        config = model.get_config()["layers"]
        previous = None
        for layer_config in config:
            inbound = layer_config.get("inbound_nodes") or []
            sources = [
                arg["config"]["keras_history"][0]
                for node in inbound
                for arg in node.get("args", ())
                if isinstance(arg, dict) and "keras_history" in arg.get("config", {})
            ]
            if previous is not None and sources != [previous]:
                raise Unsupported(
                    "only a chain of layers can be graded; build the model with "
                    "keras.Sequential"
                )
            previous = layer_config["name"]
        layers = [layer for layer in layers if type(layer).__name__ != "InputLayer"]
    elif not isinstance(model, keras.Sequential):
        raise Unsupported(
            f"a {kind} (subclassed Keras model) cannot be graded; build it with "
            "keras.Sequential"
        )
    input_shape = input_dtype = None
    try:
        tensor = model.inputs[0]
        input_shape = [None if n is None else int(n) for n in tensor.shape]
        input_dtype = str(tensor.dtype)
    except Exception:
        pass
    specs = []
    for layer in layers:
        if type(layer).__name__ not in _LAYERS:
            raise Unsupported(
                f"its layer {type(layer).__name__} is not one the grader rebuilds "
                f"({', '.join(sorted(_LAYERS))})"
            )
        config = _plain(layer.get_config())
        dtype = layer.get_config().get("dtype")
        if isinstance(dtype, dict):
            config["dtype"] = str(dtype.get("config", {}).get("name"))
        for key in ("activation",):
            if key in config and config[key] is None:
                config[key] = keras.activations.serialize(getattr(layer, key))
        specs.append({"class": type(layer).__name__, "config": config})
    compiled = None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        options = _plain(optimizer.get_config())
        options["learning_rate"] = float(optimizer.learning_rate)
        loss = model.loss
        if isinstance(loss, str):
            loss_spec: Any = loss
        elif isinstance(loss, keras.losses.Loss):
            loss_spec = {
                "class": type(loss).__name__,
                "config": _plain(loss.get_config()),
            }
        elif callable(loss):
            loss_spec = str(getattr(loss, "__name__", "custom"))
        else:
            loss_spec = None
        metrics = []
        compile_config = model.get_compile_config() or {}
        for metric in compile_config.get("metrics") or []:
            if isinstance(metric, str):
                metrics.append(metric)
            elif isinstance(metric, dict):
                metrics.append({"class": str(metric.get("class_name"))})
        compiled = {
            "optimizer": {"class": type(optimizer).__name__, "config": options},
            "loss": loss_spec,
            "metrics": metrics,
        }
    return {
        "name": str(model.name),
        "input_shape": input_shape,
        "input_dtype": input_dtype,
        "layers": specs,
        "weights": [encoder.blob(w) for w in model.get_weights()],
        "compile": compiled,
    }


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise BridgeError(f"model spec refused: {what}")


def _number(value: Any, low: float, high: float, what: str) -> float:
    _check(
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and low <= value <= high,
        what,
    )
    return float(value)


def _count(value: Any, what: str, high: int = MAX_UNITS) -> int:
    _check(type(value) is int and 1 <= value <= high, what)
    return int(value)


def _ints(value: Any, n: int, what: str) -> tuple[int, ...]:
    if type(value) is int:
        value = [value] * n
    _check(
        isinstance(value, list)
        and len(value) == n
        and all(type(v) is int and 1 <= v <= 1000 for v in value),
        what,
    )
    return tuple(value)


def _activation(value: Any) -> str:
    _check(value in _ACTIVATIONS, f"activation {value!r} is not a Keras built-in")
    return str(value)


def _regularizer(value: Any) -> Any:
    import keras

    if value is None:
        return None
    _check(isinstance(value, dict), "regularizer")
    name, config = value.get("class_name"), value.get("config")
    _check(name in ("L1", "L2", "L1L2") and isinstance(config, dict), "regularizer")
    factors = {
        k: _number(config.get(k, 0.0), 0, 1e3, "regularizer factor")
        for k in ("l1", "l2")
        if k in config or name == "L1L2"
    }
    return getattr(keras.regularizers, name)(**factors)


def _layer(spec: Any) -> Any:
    """Build one allow-listed layer from its spec, every config value checked."""
    import keras

    _check(isinstance(spec, dict) and isinstance(spec.get("config"), dict), "layer")
    kind, config = spec.get("class"), spec["config"]
    common: dict[str, Any] = {}
    name = config.get("name")
    if name is not None:
        _check(isinstance(name, str) and bool(_NAME.match(name)), "layer name")
        common["name"] = name
    if config.get("dtype") is not None:
        _check(config["dtype"] in _POLICIES, "layer dtype")
        common["dtype"] = config["dtype"]
    # every rebuilt layer is trainable: a test that trains the model must be able to
    # (frozen pretrained weights would otherwise pass a "train this" test untouched)
    _check(type(config.get("trainable", True)) is bool, "trainable")
    seed = config.get("seed")
    _check(seed is None or type(seed) is int, "seed")
    layers = keras.layers
    if kind == "Flatten":
        return layers.Flatten(**common)
    if kind in ("Dense", "Conv2D"):
        use_bias = config.get("use_bias", True)
        _check(type(use_bias) is bool, "use_bias")
        options = {
            "activation": _activation(config.get("activation", "linear")),
            "use_bias": use_bias,
            "kernel_regularizer": _regularizer(config.get("kernel_regularizer")),
            "bias_regularizer": _regularizer(config.get("bias_regularizer")),
            "activity_regularizer": _regularizer(config.get("activity_regularizer")),
        }
        if kind == "Dense":
            return layers.Dense(
                _count(config.get("units"), "units"), **options, **common
            )
        _check(config.get("padding", "valid") in ("valid", "same"), "padding")
        return layers.Conv2D(
            _count(config.get("filters"), "filters"),
            _ints(config.get("kernel_size"), 2, "kernel_size"),
            strides=_ints(config.get("strides", 1), 2, "strides"),
            padding=config.get("padding", "valid"),
            **options,
            **common,
        )
    if kind == "MaxPooling2D":
        _check(config.get("padding", "valid") in ("valid", "same"), "padding")
        strides = config.get("strides")
        return layers.MaxPooling2D(
            _ints(config.get("pool_size", 2), 2, "pool_size"),
            strides=None if strides is None else _ints(strides, 2, "strides"),
            padding=config.get("padding", "valid"),
            **common,
        )
    if kind == "Dropout":
        rate = _number(config.get("rate"), 0, 0.999999, "dropout rate")
        return layers.Dropout(rate, seed=seed, **common)
    if kind == "GaussianNoise":
        return layers.GaussianNoise(
            _number(config.get("stddev"), 0, 1e3, "stddev"), seed=seed, **common
        )
    if kind == "Rescaling":
        return layers.Rescaling(
            _number(config.get("scale"), -1e6, 1e6, "scale"),
            _number(config.get("offset", 0.0), -1e6, 1e6, "offset"),
            **common,
        )
    if kind == "Reshape":
        shape = config.get("target_shape")
        _check(
            isinstance(shape, list)
            and 0 < len(shape) <= 4
            and all(type(n) is int and (n == -1 or 1 <= n <= 100_000) for n in shape),
            "target_shape",
        )
        return layers.Reshape(tuple(shape), **common)
    if kind == "Activation":
        return layers.Activation(_activation(config.get("activation")), **common)
    if kind == "BatchNormalization":
        return layers.BatchNormalization(
            axis=-1,
            momentum=_number(config.get("momentum", 0.99), 0, 1, "momentum"),
            epsilon=_number(config.get("epsilon", 1e-3), 0, 1, "epsilon"),
            **common,
        )
    raise BridgeError(
        f"model spec refused: layer {str(kind)[:60]!r} is not one the grader rebuilds"
    )


def _parameters(layer: Any, shape: tuple[Any, ...]) -> int:
    """The parameters ``layer`` will create on input ``shape``, before building it."""
    kind = type(layer).__name__
    channels = shape[-1] if shape and isinstance(shape[-1], int) else 0
    if kind == "Dense":
        return channels * layer.units + layer.units * layer.use_bias
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return kh * kw * channels * layer.filters + layer.filters * layer.use_bias
    if kind == "BatchNormalization":
        return 4 * channels
    return 0


def _check_unbuilt(layers: list[Any]) -> None:
    """Bound the weights a model without an input shape will create when called.

    Its first layer gets the test's own data; every later size is fixed by the
    spec, so the sum of consecutive layer widths' products bounds the rest.
    """
    kinds = [type(layer).__name__ for layer in layers]
    if kinds[:1] == ["Flatten"]:
        kinds = kinds[1:]
    _check(
        all(kind in _FLAT_LAYERS for kind in kinds),
        "a model without an input shape may only hold Dense, Dropout, Activation, "
        "Rescaling, GaussianNoise and BatchNormalization layers after an optional "
        "first Flatten; start it with keras.Input(shape=...)",
    )
    units = [layer.units for layer in layers if type(layer).__name__ == "Dense"]
    total = sum(a * b for a, b in itertools.pairwise(units))
    _check(total <= MAX_PARAMS, f"{total} parameters is too many")


def _compile(model: Any, spec: Any) -> None:
    import keras

    _check(isinstance(spec, dict), "compile")
    optimizer = spec.get("optimizer")
    _check(isinstance(optimizer, dict), "optimizer")
    kind, config = optimizer.get("class"), optimizer.get("config")
    _check(kind in _OPTIMIZERS and isinstance(config, dict), f"optimizer {kind!r}")
    options = {"learning_rate": _number(config.get("learning_rate"), 0, 1e3, "lr")}
    for key in _OPTIMIZERS[kind]:
        value = config.get(key)
        if type(value) is bool:
            options[key] = value
        elif value is not None:
            options[key] = _number(value, 0, 1e3, key)
    loss = spec.get("loss")
    if isinstance(loss, dict):
        loss_class, loss_config = loss.get("class"), loss.get("config")
        _check(loss_class in _LOSS_CLASSES and isinstance(loss_config, dict), "loss")
        loss_options = {}
        for key in _LOSS_CLASSES[loss_class]:
            value = loss_config.get(key)
            if type(value) is bool or (key == "ignore_class" and type(value) is int):
                loss_options[key] = value
            elif isinstance(value, float):
                loss_options[key] = _number(value, 0, 1, key)
        loss = getattr(keras.losses, loss_class)(**loss_options)
    else:
        _check(loss is None or loss in _LOSS_NAMES, f"loss {loss!r}")
    metrics = []
    for metric in spec.get("metrics") or []:
        if isinstance(metric, dict):
            metric = _METRIC_CLASSES.get(metric.get("class"))
        _check(metric in _METRICS, f"metric {metric!r}")
        metrics.append(metric)
    model.compile(
        optimizer=getattr(keras.optimizers, kind)(**options),
        loss=loss,
        metrics=metrics,
    )


def build_model(spec: Any, arrays: list[Any]) -> Any:
    """Rebuild a model from its spec with this kernel's own Keras (strict checks)."""
    import keras

    _check(isinstance(spec, dict) and isinstance(spec.get("layers"), list), "spec")
    _check(len(spec["layers"]) <= 100, "too many layers")
    layers = [_layer(layer) for layer in spec["layers"]]
    name = spec.get("name")
    _check(name is None or (isinstance(name, str) and bool(_NAME.match(name))), "name")
    shape = spec.get("input_shape")
    inputs = []
    if shape is not None:
        _check(
            isinstance(shape, list)
            and 1 < len(shape) <= 5
            and shape[0] is None
            and all(type(n) is int and 1 <= n <= 100_000 for n in shape[1:])
            and math.prod(shape[1:]) <= 10_000_000,
            "input shape",
        )
        dtype = spec.get("input_dtype") or "float32"
        _check(dtype in _DTYPES, "input dtype")
        current = tuple(shape)
        total = 0
        for layer in layers:
            total += _parameters(layer, current)
            current = tuple(layer.compute_output_shape(current))
        _check(total <= MAX_PARAMS, f"{total} parameters is too many")
        _check(
            total == sum(int(a.size) for a in arrays),
            "its weights do not match its layers",
        )
        inputs = [keras.Input(shape=tuple(shape[1:]), dtype=dtype)]
    else:
        _check(not arrays, "weights of an unbuilt model")
        _check_unbuilt(layers)
    model = keras.Sequential([*inputs, *layers], name=name)
    if arrays:
        try:
            model.set_weights(arrays)
        except Exception as error:
            raise BridgeError(f"model spec refused: weights ({error})") from None
    if spec.get("compile") is not None:
        _compile(model, spec["compile"])
    return model


class History:
    """What crosses for a Keras ``History``: ``history``, ``params`` and ``epoch``."""

    def __init__(self, history: dict[str, list[float]], params: dict, epoch: list):
        self.history = history
        self.params = params
        self.epoch = epoch
        self.model = None

    def __repr__(self) -> str:
        return f"<History of {len(self.epoch)} epochs: {sorted(self.history)}>"


# --- decoding ------------------------------------------------------------------------


class Decoder:
    """Rebuild a value from a JSON tree and blobs, trusting nothing in them.

    ``resolve(handle, name)`` turns a function handle into a callable.
    """

    def __init__(self, blobs: list[bytearray], resolve: Any) -> None:
        self.blobs = blobs
        self.resolve = resolve
        self.nodes = 0

    def array(self, index: Any) -> Any:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise BridgeError("bad array reference")
        return _array(self.blobs[index])

    def decode(self, node: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise BridgeError("too deeply nested or too many items")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict or len(node) not in (1, 2):
            raise BridgeError(f"unexpected {type(node).__name__} in the data")
        if "array" in node and len(node) == 1:
            return self.array(node["array"])
        if "scalar" in node and len(node) == 1:
            value = self.array(node["scalar"])
            if value.ndim != 0:
                raise BridgeError("a scalar must have no dimensions")
            return value[()]
        if "list" in node and type(node["list"]) is list:
            return [self.decode(item, depth + 1) for item in node["list"]]
        if "tuple" in node and type(node["tuple"]) is list:
            return tuple(self.decode(item, depth + 1) for item in node["tuple"])
        if "dict" in node and type(node["dict"]) is list:
            result = {}
            for pair in node["dict"]:
                if type(pair) is not list or len(pair) != 2:
                    raise BridgeError("bad dict item")
                key = self.decode(pair[0], depth + 1)
                if not _hashable(key):
                    raise BridgeError("bad dict key")
                result[key] = self.decode(pair[1], depth + 1)
            return result
        if "function" in node:
            handle, name = node["function"], node.get("name", "function")
            if type(handle) is not int or type(name) is not str:
                raise BridgeError("bad function reference")
            return self.resolve(handle, name[:100])
        if "model" in node and len(node) == 1:
            spec = node["model"]
            _check(isinstance(spec, dict) and isinstance(spec.get("weights"), list), "")
            arrays = [self.array(i) for i in spec["weights"]]
            return build_model(spec, arrays)
        if "history" in node and type(node["history"]) is dict:
            return self.history(node["history"], depth)
        if "module" in node and len(node) == 1:
            return _module(node["module"])
        raise BridgeError("unknown kind of data")

    def history(self, node: dict[str, Any], depth: int) -> History:
        history = self.decode(node.get("history"), depth + 1)
        params = self.decode(node.get("params"), depth + 1)
        epoch = node.get("epoch")
        if not (
            isinstance(history, dict)
            and all(
                isinstance(k, str)
                and isinstance(v, list)
                and all(type(x) is float for x in v)
                for k, v in history.items()
            )
            and isinstance(params, dict)
            and isinstance(epoch, list)
            and all(type(e) is int for e in epoch)
        ):
            raise BridgeError("bad History")
        return History(history, params, epoch)


def _module(name: Any) -> types.ModuleType:
    """This kernel's own copy of an allow-listed module the student imported."""
    import importlib

    if not (
        isinstance(name, str)
        and (name in MODULES or name.split(".")[0] in PACKAGES)
        and all(part.isidentifier() for part in name.split("."))
    ):
        raise BridgeError(f"module {str(name)[:80]!r} is not one the grader imports")
    return importlib.import_module(name)


def _hashable(key: Any) -> bool:
    if key is None or type(key) in (bool, int, float, str):
        return True
    return type(key) is tuple and all(_hashable(k) for k in key)


# --- K_tests side --------------------------------------------------------------------


class StudentFunction:
    """A student's function, called in K_student with data arguments (K_tests side)."""

    def __init__(self, bridge: TestSide, handle: int, name: str) -> None:
        self._bridge = bridge
        self.handle = handle
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._bridge.call(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (runs in the student's kernel)>"


_BUILTIN_ERRORS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}


class TestSide:
    """K_tests' end: asks K_student for names and calls, with time limits.

    It listens on ``path`` for the whole run and takes one connection per cell
    (:meth:`begin`), so a late answer to a call that timed out can never be read as
    the answer to a later one.
    """

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.sock: socket.socket | None = None
        self.next_id = 0
        self.deadline = time.monotonic()
        self.gone: str | None = None
        self.problems: dict[str, str] = {}

    def begin(
        self, names: list[str], namespace: dict, timeout: float, gone: str
    ) -> None:
        """Start a cell: connect to K_student, bind ``names`` into ``namespace``.

        ``gone`` is the grader's reason K_student cannot answer ("" when it can; it
        is then running :func:`serve`). A name K_student does not have, or cannot
        send, is removed from ``namespace``; :meth:`problems_text` says why.
        """
        self.deadline = time.monotonic() + timeout
        self.problems = {}
        self.gone = gone or None
        if self.gone is None:
            self.listener.settimeout(min(timeout, 10.0))
            try:
                self.sock, _ = self.listener.accept()
            except OSError:
                self.gone = "the student's kernel did not connect"
        values: dict[str, Any] = {}
        if names and self.gone is None:
            with contextlib.suppress(BridgeError):
                values = self._values(names)
        for name in names:
            if name in values:
                namespace[name] = values[name]
            else:
                namespace.pop(name, None)
                if self.gone is not None:
                    self.problems.setdefault(name, self.gone)

    def _values(self, names: list[str]) -> dict[str, Any]:
        header, blobs = self._ask({"op": "get", "names": names})
        found = header.get("values")
        if not isinstance(found, dict):
            raise self._lost("it sent a malformed answer")
        values = {}
        decoder = Decoder(blobs, self._proxy)
        for name in names:
            node = found.get(name)
            if isinstance(node, dict) and "missing" in node:
                continue
            if isinstance(node, dict) and "error" in node:
                self.problems[name] = str(node["error"])[:300]
                continue
            try:
                values[name] = decoder.decode(node)
            except BridgeError as error:
                self.problems[name] = f"{name} cannot be graded: {error}"
        return values

    def problems_text(self) -> str:
        """Why names were not brought over, one line each."""
        return "\n".join(f"{k}: {v}" for k, v in sorted(self.problems.items()))

    def _proxy(self, handle: int, name: str) -> StudentFunction:
        return StudentFunction(self, handle, name)

    def _lost(self, why: str) -> BridgeError:
        self.gone = f"the student's kernel {why}"
        self.end()
        return BridgeError(self.gone)

    def _ask(self, request: dict[str, Any], blobs: list[Blob] = ()) -> Any:
        if self.gone is not None or self.sock is None:
            raise BridgeError(self.gone or "the student's kernel is not connected")
        self.next_id += 1
        request = {**request, "id": self.next_id}
        try:
            send(self.sock, request, list(blobs))
            header, answer = receive(self.sock, self.deadline)
        except TimeoutError:
            raise self._lost("did not answer in time") from None
        except (BridgeError, OSError) as error:
            raise self._lost(f"stopped answering ({error})") from None
        if header.get("id") != self.next_id:
            raise self._lost("answered out of turn")
        return header, answer

    def call(self, function: StudentFunction, args: tuple, kwargs: dict) -> Any:
        """Run ``function`` in K_student on copies of ``args``; return its result."""
        encoder = Encoder()
        try:
            node = encoder.encode({"args": list(args), "kwargs": dict(kwargs)})
        except Unsupported as error:
            raise TypeError(f"{function.__name__}: {error}") from None
        try:
            header, blobs = self._ask(
                {"op": "call", "handle": function.handle, "data": node}, encoder.blobs
            )
        except BridgeError as error:
            if "in time" in str(error):
                raise TimeoutError(
                    f"your function {function.__name__} did not return in time"
                ) from None
            raise BridgeError(f"calling {function.__name__}: {error}") from None
        error = header.get("error")
        if isinstance(error, dict):
            kind = _BUILTIN_ERRORS.get(str(error.get("type")), RuntimeError)
            raise kind(
                f"in your function {function.__name__}: "
                f"{str(error.get('type'))[:60]}: {str(error.get('message'))[:500]}"
            )
        decoder = Decoder(blobs, self._proxy)
        try:
            result = decoder.decode(header.get("result"))
        except BridgeError as error:
            raise BridgeError(f"{function.__name__} returned {error}") from None
        # whatever else the reply holds is ignored: nothing K_student sends is ever
        # written into K_tests' objects (the arguments were sent as copies)
        return result

    def end(self) -> None:
        """End the cell: tell K_student (its :func:`serve` returns) and disconnect."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                send(self.sock, {"op": "done"}, [])
            self.sock.close()
            self.sock = None


# --- K_student side ------------------------------------------------------------------

_handles: dict[int, Any] = {}
_ids: dict[int, int] = {}


def _register(function: Any) -> int:
    handle = _ids.get(id(function))
    if handle is None or _handles.get(handle) is not function:
        handle = len(_handles) + 1
        _handles[handle] = function
        _ids[id(function)] = handle
    return handle


def _resolve(handle: int, name: str) -> Any:
    if handle not in _handles:
        raise BridgeError(f"unknown function {name}")
    return _handles[handle]


def serve(path: str, namespace: dict) -> None:
    """K_student's end: connect to K_tests, answer until ``done`` or disconnection."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        while True:
            try:
                request, blobs = receive(sock, None)
            except BridgeError:
                return
            op = request.get("op")
            if op == "done":
                return
            try:
                if op == "get":
                    header, out = _get(request.get("names") or [], namespace)
                elif op == "call":
                    header, out = _call(request, blobs)
                else:
                    header, out = _error(ValueError(f"unknown request {op!r}")), []
            except BaseException as error:  # the student's code may raise anything
                header, out = _error(error), []
            header["id"] = request.get("id")
            try:
                send(sock, header, out)
            except OSError:
                return
    finally:
        sock.close()


def _get(names: list[str], namespace: dict) -> tuple[dict, list[Blob]]:
    encoder = Encoder(_register)
    values: dict[str, Any] = {}
    for name in names:
        if not isinstance(name, str) or name not in namespace:
            values[str(name)] = {"missing": True}
            continue
        mark = len(encoder.blobs)
        try:
            values[name] = encoder.encode(namespace[name])
        except Exception as error:
            del encoder.blobs[mark:]
            values[name] = {"error": f"{name} cannot be graded: {error}"}
    return {"values": values}, encoder.blobs


def _call(request: dict, blobs: list[bytearray]) -> tuple[dict, list[Blob]]:
    """Run a function on the decoded copies of the test's arguments: only its result
    goes back (what it does to its arguments stays in this kernel)."""
    function = _resolve(request.get("handle"), "function")
    data = Decoder(blobs, _resolve).decode(request.get("data"))
    result = function(*data["args"], **data["kwargs"])
    encoder = Encoder(_register)
    return {"result": encoder.encode(result)}, encoder.blobs


def _error(error: BaseException) -> dict[str, Any]:
    lines = traceback.format_exception_only(type(error), error)
    return {
        "error": {
            "type": type(error).__name__,
            "message": str(error)[:2000],
            "text": "".join(lines)[-2000:],
        }
    }
