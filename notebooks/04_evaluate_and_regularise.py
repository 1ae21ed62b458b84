# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4 · Evaluation and overfitting
#
# Lesson 3 trained the course's network to about 97.5% test accuracy. One number
# hides a lot: which digits does the network confuse, how sure is it when it is wrong,
# and would more training help or hurt? In this lesson you take the trained network
# apart on the test set, watch a network **overfit**, measure three remedies, and push
# a fully connected network as far as it goes.
#
# **What you'll learn**
#
# - how to read a network's probabilities, its confusion matrix and its mistakes;
# - what overfitting is, and how a validation split and learning curves show it;
# - what early stopping and dropout do, measured side by side;
# - how far a fully connected network gets on MNIST (98%), and what it cannot see.
#
# **What you need**
#
# - Lesson 3, *Loss and optimizer*: the training recipe and
#   `models.build_ann(rescale=True)`;
# - about 1 minute to run top to bottom (it trains five networks), and 40 minutes to
#   read;
# - about 1 GB of free memory, most of it for TensorFlow itself.
#
# **What you'll do**
#
# 1. Retrain the course's network.
# 2. Measure its test accuracy and look at one prediction.
# 3. Count its mistakes in a confusion matrix.
# 4. Look at the mistakes.
# 5. Watch a network overfit.
# 6. Measure two remedies: early stopping and dropout.
# 7. Push a fully connected network to 98%.
# 8. See what a fully connected network ignores.

# %% [markdown]
# ## 1. Retrain the course's network
#
# This lesson does not depend on lesson 3's kernel: it trains the course's network
# again, with the same recipe and seed, in a few seconds. Silence TensorFlow first,
# then import the rest.

# %%
from course_utils import repro

repro.quiet_tensorflow()

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, models, plots

# %% [markdown]
# Load the digits as `uint8`, and build the network as lesson 3 did (section 5.2) with
# `models.build_ann(rescale=True)`: a `Rescaling(1 / 255)` layer in front of the
# course's network, so that training works on the 47 MB of bytes.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist()


# %% [markdown]
# Train with the course's recipe: batches of `n_batch` = 32, `n_epoch` = 5 epochs,
# Adam, `steps_per_execution=100`.

# %%
n_batch = 32
n_epoch = 5

