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
# how precise is the number itself, and would more training help or hurt? In this
# lesson you take the trained network apart on the test set, watch a network
# **overfit**, measure two remedies, and choose a wider network the careful way.
#
# **What you'll learn**
#
# - how to read a network's probabilities, its confusion matrix and its mistakes;
# - how precise a test accuracy measured on 10,000 images is;
# - what overfitting is, and how a validation split and learning curves show it;
# - what early stopping and dropout do, measured side by side;
# - how to choose between networks on a validation set and look at the test set once.
#
# **What you need**
#
# - Lesson 3, *Loss and optimizer*: the training recipe and
#   `models.build_ann(rescale=True)`;
# - 1 to 2 minutes to run top to bottom (it trains six networks), and 45 minutes to
#   read;
# - about 1 GB of free memory, most of it for TensorFlow itself.
#
# **What you'll do**
#
# 1. Retrain the course's network.
# 2. Measure its test accuracy, and how precise that measure is.
# 3. Count its mistakes in a confusion matrix.
# 4. Look at the mistakes.
# 5. Watch a network overfit.
# 6. Measure two remedies: early stopping and dropout.
# 7. Choose a wider network on the validation set.
# 8. See what a fully connected network ignores.
#
# Section 9, *Under the hood*, is optional: how the lesson stays fast and small.
#
# Notation, as in lessons 2 and 3: an image $\mathbf x$, the network's logits
# $\mathbf z$, its probabilities $\mathbf p = \operatorname{softmax}(\mathbf z)$ over
# the classes $k = 0, \dots, 9$, the true label $y$; $\log$ is the natural logarithm.

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
# Load the digits, and build the network as lesson 3 did (section 5.2) with
# `models.build_ann(rescale=True)`.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist()


# %% [markdown]
# Train with the course's recipe: batches of `n_batch` = 32, `n_epoch` = 5 epochs,
# Adam. The epoch lines show this run's figures; they differ a little from machine to
# machine, so the cell after them checks them against a range instead.

# %% tags=["nbval-ignore-output"]
n_batch = 32
n_epoch = 5

