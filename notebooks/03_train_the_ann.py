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
# # Lesson 3 · Loss and optimizer
#
# Lesson 2 ended with a network that only guesses. Training turns it into one that
# reads digits. Training needs two things: a **loss**, one number that says how wrong
# the network is, and an **optimizer**, the rule that changes the weights to make that
# number smaller. In this lesson you compute both by hand, check them against Keras,
# then let Keras train the course's network in a few seconds.
#
# **What you'll learn**
#
# - the cross-entropy loss for 10 classes, $L = -\frac1m\sum_i \log p(y^{(i)} \mid
#   x^{(i)})$, and how it relates to the binary formula you may have seen;
# - the gradient-descent update $\omega := \omega - \alpha \nabla_\omega L$, one step
#   by hand with `tf.GradientTape`;
# - what batch size, epoch and iteration mean: 32 images per iteration, 1875
#   iterations per epoch;
# - why the course trains with Adam rather than plain SGD, measured;
# - why the course's training takes seconds, not minutes.
#
# **What you need**
#
# - Lesson 2, *The ANN structure*: the 784-100-10 network and its softmax outputs;
# - about 20 seconds to run top to bottom (under a minute on a laptop), and 30
#   minutes to read;
# - about 1 GB of free memory, most of it for TensorFlow itself.
#
# **What you'll do**
#
# 1. Load the images and build an untrained network.
# 2. Measure how wrong it is with the cross-entropy loss.
# 3. Relate the loss to the binary formula.
# 4. Take one gradient-descent step by hand.
# 5. Count the iterations of an epoch, and let the network scale its input.
# 6. Train the course's network and test it.
# 7. Compare Adam with plain SGD on the same budget.
# 8. See why this training is fast.

# %% [markdown]
# ## 1. Load the images and build an untrained network
#
# Silence TensorFlow before Keras imports it, then import the rest.

# %%
from course_utils import repro

repro.quiet_tensorflow()

# %%
import math

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from course_utils import data, models, plots

# %% [markdown]
# Load MNIST as it is stored, grey levels 0..255 in `uint8`: the training images take
# 47 MB this way instead of 188 MB in `float32`. Section 5 explains why this lesson
# keeps them as bytes.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist()
print(train_x.shape, train_x.dtype, f"{train_x.nbytes / 1e6:.0f} MB")

# %% [markdown]
# Build the course's network with a fixed seed, so that its random starting weights
# are the same on every run.

# %%
repro.set_seed(42)
model = models.build_ann()
print(model.name, model.count_params(), "parameters")

# %% [markdown]
# Take the first 32 training images as a batch, scale them as in lesson 1, and ask the
# untrained network for its 10 probabilities per image.

# %%
n_batch = 32
batch_x = data.scale_images(train_x[:n_batch])
batch_y = train_y[:n_batch]
probs = model(batch_x).numpy()
print(probs.shape, "  row 0:", np.round(probs[0], 3))

# %% [markdown]
# ## 2. Measure how wrong the network is
#
# ### 2.1 Write the loss for 10 classes
#
# For one image $x^{(i)}$ with true label $y^{(i)}$, the network gives the probability
# $p(y^{(i)} \mid x^{(i)})$ to the correct digit. A perfect network gives it 1, and
# $-\log 1 = 0$; a network that gives it 0.01 pays $-\log 0.01 = 4.6$. The
# **cross-entropy** loss of a batch of $m$ images is the mean of these penalties:
#
# $$L = -\frac{1}{m} \sum_{i=1}^{m} \log p\left(y^{(i)} \mid x^{(i)}\right)$$
#
# Only the probability of the *true* class enters: raising it lowers the loss, and
# because the 10 probabilities add up to 1, raising it lowers the others.
#
# In NumPy, pick for each row $i$ the column $y^{(i)}$, then take the mean of minus
# the logarithm:

# %%
p_true = probs[np.arange(n_batch), batch_y]
loss_by_hand = -np.mean(np.log(p_true))
print(f"cross-entropy by hand: {loss_by_hand:.4f}")

