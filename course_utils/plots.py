"""Figures that more than one lesson draws.

Every function returns the matplotlib ``Figure`` it made, so a test (or a student) can
look inside it. In a notebook, end the cell with ``;`` or assign the result, otherwise
Jupyter shows the figure twice.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course_utils.data import check_images

DIGIT_CMAP = "gray_r"
"""Every digit in the course is drawn dark on light, with this colour map."""


def show_digits(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    predicted: Sequence[int] | np.ndarray | None = None,
    confidence: Sequence[float] | np.ndarray | None = None,
    n_cols: int = 10,
    title: str | None = None,
) -> Figure:
    """Draw digits in a grid, each titled with its label (and prediction).

    Without ``predicted`` each title is the true label. With it, each title reads
    ``true 4`` over ``predicted 9`` and, with ``confidence``, the probability of the
    predicted class below.

    Parameters
    ----------
    images
        Shape (n, 28, 28), any numeric dtype.
    labels
        The n true labels.
    predicted
        Optional n predicted labels.
    confidence
        Optional n probabilities of the predicted labels, in [0, 1].
    n_cols
        Digits per row.
    title
        Title of the whole figure.

    Returns
    -------
    Figure
        One axes per digit, without ticks.

    Raises
    ------
    ValueError
        When the images are not (n, 28, 28) or the other arguments do not have n items.

    Example
    -------
    >>> fig = show_digits(np.zeros((3, 28, 28)), [1, 2, 3])
    >>> [ax.get_title() for ax in fig.axes]
    ['1', '2', '3']
    """
    check_images(images)
    n = len(images)
    for name, values in (
        ("labels", labels),
        ("predicted", predicted),
        ("confidence", confidence),
    ):
        if values is not None and len(values) != n:
            raise ValueError(f"got {n} images but {len(values)} {name}; pass one each")
    if confidence is not None and predicted is None:
        raise ValueError("confidence needs predicted: pass the predicted labels too")
    if n == 0:
        raise ValueError("no images to show; pass at least one image")
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    title_lines = 1 + (predicted is not None) + (confidence is not None)
    width = 1.2 * n_cols
    if title:
        # Wrap a long figure title to the grid's width, so that it never runs off a
        # narrow grid; each of its lines takes a strip of the figure's height.
        title = "\n".join(textwrap.wrap(title, width=max(int(width / 0.11), 12)))
    title_height = 0.3 * (title.count("\n") + 1) if title else 0.0
    row_height = 1.25 + 0.2 * title_lines  # room for each row's titles
    # The constrained layout sizes the figure title, the digits' titles and the digits
    # together, so that no title overlaps another or a digit.
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(width, row_height * n_rows + title_height),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        if i >= n:
            fig.delaxes(ax)
            continue
        ax.imshow(images[i], cmap=DIGIT_CMAP)
        ax.set_xticks([])
        ax.set_yticks([])
        text = f"{labels[i]}"
        if predicted is not None:
            text = f"true {labels[i]}\npredicted {predicted[i]}"
            if confidence is not None:
                text += f"\n{confidence[i]:.0%}"
        ax.set_title(text, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_history(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] = ("loss", "accuracy"),
    *,
    title: str | None = None,
) -> Figure:
    """Plot training curves per epoch, one panel per metric.

    Each panel shows the training values and, when present, the validation values
    (``val_<metric>``), against epochs counted from 1.

    Parameters
    ----------
    history
        ``History.history`` from ``model.fit``, or any mapping of metric to values.
    metrics
        The metrics to draw, one panel each.
    title
        Title of the whole figure.

    Returns
    -------
    Figure
        One axes per metric, with epoch on x.

    Raises
    ------
    ValueError
        When a metric is not in the history.

    Example
    -------
    >>> fig = plot_history({"loss": [0.3, 0.2], "accuracy": [0.9, 0.95]})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    missing = [m for m in metrics if m not in history]
    if missing:
        raise ValueError(
            f"history has no {missing}; it has {sorted(history)}. Pass metrics= with "
            "names from model.compile(metrics=...)"
        )
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        values = history[metric]
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_probabilities(
    image: np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    *,
    label: int | None = None,
    title: str | None = None,
) -> Figure:
    """Show one digit beside a stem plot of the 10 class probabilities.

    Parameters
    ----------
    image
        One digit, shape (28, 28).
    probabilities
        The 10 probabilities the network gives for it.
    label
        The true label, shown in the digit's title.
    title
        Title of the whole figure; by default it names the prediction.

    Returns
    -------
    Figure
        Two axes: the digit, and probability per class.

    Raises
    ------
    ValueError
        When the image is not 28×28 or there are not 10 probabilities.

    Example
    -------
    >>> fig = plot_probabilities(np.zeros((28, 28)), np.full(10, 0.1), label=3)
    >>> fig.axes[1].get_xlabel()
    'class'
    """
    image = np.asarray(image)
    probabilities = np.asarray(probabilities, dtype=float)
    check_images(image[None])
    if probabilities.shape != (10,):
        raise ValueError(
            f"expected 10 probabilities, got shape {probabilities.shape}; pass one row "
            "of model.predict(...), e.g. probs[0]"
        )
    predicted = int(np.argmax(probabilities))
    fig, (ax_image, ax_probs) = plt.subplots(
        1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [1, 2]}
    )
    ax_image.imshow(image, cmap=DIGIT_CMAP)
    ax_image.set_xticks([])
    ax_image.set_yticks([])
    ax_image.set_title("the image" if label is None else f"label {label}")
    ax_probs.stem(np.arange(10), probabilities)
    ax_probs.set_xticks(np.arange(10))
    ax_probs.set_ylim(0, 1.05)
    ax_probs.set_xlabel("class")
    ax_probs.set_ylabel("probability")
    ax_probs.grid(alpha=0.3)
    confidence = probabilities[predicted]
    fig.suptitle(title or f"Predicted {predicted} with probability {confidence:.2f}")
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    matrix: np.ndarray, *, title: str = "Confusion matrix"
) -> Figure:
    """Draw a 10×10 confusion matrix with its counts.

    Row ``i``, column ``j`` counts the images of true class ``i`` predicted as ``j``.
    The colour scale is logarithmic so that the few mistakes stay visible beside the
    thousand correct answers on the diagonal.

    Parameters
    ----------
    matrix
        Square array of non-negative counts.
    title
        Title of the figure.

    Returns
    -------
    Figure
        One axes with the matrix, true class on y and predicted class on x.

    Raises
    ------
    ValueError
        When the matrix is not square.

    Example
    -------
    >>> fig = plot_confusion_matrix(np.eye(10, dtype=int) * 100)
    >>> fig.axes[0].get_ylabel()
    'true class'
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"expected a square matrix, got shape {matrix.shape}; build it with "
            "np.bincount(true * 10 + predicted, minlength=100).reshape(10, 10)"
        )
    n = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(np.log10(matrix + 1), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                dark = image.norm(np.log10(matrix[i, j] + 1)) > 0.6
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log10(count + 1)")
    fig.tight_layout()
    return fig