repro.set_seed(42)
model = models.build_ann(rescale=True)
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,  # see section 9
)
history = model.fit(train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %%
train_loss_curve_full = np.array(history.history["loss"])
assert np.all(np.diff(train_loss_curve_full) < 0)  # the training loss falls each epoch
assert 0.035 <= train_loss_curve_full[-1] <= 0.065
assert 0.980 <= history.history["accuracy"][-1] <= 0.992

# %% [markdown]
# ## 2. Measure its test accuracy, and how precise that measure is
#
# ### 2.1 Evaluate on the test set
#
# The test images played no part in training, so the accuracy on them is the honest
# estimate of how the network does on digits it has never seen.

# %% tags=["nbval-ignore-output"]
test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")

# %%
assert 0.970 <= test_accuracy <= 0.980
assert 0.065 <= test_loss <= 0.100

# %% [markdown]
# ### 2.2 Know how precise a test accuracy is
#
# The 10,000 test images are a sample of all the digits people write. Another sample
# of the same size would give a slightly different accuracy. If the network is right on
# each image with probability $a$, the number it gets right out of $n$ is binomial, and
# the measured accuracy lies within about
#
# $$\pm 1.96 \sqrt{a (1 - a) / n}$$
#
# of $a$ 95% of the time. Compute that half-width for a few accuracies:

# %%
n_test = len(test_y)


def half_width(accuracy, n=n_test):
    """Half-width of the 95% interval of an accuracy measured on n images."""
    return 1.96 * np.sqrt(accuracy * (1 - accuracy) / n)


for accuracy in (0.955, 0.975, 0.980):
    print(f"accuracy {accuracy:.1%} on {n_test} images: ± {half_width(accuracy):.2%}")

# %% [markdown]
# Near 98%, a test accuracy on 10,000 images is known to about ±0.27 percentage
# points. Two networks whose accuracies differ by less than that may well be equally
# good: the difference is **within noise**. (Two networks measured on the *same*
# images vary together, so this is a rough, cautious yardstick.)

# %%
np.testing.assert_allclose(half_width(0.98), 0.0027, atol=1e-4)

# %% [markdown]
# ### 2.3 Look at one prediction
#
# `predict` gives the 10 probabilities $\mathbf p$ for each of the 10,000 test images,
# in the order of `test_x`. The predicted digit is the most probable class $k$, and its
# probability is the network's confidence.

# %%
probs = model.predict(test_x, batch_size=1000, verbose=0)
predicted = probs.argmax(axis=1)
confidence = probs.max(axis=1)
print(probs.shape)

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
print(f"test image {i}: label {test_y[i]}")

# %%
# figure: a random test digit and the 10 probabilities the network gives it
fig = plots.plot_probabilities(test_x[i], probs[i], label=test_y[i])

# %% [markdown]
# Most images look like this one: one probability near 1, the nine others near 0.

# %%
assert predicted[i] == test_y[i] and confidence[i] > 0.99

# %% [markdown]
# The interesting images are those where the network hesitates, or is wrong.
#
# ## 3. Count its mistakes in a confusion matrix
#
# A **confusion matrix** counts, for each true digit (row) and each predicted digit
# (column), how many test images fall in that cell. The diagonal holds the correct
# answers, everything else is a mistake. Build it in one line: the pair (true,
# predicted) becomes the number `10 * true + predicted`, from 0 to 99, and
# `np.bincount` counts each number.
#
# **Predict, then run.** Which pair of digits do you expect the network to confuse
# most often? Write down your guess (true digit, predicted digit), then run the next
# cells.

# %%
print("test images per digit:", np.bincount(test_y, minlength=10))

# %% tags=["nbval-ignore-output"]
confusion = np.bincount(10 * test_y + predicted, minlength=100).reshape(10, 10)
print(confusion)

# %% [markdown]
# Every test image is counted once, the row sums are the test set's digit counts, and
# the diagonal is the accuracy again:

# %%
assert confusion.sum() == len(test_y)
np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(test_y))
np.testing.assert_allclose(np.trace(confusion) / len(test_y), test_accuracy, atol=1e-6)

# %% [markdown]
# ### 3.1 Find the most-confused pairs
#
# Set the diagonal to 0 and sort the remaining cells: the largest counts are the pairs
# of digits the network mixes up most.

# %% tags=["nbval-ignore-output"]
mistakes = confusion.copy()
np.fill_diagonal(mistakes, 0)
order = np.argsort(mistakes, axis=None, kind="stable")[::-1][:5]
top_true, top_predicted = np.unravel_index(order, mistakes.shape)

print("true  predicted  count")
for t, p in zip(top_true, top_predicted, strict=True):
    print(f"{t:4d}  {p:9d}  {mistakes[t, p]:5d}")

n_wrong = mistakes.sum()
top_share = mistakes[top_true, top_predicted].sum() / n_wrong
print(f"{n_wrong} mistakes; the 5 pairs above make {top_share:.0%} of them")

# %% [markdown]
# The mistakes are not spread evenly over the 90 pairs of different digits (the 5
# largest would then make about 6% of them): a handful of pairs of similar shapes, such
# as 4 and 9, 3 and 5, 7 and 2, take a large share. Which pair comes first changes a
# little from machine to machine; that it is such a pair does not.

# %%
similar_shapes = [{4, 9}, {3, 5}, {2, 7}, {7, 9}, {3, 8}, {5, 8}, {2, 8}, {3, 7}]
assert {int(top_true[0]), int(top_predicted[0])} in similar_shapes
assert 0.20 <= top_share <= 0.45
assert 12 <= mistakes[top_true[0], top_predicted[0]] <= 35

# %%
# figure: the confusion matrix of the course's network on the test set
t, p = top_true[0], top_predicted[0]
fig = plots.plot_confusion_matrix(
    confusion,
    title=f"The most common mistake: {t} read as {p} ({mistakes[t, p]} times)",
)