# %% [markdown]
# Keras calls this loss `sparse_categorical_crossentropy` ("sparse" because the labels
# are the integers 0..9, not rows of ten 0s and 1s). It returns one value per image;
# its mean is the batch's loss, and it is the number you just computed:

# %%
loss_keras = keras.losses.sparse_categorical_crossentropy(batch_y, probs)
np.testing.assert_allclose(np.mean(loss_keras), loss_by_hand, rtol=1e-6)

# %% [markdown]
# ### 2.2 Expect about log 10 before training
#
# An untrained network spreads its probability over the 10 digits almost evenly, so
# each true class gets about $1/10$ and the loss is about $-\log \frac{1}{10} = \log 10
# \approx 2.30$. Any loss far above that means the network is *confidently wrong*,
# worse than a guess.

# %%
print(f"untrained loss {loss_by_hand:.2f}   log(10) = {np.log(10):.2f}")
assert abs(loss_by_hand - np.log(10)) < 0.3

# %% [markdown]
# ## 3. Relate the loss to the binary formula
#
# You will often see this formula next to MNIST:
#
# $$L = -\frac{1}{m} \sum_{i=1}^{m} \left[ y^{(i)} \log p^{(i)} + \left(1 - y^{(i)}
# \right) \log\left(1 - p^{(i)}\right) \right]$$
#
# It is the **binary** cross-entropy: it needs a label $y$ that is 0 or 1 and a single
# probability $p = p(y{=}1)$. It is not the loss for 10 digits, whose labels are
# 0..9. It is the same idea for 2 classes: with $p(y{=}1) = p$ and $p(y{=}0) = 1 - p$,
# the 10-class formula picks $\log p$ when $y = 1$ and $\log(1-p)$ when $y = 0$, which
# is exactly the bracket above.
#
# Check it on 8 made-up predictions for a two-class problem:

# %%
rng = np.random.default_rng(0)
p = rng.uniform(0.05, 0.95, size=8)  # p(y=1) for 8 images
y = rng.integers(0, 2, size=8)  # their labels, 0 or 1

binary = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
two_classes = np.stack([1 - p, p], axis=1)  # columns: p(y=0), p(y=1)
multiclass = -np.mean(np.log(two_classes[np.arange(8), y]))
print(f"binary formula {binary:.6f}   two-class cross-entropy {multiclass:.6f}")

# %%
np.testing.assert_allclose(multiclass, binary, rtol=1e-12)
np.testing.assert_allclose(
    np.mean(keras.losses.binary_crossentropy(y[:, None], p[:, None])),
    binary,
    rtol=1e-5,
)

# %% [markdown]
# So: **binary cross-entropy is the 2-class case** of the cross-entropy; for MNIST use
# the 10-class one.

# %% [markdown]
# ## 4. Take one gradient-descent step by hand
#
# ### 4.1 Compute the gradient
#
# The loss depends on all 79,510 weights and biases; call them $\omega$. Its
# **gradient** $\nabla_\omega L$ says, for each of them, how much the loss grows when
# that number grows a little. **Gradient descent** moves every parameter a small step
# against its gradient:
#
# $$\omega := \omega - \alpha \, \nabla_\omega L$$
#
# The **learning rate** $\alpha$ sets the step size. TensorFlow computes the gradient
# for you: record the forward pass and the loss on a `tf.GradientTape`, then ask the
# tape for the derivative with respect to each weight array.

# %%
alpha = 0.1
weights = model.trainable_variables

with tf.GradientTape() as tape:
    batch_probs = model(batch_x)
    batch_loss = keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(batch_y, batch_probs)
    )
grads = tape.gradient(batch_loss, weights)

for w, g in zip(weights, grads, strict=True):
    print(f"{w.path:30s} weights {w.shape!s:10s} gradient {g.shape}")

# %% [markdown]
# One gradient per weight array, each the same shape as its array. The tape's loss is
# the one you computed by hand in section 2:

# %%
np.testing.assert_allclose(float(batch_loss), loss_by_hand, rtol=1e-6)