repro.set_seed(42)
model = models.build_ann(rescale=True)
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)
history = model.fit(train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %% [markdown]
# ## 2. Measure its test accuracy and look at one prediction
#
# ### 2.1 Evaluate on the test set
#
# The test images played no part in training, so the accuracy on them is the honest
# estimate of how the network does on digits it has never seen.

# %%
test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")

# %%
assert test_accuracy >= 0.97

# %% [markdown]
# ### 2.2 Look at one prediction
#
# `predict` gives the 10 probabilities for each of the 10,000 test images, in the
# order of `test_x` (in batches of 1000: without training, batches can be large). The
# predicted digit is the most probable one, and its probability is the network's
# confidence.

# %%
probs = model.predict(test_x, batch_size=1000, verbose=0)
predicted = probs.argmax(axis=1)
confidence = probs.max(axis=1)
print(probs.shape, predicted[:10], test_y[:10])

# %% [markdown]
# The accuracy from these predictions is the one `evaluate` reported:

# %%
np.testing.assert_allclose(np.mean(predicted == test_y), test_accuracy, atol=1e-6)

# %% [markdown]
# Pick a test image at random (with a seed, so it is the same one on every run) and
# look at all its probabilities.

# %%
rng = np.random.default_rng(7)
i = int(rng.integers(len(test_x)))
print(f"test image {i}: label {test_y[i]}, predicted {predicted[i]}")

# %%
# figure: a random test digit and the 10 probabilities the network gives it
fig = plots.plot_probabilities(test_x[i], probs[i], label=test_y[i])

# %% [markdown]
# Most images look like this one: one probability near 1, the nine others near 0.
# The interesting images are those where the network hesitates, or is wrong.

# %% [markdown]
# ## 3. Count its mistakes in a confusion matrix
#
# A **confusion matrix** counts, for each true digit (row) and each predicted digit
# (column), how many test images fall in that cell. The diagonal holds the correct
# answers, everything else is a mistake. Build it in one line: the pair (true,
# predicted) becomes the number `10 * true + predicted`, from 0 to 99, and
# `np.bincount` counts each number.

# %%
confusion = np.bincount(10 * test_y + predicted, minlength=100).reshape(10, 10)
print(confusion)

# %% [markdown]
# Every test image is counted once, and the diagonal is the accuracy again:

# %%
assert confusion.sum() == len(test_y)
np.testing.assert_allclose(np.trace(confusion) / len(test_y), test_accuracy, atol=1e-6)

# %% [markdown]
# ### 3.1 Find the most-confused pairs
#
# Set the diagonal to 0 and sort the remaining cells: the largest counts are the pairs
# of digits the network mixes up most.

# %%
mistakes = confusion.copy()
np.fill_diagonal(mistakes, 0)
order = np.argsort(mistakes, axis=None, kind="stable")[::-1][:5]
top_true, top_predicted = np.unravel_index(order, mistakes.shape)

print("true  predicted  count")
for t, p in zip(top_true, top_predicted, strict=True):
    print(f"{t:4d}  {p:9d}  {mistakes[t, p]:5d}")

# %%
# figure: the confusion matrix of the course's network on the test set
t, p = top_true[0], top_predicted[0]
fig = plots.plot_confusion_matrix(
    confusion,
    title=f"The most common mistake: {t} read as {p} ({mistakes[t, p]} times)",
)

# %% [markdown]
# The mistakes are not spread evenly: a handful of pairs of similar shapes take a
# large share of them.

# %%
n_wrong = mistakes.sum()
top_share = mistakes[top_true, top_predicted].sum() / n_wrong
print(f"{n_wrong} mistakes; the 5 pairs above make {top_share:.0%} of them")

# %% [markdown]
# ## 4. Look at the mistakes
#
# Show the 10 mistakes the network was **most sure** of: each title gives the true
# label, the prediction and its probability.

# %%
wrong = np.flatnonzero(predicted != test_y)
most_sure = wrong[np.argsort(confidence[wrong], kind="stable")[::-1][:10]]
print(
    f"{len(wrong)} mistakes; the 10 most confident have probability "
    f"{confidence[most_sure].min():.2f} or more"
)

# %%
# figure: the 10 test digits the network got wrong with the most confidence
fig = plots.show_digits(
    test_x[most_sure],
    test_y[most_sure],
    predicted=predicted[most_sure],
    confidence=confidence[most_sure],
    title=f"The 10 most confident of the {len(wrong)} mistakes",
)

# %% [markdown]
# Some of these are badly written, a few are arguably mislabelled, and some are plain
# errors of the network. A network that is wrong *and* sure is a reminder that a
# softmax probability is not a guarantee.

# %% [markdown]
# ## 5. Watch a network overfit
#
# ### 5.1 Compare training and test accuracy
#
# Measure the trained network on images it was trained on, as many as there are test
# images: the first 10,000 training images.

# %%
train_loss, train_accuracy = model.evaluate(
    train_x[:10_000], train_y[:10_000], verbose=0
)
print(f"training accuracy {train_accuracy:.2%}, test accuracy {test_accuracy:.2%}")
print(f"training loss {train_loss:.4f}, test loss {test_loss:.4f}")

# %%
assert train_accuracy > test_accuracy and train_loss < test_loss

# %% [markdown]
# The network does better on images it has seen. Part of what it learned is specific
# to the 60,000 training images, not to handwriting: it has started to **overfit**.
# Trained longer, it keeps improving on the training images while getting *worse* on
# new ones. To watch that happen you need images that training does not use and that
# are not the test set either, because the test set must stay untouched until the
# end.
#
# ### 5.2 Split off a validation set
#
# Keep the last 10,000 training images apart as a **validation set**. To see
# overfitting in seconds rather than minutes, train on a small part of the rest, the
# first 10,000 images, for 20 epochs: a network overfits sooner when it has fewer
# images to learn from. (With all 50,000 the same happens, after about 11 epochs of
# batches of 128.)

# %%
fit_x, fit_y = train_x[:10_000], train_y[:10_000]
val_x, val_y = train_x[50_000:], train_y[50_000:]
print(f"{len(fit_x)} images to train on, {len(val_x)} to validate on")

# %% [markdown]
# Free the course's network first: every model keeps memory until Keras forgets it.

# %%
del model
keras.backend.clear_session()

# %% [markdown]
# Write the training as a function, since section 6 repeats it with remedies. It
# returns the trained model and its history, with the validation loss and accuracy of
# every epoch.

# %%
n_epoch_long = 20


def train_on_subset(model, callbacks=()):
    """Train on fit_x for n_epoch_long epochs, validating on val_x every epoch."""
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=100,
    )
    history = model.fit(
        fit_x,
        fit_y,
        batch_size=n_batch,
        epochs=n_epoch_long,
        validation_data=(val_x, val_y),
        callbacks=list(callbacks),
        verbose=0,
    )
    return model, history


# %% [markdown]
# ### 5.3 Plot the learning curves
#
# Train the course's network this way (about 6,300 steps; the epoch lines are
# switched off, the plot below shows them).

# %%
repro.set_seed(42)
plain, plain_history = train_on_subset(models.build_ann(rescale=True))