# %% [markdown]
# ## 4. Look at the mistakes
#
# Show the 10 mistakes the network was **most sure** of: each title gives the true
# label, the prediction and its probability.

# %% tags=["nbval-ignore-output"]
wrong = np.flatnonzero(predicted != test_y)
most_sure = wrong[np.argsort(confidence[wrong], kind="stable")[::-1][:10]]
print(
    f"{len(wrong)} mistakes; the 10 most confident have probability "
    f"{confidence[most_sure].min():.2f} or more"
)

# %%
assert len(wrong) == n_wrong
assert confidence[most_sure].min() >= 0.95  # wrong, and sure of it

# %%
# figure: the 10 test digits the network got wrong with the most confidence
fig = plots.show_digits(
    test_x[most_sure],
    test_y[most_sure],
    predicted=predicted[most_sure],
    confidence=confidence[most_sure],
    title="The 10 mistakes the network is most sure of",
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

# %% tags=["nbval-ignore-output"]
train_loss, train_accuracy = model.evaluate(
    train_x[:10_000], train_y[:10_000], verbose=0
)
print(f"training accuracy {train_accuracy:.2%}, test accuracy {test_accuracy:.2%}")
print(f"training loss {train_loss:.4f}, test loss {test_loss:.4f}")

# %%
assert train_accuracy - test_accuracy >= 0.005 and train_loss < test_loss

# %% [markdown]
# The network does better on images it has seen: there is a **gap** between training
# and test. A gap alone is not yet overfitting: any network fits the images it was
# trained on a little better than new ones. A network **overfits** when further
# training keeps fitting its training images better while it gets *worse* on new
# ones, which shows first in the loss on new images: the gap *widens*, driven by the
# training set. To watch that happen you need
# images that training does not use and that are not the test set either, because
# the test set must stay untouched until the end.
#
# ### 5.2 Split off a validation set
#
# Keep the last 10,000 training images apart as a **validation set**. To see
# overfitting in seconds rather than minutes, train on a small part of the rest, the
# first 10,000 images, for 20 epochs: the fewer images a network learns from, the
# sooner it can fit their particulars.

# %%
fit_x, fit_y = train_x[:10_000], train_y[:10_000]
val_x, val_y = train_x[50_000:], train_y[50_000:]
print(f"{len(fit_x)} images to train on, {len(val_x)} to validate on")

# %%
del model  # free the course's network (section 9)
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
# Train the course's network this way (the plot below shows every epoch).

# %%
repro.set_seed(42)
plain, plain_history = train_on_subset(models.build_ann(rescale=True))

# %% [markdown]
# Find the epoch where the validation loss is lowest, and compare the validation
# accuracy there with the one after the last epoch.

# %% tags=["nbval-ignore-output"]
val_loss = np.array(plain_history.history["val_loss"])
val_accuracy = np.array(plain_history.history["val_accuracy"])
train_loss_curve = np.array(plain_history.history["loss"])
best_epoch = int(val_loss.argmin()) + 1
print(f"validation loss: lowest at epoch {best_epoch}, {val_loss.min():.4f}; ", end="")
print(f"after epoch {n_epoch_long}, {val_loss[-1]:.4f}")
print(
    f"validation accuracy: at epoch {best_epoch}, {val_accuracy[best_epoch - 1]:.2%}; ",
    end="",
)
print(f"after epoch {n_epoch_long}, {val_accuracy[-1]:.2%}")

# %%
assert 6 <= best_epoch <= 15
assert 0.010 <= val_loss[-1] - val_loss.min() <= 0.080  # then it rises
assert (
    val_accuracy[-1] >= val_accuracy[best_epoch - 1] - 0.002
)  # accuracy does not fall

# %%
# figure: training and validation loss and accuracy per epoch
fig = plots.plot_history(
    plain_history.history,
    title=f"Validation loss is lowest at epoch {best_epoch}, "
    "then rises; validation accuracy does not fall",
)

# %% [markdown]
# Read the two panels together:
#
# - the **training** loss falls in every epoch: the network fits its 10,000 images
#   better and better;
# - the **validation loss** falls until a best epoch (around epoch 11), then rises;
# - the **validation accuracy** does *not* fall after the best epoch: it stays about
#   level or still rises a little;
# - the gap between training and validation loss widens after the best epoch.
#
# Check the first and the last point (the cell above checked the two in the middle):

# %%
assert np.all(np.diff(train_loss_curve) < 0)
gap = val_loss - train_loss_curve
assert gap[-1] - gap[best_epoch - 1] >= 0.010  # the gap widens

# %% [markdown]
# So after the best epoch the network does not yet make *more* mistakes on new images.
# What gets worse is its **confidence**: the loss $-\log p_y$ punishes a wrong answer
# given with high probability, and the network, pushed to fit its training images
# ever more tightly, gives its answers with more and more certainty, the wrong ones
# included. A rising validation loss while the training loss keeps falling is the
# first sign of overfitting; more mistakes would come later. Section 6.2 checks this
# on the validation images.

# %% [markdown]
# ## 6. Measure two remedies: early stopping and dropout
#
# ### 6.1 Stop early
#
# If the validation loss rises after some epoch, stop there. Keras's
# `EarlyStopping` callback watches `val_loss`, stops when it has not improved for
# `patience` epochs, and with `restore_best_weights=True` puts back the weights of the
# best epoch. Train the same network again, from the same seed:

# %% tags=["nbval-ignore-output"]
stop_early = keras.callbacks.EarlyStopping(
    monitor="val_loss", patience=3, restore_best_weights=True
)
repro.set_seed(42)
stopped, stopped_history = train_on_subset(models.build_ann(rescale=True), [stop_early])
n_stopped = len(stopped_history.history["val_loss"])
print(f"stopped after epoch {n_stopped}, kept the weights of epoch {best_epoch}")

# %% [markdown]
# Same seed, same batches: it follows the first run epoch for epoch, stops `patience`
# epochs after the best one, and keeps the network of the best epoch, whose
# validation loss is the lowest of the curve.

# %%
np.testing.assert_allclose(
    stopped_history.history["val_loss"], val_loss[:n_stopped], rtol=1e-5
)
assert n_stopped == best_epoch + 3
stopped_val_loss, _ = stopped.evaluate(val_x, val_y, verbose=0)
np.testing.assert_allclose(stopped_val_loss, val_loss.min(), rtol=1e-4)

# %% [markdown]
# ### 6.2 See where the extra loss comes from
#
# You now have the same network twice: at its best epoch (`stopped`) and after 20
# epochs (`plain`). Split the validation images into those each gets right and those
# it gets wrong, and average the loss $-\log p_y$ over each part.


# %%
def loss_by_outcome(net):
    """Number of validation mistakes, mean -log p_y on them and on the right ones."""
    p = net.predict(val_x, batch_size=1000, verbose=0)
    right = p.argmax(axis=1) == val_y
    loss = -np.log(p[np.arange(len(val_y)), val_y])
    return int((~right).sum()), loss[~right].mean(), loss[right].mean()


# %% tags=["nbval-ignore-output"]
print(f"{'':12s} {'mistakes':>8s} {'loss on mistakes':>17s} {'loss on right':>14s}")
outcomes = {}
for name, net in [(f"epoch {best_epoch}", stopped), (f"epoch {n_epoch_long}", plain)]:
    outcomes[name] = loss_by_outcome(net)
    n_mistakes, loss_wrong, loss_right = outcomes[name]
    print(f"{name:12s} {n_mistakes:8d} {loss_wrong:17.3f} {loss_right:14.4f}")

# %% [markdown]
# After 20 epochs the network makes fewer mistakes than at its best epoch, not more,
# and it is surer of its right answers; but it is much surer of its *wrong* ones
# (their loss grows by more than a fifth), and that raises the average loss.

# %%
best_wrong, best_loss_wrong, best_loss_right = outcomes[f"epoch {best_epoch}"]
last_wrong, last_loss_wrong, last_loss_right = outcomes[f"epoch {n_epoch_long}"]
assert last_wrong <= best_wrong + 20  # not more mistakes (within 0.2 points)
assert last_loss_wrong > 1.2 * best_loss_wrong  # surer of the wrong answers
assert last_loss_right < best_loss_right  # and of the right ones

# %% [markdown]
# ### 6.3 Drop units at random
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


# %% [markdown]
# **Predict, then run.** How many parameters does the `Dropout` layer add?

# %%
print(build_mlp(dropout=0.2).count_params(), "parameters")

# %% [markdown]
# None: 79,510 is the course's network. Dropout has nothing to learn; it only changes
# how the network is trained. (The course keeps this network as
# `models.build_ann(n_hidden, rescale=True, dropout=...)`; lesson 5 uses it.) Train it
# on the subset, from the same seed:

# %%
assert build_mlp(dropout=0.2).count_params() == models.build_ann().count_params()

# %%
repro.set_seed(42)
dropped, dropped_history = train_on_subset(build_mlp(dropout=0.2))

# %% [markdown]
# ### 6.4 Compare them side by side
#
# Evaluate the three networks on the validation and the test set. All three trained on
# the same 10,000 images with the same seed.

# %% tags=["nbval-ignore-output"]
rows = {}
for name, net, hist in [
    ("no remedy", plain, plain_history),
    ("early stopping", stopped, stopped_history),
    ("dropout 0.2", dropped, dropped_history),
]:
    v_loss, v_acc = net.evaluate(val_x, val_y, verbose=0)
    t_loss, t_acc = net.evaluate(test_x, test_y, verbose=0)
    rows[name] = (len(hist.history["loss"]), v_loss, v_acc, t_loss, t_acc)

print(
    f"{'':15s} {'epochs':>6s} {'val loss':>9s} {'val acc':>8s} "
    f"{'test loss':>9s} {'test acc':>8s}"
)
for name, (n, v_loss, v_acc, t_loss, t_acc) in rows.items():
    print(f"{name:15s} {n:6d} {v_loss:9.4f} {v_acc:8.2%} {t_loss:9.4f} {t_acc:8.2%}")
print(f"noise of a test accuracy near 95.5%: ± {half_width(0.955):.2%}")

# %% [markdown]
# Read the table with section 2.2's yardstick in mind:
#
# - both remedies clearly lower the validation and the test **loss**: their networks
#   are less often confidently wrong;
# - **early stopping** keeps the network of the best epoch by *loss*. Since the
#   accuracy still rose after that epoch (section 5.3), early stopping does not raise
#   the accuracy; it is about the same as without a remedy, or a few tenths lower;
# - **dropout** gives the lowest loss of the three; its accuracy differs from the
#   network without a remedy by less than the noise (about ±0.4 points near 95.5%).
#   This experiment shows that dropout lowers the loss, not that it makes fewer
#   mistakes.

# %%
_, plain_v_loss, plain_v_acc, plain_t_loss, plain_t_acc = rows["no remedy"]
_, stop_v_loss, _, stop_t_loss, stop_t_acc = rows["early stopping"]
_, drop_v_loss, _, drop_t_loss, drop_t_acc = rows["dropout 0.2"]
noise = half_width(0.955)
assert 0.945 <= plain_v_acc <= 0.965 and 0.940 <= plain_t_acc <= 0.965
assert stop_v_loss < plain_v_loss - 0.005 and stop_t_loss < plain_t_loss - 0.005
assert drop_v_loss < plain_v_loss - 0.010 and drop_t_loss < plain_t_loss - 0.010
assert drop_v_loss < stop_v_loss and drop_t_loss < stop_t_loss
assert stop_t_acc <= plain_t_acc + noise / 2  # early stopping: no more accurate
assert abs(drop_t_acc - plain_t_acc) < noise  # dropout: the same within noise

# %% [markdown]
# Compare the validation loss of the runs epoch by epoch: from which epoch on is the
# one with dropout lower?

# %% tags=["nbval-ignore-output"]
epochs = np.arange(1, n_epoch_long + 1)
dropped_val_loss = np.array(dropped_history.history["val_loss"])
lower = dropped_val_loss < val_loss
not_lower = epochs[~lower]  # the epochs where dropout is not lower
from_epoch = int(not_lower.max()) + 1 if len(not_lower) else 1
print(
    "epochs where dropout is not lower:", not_lower, f"→ lower from epoch {from_epoch}"
)

# %% [markdown]
# In the first epochs the two curves are close and either may be lower. By the best
# epoch of the network without a remedy at the latest, dropout's validation loss is
# lower, and it stays lower to the last epoch, rising little if at all.

# %%
assert from_epoch <= best_epoch  # lower from the best epoch on, at the latest
assert dropped_val_loss[-1] < dropped_val_loss[best_epoch - 1] + 0.01  # barely rises

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

# %%
del plain, stopped, dropped  # free the three networks (section 9)
keras.backend.clear_session()

# %% [markdown]
# ## 7. Choose a wider network on the validation set
#
# How far can a network of `Dense` layers go with more of the training data? Try **512
# hidden units** instead of 100, for more capacity, and ask one question: does it need
# dropout? Answer it the careful way:
#
# 1. train both candidates, without dropout and with dropout 0.2, on the first 50,000
#    training images, for 10 epochs in batches of 128;
# 2. choose the one with the lower loss on the 10,000 validation images (the loss,
#    because it separates networks that are within noise on accuracy);
# 3. only then evaluate the chosen network on the test set, once.
#
# Choosing on the test set would make its accuracy optimistic: it would no longer be
# the accuracy of a network that never influenced a decision about it.
#
# **Predict, then run.** How many parameters does the 784-512-10 network have?

# %%
n_batch_wide = 128
n_epoch_wide = 10
choose_x, choose_y = train_x[:50_000], train_y[:50_000]
print(build_mlp(n_hidden=512).count_params(), "parameters")

# %%
assert build_mlp(n_hidden=512).count_params() == 784 * 512 + 512 + 512 * 10 + 10


# %%
def train_wide(dropout):
    """784-512-10 with dropout, on choose_x for n_epoch_wide epochs, validated."""
    repro.set_seed(42)
    net = build_mlp(n_hidden=512, dropout=dropout)
    net.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=100,
    )
    hist = net.fit(
        choose_x,
        choose_y,
        batch_size=n_batch_wide,
        epochs=n_epoch_wide,
        validation_data=(val_x, val_y),
        verbose=0,
    )
    return net, hist