# %% [markdown]
# ### 4.2 Apply the update by hand and with Keras
#
# Compute $\omega - \alpha \nabla_\omega L$ in NumPy for every array:

# %%
by_hand = [w.numpy() - alpha * g.numpy() for w, g in zip(weights, grads, strict=True)]

# %% [markdown]
# Keras's plain stochastic gradient descent, `keras.optimizers.SGD`, applies the same
# update to the model's own weights:

# %%
sgd = keras.optimizers.SGD(learning_rate=alpha)
sgd.apply(grads, weights)

for w, expected in zip(weights, by_hand, strict=True):
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6, atol=1e-7)

# %% [markdown]
# The step helped: on the same batch, the loss is now lower.

# %%
loss_after = np.mean(
    keras.losses.sparse_categorical_crossentropy(batch_y, model(batch_x))
)
print(f"loss before the step {loss_by_hand:.4f}, after {loss_after:.4f}")
assert loss_after < loss_by_hand

# %% [markdown]
# Training is this step, repeated: take a batch, compute the loss and its gradient,
# update the weights, take the next batch. The gradient of a batch of 32 images is a
# noisy estimate of the gradient over all 60,000, which is why the method is called
# *stochastic* gradient descent; it is 1,875 times cheaper to compute.

# %% [markdown]
# ## 5. Count the iterations and scale the input
#
# ### 5.1 Count the iterations of an epoch
#
# An **iteration** is one such step on one batch of `n_batch` images. An **epoch** is
# as many iterations as it takes to show every training image once. The course trains
# for `n_epoch` = 5 epochs with batches of 32:
#
# $$n_\text{iter} = \left\lceil \frac{60\,000}{n_\text{batch}} \right\rceil$$

# %%
n_batch = 32
n_epoch = 5
n_iter = math.ceil(len(train_x) / n_batch)
print(f"{n_iter} iterations per epoch, {n_iter * n_epoch} in {n_epoch} epochs")

# %%
assert n_iter == 1875

# %% [markdown]
# ### 5.2 Let the network scale its input
#
# `fit` takes the arrays, shuffles them every epoch and cuts them into batches of
# `n_batch`. First it copies them into TensorFlow, several times over. The `float32`
# images take 188 MB, and their copies would take this lesson past 1 GB of memory; as
# bytes they take 47 MB. So keep the images as `uint8` and make the division by 255
# the network's first layer, `Rescaling(1 / 255)`: it scales each batch as it arrives,
# and the course's network after it is unchanged.
#
# Check it on the network of section 4: wrapped behind a `Rescaling` layer, it gives
# the same probabilities for the bytes as it gave for the scaled images.

# %%
wrapped = keras.Sequential(
    [keras.Input(shape=(28, 28)), keras.layers.Rescaling(1 / 255), model]
)
np.testing.assert_allclose(
    wrapped(train_x[:n_batch]), model(batch_x), rtol=1e-5, atol=1e-7
)


# %% [markdown]
# Every training from now on starts from a fresh network built this way, so the course
# keeps it as a function: `models.build_ann(rescale=True)` puts a `Rescaling(1 / 255)`
# layer named `scale` in front of the same three layers. Check that it computes what
# the wrapped network computes, and that `Rescaling` adds no parameters:

# %%
course_network = models.build_ann(rescale=True)
course_network.summary()

# %%
course_network.set_weights(model.get_weights())
np.testing.assert_allclose(
    course_network(train_x[:n_batch]), wrapped(train_x[:n_batch]), rtol=1e-6
)
assert course_network.count_params() == model.count_params() == 79_510
del course_network, wrapped

# %% [markdown]
# ## 6. Train the course's network and test it
#
# ### 6.1 Compile with the loss and the optimizer
#
# `compile` tells Keras which loss to minimise, which optimizer to use and which
# metric to report. The course uses **Adam**, a variant of gradient descent that
# adapts the step of every weight to the size of its recent gradients (section 7
# shows why). Start again from a fresh network with the same seed.