# %%
val_loss = np.array(plain_history.history["val_loss"])
best_epoch = int(val_loss.argmin()) + 1
print(
    f"validation loss is lowest at epoch {best_epoch}: {val_loss.min():.4f}; "
    f"after epoch {n_epoch_long}: {val_loss[-1]:.4f}"
)

# %%
# figure: training and validation loss and accuracy per epoch
fig = plots.plot_history(
    plain_history.history,
    title=f"Validation loss is lowest at epoch {best_epoch}, then rises",
)

# %% [markdown]
# Read the two panels together:
#
# - the **training** loss falls in every epoch: the network fits its 10,000 images
#   better and better;
# - the **validation** loss falls until epoch `best_epoch`, then rises: after that,
#   what the network learns helps on its training images only. That is overfitting.
#
# Check that it rises, and that the training loss does not:

# %%
train_loss_curve = np.array(plain_history.history["loss"])
assert val_loss[-1] > val_loss.min()
assert np.all(np.diff(train_loss_curve) < 0)

# %% [markdown]
# ## 6. Measure two remedies: early stopping and dropout
#
# ### 6.1 Stop early
#
# If the validation loss rises after some epoch, stop there. Keras's
# `EarlyStopping` callback watches `val_loss`, stops when it has not improved for
# `patience` epochs, and with `restore_best_weights=True` puts back the weights of the
# best epoch. Train the same network again, from the same seed:

# %%
stop_early = keras.callbacks.EarlyStopping(
    monitor="val_loss", patience=3, restore_best_weights=True
)
repro.set_seed(42)
stopped, stopped_history = train_on_subset(models.build_ann(rescale=True), [stop_early])
n_stopped = len(stopped_history.history["val_loss"])
print(f"stopped after epoch {n_stopped}, kept the weights of epoch {best_epoch}")

# %% [markdown]
# Same seed, same batches: it follows the first run epoch for epoch, and stops
# `patience` epochs after the best one.

# %%
np.testing.assert_allclose(
    stopped_history.history["val_loss"], val_loss[:n_stopped], rtol=1e-5
)
assert n_stopped == best_epoch + 3

# %% [markdown]
# ### 6.2 Drop units at random
#
# **Dropout** switches off a random fraction of the hidden units at every training
# step (here 20%), so that the network cannot rely on any one unit and must spread
# what it learns. At test time all units are on. Add a `Dropout` layer after the
# hidden layer; everything else stays as in `models.build_ann`.