candidates = {dropout: train_wide(dropout) for dropout in (0.0, 0.2)}

# %% tags=["nbval-ignore-output"]
print(f"{'dropout':>7s} {'val loss':>9s} {'val acc':>8s}")
for dropout, (_, hist) in candidates.items():
    v_loss, v_acc = hist.history["val_loss"][-1], hist.history["val_accuracy"][-1]
    print(f"{dropout:7.1f} {v_loss:9.4f} {v_acc:8.2%}")
chosen = min(candidates, key=lambda d: candidates[d][1].history["val_loss"][-1])
print(f"chosen: dropout {chosen}")

# %% [markdown]
# With dropout the validation loss is clearly lower, so that is the choice; the two
# validation accuracies are within noise of each other.

# %%
wide_val = {d: h.history for d, (_, h) in candidates.items()}
assert chosen == 0.2
assert wide_val[0.2]["val_loss"][-1] < wide_val[0.0]["val_loss"][-1] - 0.004
assert 0.975 <= wide_val[0.2]["val_accuracy"][-1] <= 0.985
assert abs(
    wide_val[0.2]["val_accuracy"][-1] - wide_val[0.0]["val_accuracy"][-1]
) < half_width(0.98, len(val_y))

# %% [markdown]
# Now, and only now, measure the chosen network on the test set:

# %% tags=["nbval-ignore-output"]
wide, _ = candidates[chosen]
wide_loss, wide_accuracy = wide.evaluate(test_x, test_y, verbose=0)
n_wide_wrong = round((1 - wide_accuracy) * n_test)
print(f"test accuracy {wide_accuracy:.2%} ± {half_width(wide_accuracy):.2%}")
print(f"{n_wide_wrong} mistakes; the course's network made {n_wrong}")

# %% [markdown]
# The wider network with dropout reaches about 98.2%, and makes about a third fewer
# mistakes than the course's network: a difference beyond the noise of ±0.3 points
# (both are measured on the same 10,000 images). It differs from the course's network in width, dropout and training
# schedule, and it learned from 50,000 images rather than 60,000: the comparison
# measures what the whole recipe gains, not what each change gains.

# %%
assert 0.978 <= wide_accuracy <= 0.986
assert wide_accuracy - test_accuracy > half_width(wide_accuracy)
assert 0.55 <= n_wide_wrong / n_wrong <= 0.80

# %% [markdown]
# This is not where fully connected networks stop. Wider and deeper ones, with
# dropout, trained for hundreds of epochs, reach about 99% on MNIST: Srivastava et
# al. (2014, *Dropout: a simple way to prevent neural networks from overfitting*)
# report test errors from about 1.3% down to 0.95%. The 10 epochs here are a
# few seconds' worth of that.

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
# ## 9. Under the hood: how the lesson stays fast and small (optional)
#
# Nothing here changes what the networks learn; skip it on a first reading.
#
# - **Bytes in, scaling inside.** `data.load_mnist()` returns the images as `uint8`
#   (47 MB for the 60,000 training images, a quarter of `float32`), and the
#   `Rescaling(1 / 255)` layer at the front of every network here divides by 255 on
#   the fly. That keeps the lesson's memory under 1 GB while it holds six networks'
#   worth of training.
# - **`steps_per_execution=100`** lets Keras run 100 training steps per call into
#   TensorFlow instead of one; the batches, and so the result, are the same, only the
#   Python overhead between steps goes.
# - **Large batches to predict.** `predict(..., batch_size=1000)` needs no gradients,
#   so it can take 1000 images at a time.
# - **Freeing networks.** Keras keeps every model it builds until
#   `keras.backend.clear_session()`; `del` plus `clear_session()` lets the lesson
#   train the next networks without the memory of the previous ones.