# %%
repro.set_seed(42)
model = models.build_ann(rescale=True)
initial_weights = model.get_weights()  # kept for the comparison in section 7

model.compile(
    optimizer=keras.optimizers.Adam(),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)

# %% [markdown]
# `steps_per_execution=100` changes how fast training runs, not what it computes;
# section 8 explains it.
#
# ### 6.2 Train for 5 epochs
#
# `fit` runs the loop of section 4: every epoch it shuffles the training images, cuts
# them into batches of `n_batch`, and takes one Adam step per batch. `verbose=2`
# prints one line per epoch: iterations done, time taken (masked as `TIME` when the
# notebook is tested, because it varies), and the mean loss and accuracy over the
# epoch.

# %%
history = model.fit(train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %% [markdown]
# Each line starts with `1875/1875`: every epoch took `n_iter` steps, as computed.

# %%
assert history.params["steps"] == n_iter

# %% [markdown]
# ### 6.3 Plot the training curves
#
# The loss falls fast in the first epoch and more slowly after; the accuracy rises the
# same way.

# %%
# figure: training loss and accuracy per epoch
final_loss = history.history["loss"][-1]
fig = plots.plot_history(
    history.history, title=f"Training loss falls to {final_loss:.3f} in 5 epochs"
)

# %% [markdown]
# ### 6.4 Test it on images it has never seen
#
# The numbers above are measured on the training images, while the weights were
# still changing. The honest measure is the accuracy on the 10,000 test images, which
# training never touched.

# %%
test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")

# %%
assert test_accuracy >= 0.97

# %% [markdown]
# The trained network reads more than 97 of 100 test digits correctly, against 10 of
# 100 before training. Lesson 4 looks at the ones it gets wrong.

# %% [markdown]
# ## 7. Compare Adam with plain SGD on the same budget
#
# Is Adam worth it? Train the same network with plain SGD (Keras's default learning
# rate, 0.01) from the **same starting weights**, with the same seed, for the same 5
# epochs of 1875 iterations. Only the optimizer differs.

# %%
repro.set_seed(42)
sgd_model = models.build_ann(rescale=True)
sgd_model.set_weights(initial_weights)
sgd_model.compile(
    optimizer=keras.optimizers.SGD(learning_rate=0.01),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)

# %%
sgd_history = sgd_model.fit(
    train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2
)

# %%
sgd_test_loss, sgd_test_accuracy = sgd_model.evaluate(test_x, test_y, verbose=0)
print(f"test accuracy: Adam {test_accuracy:.2%}, SGD {sgd_test_accuracy:.2%}")

# %%
# figure: training loss per epoch, Adam against SGD
epochs = np.arange(1, n_epoch + 1)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, history.history["loss"], marker="o", label="Adam")
ax.plot(epochs, sgd_history.history["loss"], marker="o", label="SGD, α = 0.01")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (cross-entropy)")
ax.set_xticks(epochs)
ax.grid(alpha=0.3)
ax.legend()
ax.set_title("Adam reaches a lower loss than SGD in every epoch")
fig.tight_layout()

# %% [markdown]
# The title is a claim; check it, with the test accuracy too:

# %%
assert all(
    adam < sgd
    for adam, sgd in zip(
        history.history["loss"], sgd_history.history["loss"], strict=True
    )
)
assert test_accuracy > sgd_test_accuracy

# %% [markdown]
# On the same budget Adam wins clearly. SGD is not wrong, only slow: every weight takes
# the same step size $\alpha$, and 0.01 is small for some of them. Adam divides each
# weight's step by the recent size of its gradients, so weights with small gradients
# still move. With more epochs or a tuned learning rate SGD catches up; Adam gets
# there without tuning, which is why the course uses it.

