"""course_utils.plots: each figure shows what its docstring promises."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def digits(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_show_digits_draws_each_digit_with_its_label() -> None:
    images = digits(12)
    fig = plots.show_digits(images, list(range(12)), n_cols=5, title="Twelve digits")
    assert len(fig.axes) == 12  # the three spare cells of the 3×5 grid are removed
    assert [ax.get_title() for ax in fig.axes] == [str(i) for i in range(12)]
    np.testing.assert_array_equal(fig.axes[7].images[0].get_array(), images[7])
    assert fig.axes[0].images[0].get_cmap().name == plots.DIGIT_CMAP
    assert fig.axes[0].get_xticks().size == 0 and fig.axes[0].get_yticks().size == 0
    assert fig._suptitle.get_text() == "Twelve digits"


def test_show_digits_titles_mistakes_with_prediction_and_confidence() -> None:
    fig = plots.show_digits(digits(2), [4, 7], predicted=[9, 1], confidence=[0.87, 0.5])
    assert [ax.get_title() for ax in fig.axes] == [
        "true 4\npredicted 9\n87%",
        "true 7\npredicted 1\n50%",
    ]


def test_show_digits_leaves_room_for_longer_titles() -> None:
    labels_only = plots.show_digits(digits(20), list(range(20)))
    mistakes = plots.show_digits(
        digits(20), list(range(20)), predicted=[0] * 20, confidence=[0.5] * 20
    )
    assert labels_only.get_size_inches()[1] < mistakes.get_size_inches()[1]


def title_boxes_overlap(fig) -> list[tuple[str, str]]:
    """The pairs of texts (titles, or a title and a digit) that overlap when drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes] + [fig._suptitle]
    boxes = {
        repr(t.get_text()): t.get_window_extent(renderer)
        for t in titles
        if t is not None and t.get_text()
    }
    boxes |= {
        f"digit {i}": ax.get_window_extent(renderer) for i, ax in enumerate(fig.axes)
    }
    names = list(boxes)
    return [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if not (a.startswith("digit") and b.startswith("digit"))
        and boxes[a].overlaps(boxes[b])
    ]


@pytest.mark.parametrize(("n", "n_cols"), [(10, 10), (20, 10), (12, 5), (3, 10)])
def test_show_digits_mistake_titles_overlap_nothing(n: int, n_cols: int) -> None:
    fig = plots.show_digits(
        digits(n),
        [7] * n,
        predicted=[2] * n,
        confidence=[0.99] * n,
        n_cols=n_cols,
        title="The 10 most confident of the 250 mistakes, sorted by confidence",
    )
    assert title_boxes_overlap(fig) == []
    canvas = fig.bbox
    suptitle = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert canvas.x0 <= suptitle.x0 and suptitle.x1 <= canvas.x1  # not cut off


def test_overlap_check_sees_titles_that_overlap() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(1.5, 1.5))
    left.set_title("a title far too long for its narrow axes")
    right.set_title("another")
    assert title_boxes_overlap(fig) != []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": [1, 2]}, "got 3 images but 2 labels"),
        ({"labels": [1, 2, 3], "predicted": [1]}, "got 3 images but 1 predicted"),
        ({"labels": [1, 2, 3], "confidence": [1, 1, 1]}, "confidence needs predicted"),
    ],
)
def test_show_digits_refuses_mismatched_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.show_digits(digits(3), **kwargs)


def test_show_digits_refuses_flat_images_and_empty_batches() -> None:
    with pytest.raises(ValueError, match=r"reshape with x.reshape\(-1, 28, 28\)"):
        plots.show_digits(digits(3).reshape(3, 784), [1, 2, 3])
    with pytest.raises(ValueError, match="no images to show"):
        plots.show_digits(digits(0), [])


def test_plot_history_draws_training_and_validation_per_metric() -> None:
    history = {
        "loss": [0.5, 0.3, 0.2],
        "val_loss": [0.4, 0.35, 0.38],
        "accuracy": [0.8, 0.9, 0.95],
    }
    fig = plots.plot_history(history, title="Validation loss rises after epoch 2")
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["training", "validation"]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), history["val_loss"])
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])
    assert [line.get_label() for line in acc_ax.lines] == ["training"]
    assert (loss_ax.get_xlabel(), acc_ax.get_ylabel()) == ("epoch", "accuracy")
    assert fig._suptitle.get_text() == "Validation loss rises after epoch 2"


def test_plot_history_accepts_a_single_metric_and_names_missing_ones() -> None:
    fig = plots.plot_history({"loss": [1.0, 0.5]}, metrics=["loss"])
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match=r"history has no \['accuracy'\]"):
        plots.plot_history({"loss": [1.0]})


def test_plot_probabilities_shows_digit_and_stem_of_ten_probabilities() -> None:
    probs = np.full(10, 0.02)
    probs[3] = 0.82
    fig = plots.plot_probabilities(digits(1)[0], probs, label=3)
    image_ax, probs_ax = fig.axes
    assert image_ax.get_title() == "label 3"
    assert fig._suptitle.get_text() == "Predicted 3 with probability 0.82"
    stem = probs_ax.containers[0]
    np.testing.assert_allclose(stem.markerline.get_ydata(), probs)
    assert (probs_ax.get_xlabel(), probs_ax.get_ylabel()) == ("class", "probability")


def test_plot_probabilities_refuses_wrong_sizes() -> None:
    with pytest.raises(
        ValueError, match=r"expected 10 probabilities, got shape \(9,\)"
    ):
        plots.plot_probabilities(digits(1)[0], np.full(9, 0.1))
    with pytest.raises(ValueError, match="expected images of shape"):
        plots.plot_probabilities(np.zeros(784), np.full(10, 0.1))


def test_confusion_matrix_shows_counts_with_true_rows_and_predicted_columns() -> None:
    matrix = np.eye(10, dtype=int) * 100
    matrix[4, 9] = 7
    fig = plots.plot_confusion_matrix(matrix, title="Fours taken for nines")
    ax = fig.axes[0]
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert ((9, 4), "7") in texts and ((0, 0), "100") in texts
    assert len(ax.texts) == 11  # zero cells are left blank
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert ax.get_title() == "Fours taken for nines"
    np.testing.assert_allclose(ax.images[0].get_array(), np.log10(matrix + 1))


def test_confusion_matrix_must_be_square() -> None:
    with pytest.raises(
        ValueError, match=r"expected a square matrix, got shape \(2, 3\)"
    ):
        plots.plot_confusion_matrix(np.zeros((2, 3)))