# %%
# the bytes of the training images, and what float32 would cost
print(
    f"{train_x.dtype}: {train_x.nbytes / 1e6:.0f} MB; as float32: {train_x.size * 4 / 1e6:.0f} MB"
)

# %% [markdown]
# ## What you learned
#
# - `evaluate` on the test set gives the honest accuracy; on 10,000 images it is known
#   to about ±0.3 points near 98%, so smaller differences are within noise.
# - `predict` gives the 10 probabilities per image, their `argmax` is the prediction;
#   a confusion matrix, `np.bincount(10 * true + predicted).reshape(10, 10)`, shows
#   that a few similar-looking pairs take a large share of the mistakes, and some
#   mistakes are made with high confidence.
# - Overfitting is further training that fits the training images better while new
#   images get worse; learning curves show it first as a validation loss that rises
#   while the training loss keeps falling, even while the validation accuracy still
#   holds: the network grows over-confident before it makes more mistakes.
# - Early stopping keeps the epoch of lowest validation loss; dropout trains a network
#   whose validation loss stays lower. Both lower the loss; on 10,000 images neither
#   changes the accuracy beyond noise here.
# - Choose between networks on a validation set, then look at the test set once: a
#   784-512-10 network with dropout, chosen that way, reaches about 98.2%.
#
# ## Try it yourself
#
# Do the graded exercise **`04_evaluate_and_regularise`** in `notebooks/exercises`:
#
# - **Part 1, Build the confusion matrix**: section 3's `np.bincount`, as a function
#   `confusion_matrix(true, predicted)`;
# - **Part 2, Find the most-confused pair**: section 3.1, without changing the matrix
#   you are given;
# - **Part 3, Regularise to reach 76%**: section 6.3's dropout, on a network that
#   memorises wrong labels. The 20% used here is mild: try stronger values, and
#   compare them on validation loss as in section 7.