# %%
def build_mlp(n_hidden=100, dropout=0.0):
    """The course's network with n_hidden units, and dropout after the hidden layer."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            keras.layers.Rescaling(1 / 255, name="scale"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(n_hidden, activation="relu", name="hidden"),
            keras.layers.Dropout(dropout, name="dropout"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name=f"mlp_{n_hidden}_dropout_{dropout}",
    )


repro.set_seed(42)
dropped, dropped_history = train_on_subset(build_mlp(dropout=0.2))

# %% [markdown]
# ### 6.3 Compare them side by side
#
# Evaluate the three networks on the validation and the test set. All three trained on
# the same 10,000 images with the same seed.

# %%
rows = []
for name, net, hist in [
    ("no remedy", plain, plain_history),
    ("early stopping", stopped, stopped_history),
    ("dropout 0.2", dropped, dropped_history),
]:
    v_loss, v_acc = net.evaluate(val_x, val_y, verbose=0)
    t_loss, t_acc = net.evaluate(test_x, test_y, verbose=0)
    rows.append((name, len(hist.history["loss"]), v_loss, v_acc, t_loss, t_acc))

print(
    f"{'':15s} {'epochs':>6s} {'val loss':>9s} {'val acc':>8s} "
    f"{'test loss':>9s} {'test acc':>8s}"
)
for name, epochs, v_loss, v_acc, t_loss, t_acc in rows:
    print(
        f"{name:15s} {epochs:6d} {v_loss:9.4f} {v_acc:8.2%} {t_loss:9.4f} {t_acc:8.2%}"
    )

# %% [markdown]
# Compare the validation loss of the runs epoch by epoch: from which epoch on is the
# one with dropout lower?

# %%
epochs = np.arange(1, n_epoch_long + 1)
dropped_val_loss = np.array(dropped_history.history["val_loss"])
lower = dropped_val_loss < val_loss
not_lower = epochs[~lower]  # the epochs where dropout is not lower
from_epoch = int(not_lower.max()) + 1 if len(not_lower) else 1
print(
    "epochs where dropout is not lower:", not_lower, f"→ lower from epoch {from_epoch}"
)

# %%
# figure: validation loss per epoch with and without dropout
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, val_loss, marker="o", label="no remedy")
ax.plot(epochs, dropped_val_loss, marker="o", label="dropout 0.2")
ax.axvline(n_stopped, color="gray", linestyle="--", label="early stopping stops")
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss")
ax.set_xticks(epochs[1::2])
ax.grid(alpha=0.3)
ax.legend()
ax.set_title(f"Dropout keeps the validation loss lower from epoch {from_epoch} on")
fig.tight_layout()

# %% [markdown]
# Check what the table says:

# %%
plain_row, stopped_row, dropped_row = rows
assert stopped_row[2] < plain_row[2] and stopped_row[4] < plain_row[4]  # losses
assert dropped_row[2] < plain_row[2] and dropped_row[4] < plain_row[4]  # losses
assert dropped_row[3] > plain_row[3] and dropped_row[5] > plain_row[5]  # accuracies
assert all(lower[from_epoch - 1 :])

# %% [markdown]
# Both remedies lower the validation and test **loss**: the networks are less often
# confidently wrong. The accuracies move less, by a few tenths of a percent, and not
# always the same way:
#
# - **early stopping** costs nothing but a validation set, and saves the epochs after
#   the best one. It cannot make the network better than it was at its best epoch,
#   and it picks that epoch by validation *loss*: here its test accuracy is even a
#   little lower than without a remedy;
# - **dropout** changes the training itself, and gives the best network of the three
#   on every measure.
#
# Free the three networks before the next, bigger one.

# %%
del plain, stopped, dropped
keras.backend.clear_session()

# %% [markdown]
# ## 7. Push a fully connected network to 98%
#
# How far can a network of `Dense` layers go? Change three things from the course's
# network, each for a reason you have just seen:
#
# - **512 hidden units** instead of 100: more capacity to fit the digits;
# - **dropout 0.2**, so that the extra capacity does not simply overfit;
# - **all 60,000 training images for 10 epochs**, in batches of 128: twice the passes
#   over the data, each 469 steps instead of 1875, so training stays fast.

# %%
n_batch_big = 128
n_epoch_big = 10

repro.set_seed(42)
best = build_mlp(n_hidden=512, dropout=0.2)
best.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)
print(best.count_params(), "parameters")

# %%
best_history = best.fit(
    train_x, train_y, batch_size=n_batch_big, epochs=n_epoch_big, verbose=2
)

# %%
best_loss, best_accuracy = best.evaluate(test_x, test_y, verbose=0)
n_best_wrong = round((1 - best_accuracy) * len(test_y))
print(f"test accuracy {best_accuracy:.2%} (the course's network: {test_accuracy:.2%})")
print(f"{n_best_wrong} mistakes instead of {len(wrong)}")

# %%
assert best_accuracy >= 0.980

# %% [markdown]
# The wider network has five times the parameters of the course's, and makes about a
# third fewer mistakes. About 98% is where fully connected networks level off on
# MNIST; wider or deeper ones gain a few tenths of a percent at much higher cost. These settings
# were found by trying a few; doing that on the test set makes its number slightly
# optimistic. The careful way is to compare settings on the validation set and
# look at the test set once, at the end.

# %% [markdown]
# ## 8. See what a fully connected network ignores
#
# The first thing the network does is `Flatten`: each image becomes a row of 784
# numbers, and every hidden unit has its own weight for every pixel. Nothing in the
# network knows that pixel 300 sits right next to pixel 301, or that a stroke is a
# stroke wherever it is drawn: shift a digit by two pixels and, for the network, it is
# a different list of numbers. It has to learn the same pattern again at every
# position.
#
# Lesson 5 uses **convolutions**, which look at small neighbourhoods of pixels and
# slide the same detector over the whole image: they use the picture as a picture.

# %% [markdown]
# ## What you learned
#
# - `evaluate` on the test set gives the honest accuracy; `predict` gives the 10
#   probabilities per image, and their `argmax` is the prediction.
# - A confusion matrix, `np.bincount(10 * true + predicted).reshape(10, 10)`, shows
#   which digits are confused; a few similar-looking pairs take a large share of the
#   mistakes, and some mistakes are made with high confidence.
# - Overfitting is learning the training images rather than handwriting; a
#   validation split and learning curves show it as a validation loss that rises
#   while the training loss keeps falling.
# - Early stopping keeps the best epoch; dropout trains a network that overfits less.
#   Both lower the validation and test loss.
# - A fully connected network reaches 98% on MNIST; it ignores which pixels are
#   neighbours, which is what convolutions use.
#
# ## Try it yourself
#
# - Do the graded exercise **`04_evaluate_and_regularise`** in `notebooks/exercises`.
# - Add L2 regularisation to the hidden layer: in a copy of `build_mlp`, give the
#   hidden `Dense` layer `kernel_regularizer=keras.regularizers.L2(1e-4)`, train it
#   with `train_on_subset`, and add it to the table. Does it beat dropout?
# - Train `build_mlp(dropout=0.5)` on the subset. Is more dropout better?