# %% [markdown]
# ## 8. See why this training is fast
#
# Training the course's network takes a few seconds per epoch on a laptop, not a
# minute. Two choices make that happen, and neither changes what is computed.
#
# **`float32` numbers.** Keras's layers compute in `float32`. The bytes become
# `float32` in the `Rescaling` layer, one batch at a time, and stay `float32`;
# `float64` images (what `train_x / 255.0` gives in NumPy) would take twice the bytes
# of `float32`, and `fit` would first convert the whole training set to `float32`: one
# more 188 MB copy, and about a second before the first step, at every call of `fit`.

# %%
hidden = model.get_layer("hidden")
print("scaled batches are", model.get_layer("scale").compute_dtype)
print("the hidden layer's weights are", hidden.kernel.dtype)
print(
    f"all 60,000 images: {train_x.nbytes / 1e6:.0f} MB as bytes, "
    f"{train_x.size * 4 / 1e6:.0f} MB in float32, "
    f"{train_x.size * 8 / 1e6:.0f} MB in float64"
)

# %%
assert model.get_layer("scale").compute_dtype == "float32"
assert hidden.kernel.dtype == "float32"

# %% [markdown]
# **`steps_per_execution=100`.** Every call from Python into TensorFlow has a fixed
# cost, comparable to a whole step of this small network, so Keras runs 100 batches per
# call instead of one, and an epoch pays that cost 19 times instead of 1875.

# %%
calls_per_epoch = math.ceil(n_iter / 100)
print(
    f"{calls_per_epoch} calls per epoch instead of {n_iter}: "
    f"{n_iter / calls_per_epoch:.0f}× fewer"
)

# %%
assert calls_per_epoch == 19

# %% [markdown]
# The network, the batches, the order of the images and every gradient step are the
# same as with one batch per call: section 6 still took 1875 steps per epoch.
#
# **What is left is overhead, not arithmetic.** Each image costs one multiply and one
# add per weight going forward, and about twice that going backward: 6 floating-point
# operations per weight.

# %%
n_weights = 784 * 100 + 100 * 10
flops_per_epoch = 6 * n_weights * len(train_x)
print(f"{flops_per_epoch / 1e9:.1f} billion floating-point operations per epoch")

# %%
assert 28e9 < flops_per_epoch < 29e9

# %% [markdown]
# A current CPU core does tens of billions of such operations per second, so the
# arithmetic of an epoch takes a fraction of a second; the rest of the epoch is the
# fixed cost of 1875 small steps (fetching a batch, launching a few dozen tiny
# operations, updating the weights). The first epoch is slower than the others because
# Keras first turns the model into a TensorFlow graph and sets up its data pipeline;
# later epochs reuse both. `make bench` measures all of this side by side (see the
# README).

# %% [markdown]
# ## What you learned
#
# - The loss for 10 classes is the cross-entropy $L = -\frac1m \sum_i
#   \log p(y^{(i)} \mid x^{(i)})$, `sparse_categorical_crossentropy` in Keras; an
#   untrained network scores about $\log 10 \approx 2.30$.
# - The binary formula $-[y \log p + (1-y)\log(1-p)]$ is its 2-class case, not the
#   loss for MNIST.
# - Gradient descent updates every weight with $\omega := \omega - \alpha
#   \nabla_\omega L$; `tf.GradientTape` computes the gradient and
#   `keras.optimizers.SGD` applies exactly that update.
# - With batches of 32, an epoch is $\lceil 60\,000 / 32 \rceil = 1875$ iterations;
#   a `Rescaling(1 / 255)` layer lets `fit` work on the 47 MB of `uint8` images;
#   5 epochs of Adam train the course's network to more than 97% test accuracy, where
#   plain SGD with the same budget stays behind.
# - `float32` numbers and `steps_per_execution=100` make training fast without
#   changing what it computes.
#
# ## Try it yourself
#
# - Do the graded exercise **`03_train_the_ann`** in `notebooks/exercises`.
# - Repeat section 4 with $\alpha = 1$ and $\alpha = 10$. Does the loss on the batch
#   still go down after one step? What does that tell you about the learning rate?
# - Train with `n_batch = 128`: compute `n_iter` first, then check it against the
#   epoch lines. Is the test accuracy after 5 epochs higher or lower, and why?
