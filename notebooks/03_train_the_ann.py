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
# number smaller. In this lesson you compute both by hand, derive the gradients
# yourself and check them against TensorFlow, train a network with NumPy alone, then
# let Keras train the course's network in a few seconds.
#
# **What you'll learn**
#
# - the cross-entropy loss for 10 classes, with integer and with one-hot labels, and
#   why Keras can compute it from the logits $\mathbf z$ instead of the probabilities;
# - how it relates to the binary formula you may have seen;
# - the gradient-descent update $\omega := \omega - \alpha \nabla_\omega L$, and how
#   **backpropagation** computes $\nabla_\omega L$ layer by layer;
# - what batch size, epoch and iteration mean: 32 images per iteration, 1875
#   iterations per epoch;
# - what Adam computes, and how it compares with plain SGD on the same budget.
#
# **What you need**
#
# - Lesson 2, *The ANN structure*: the 784-100-10 network and its softmax outputs;
# - under a minute to run top to bottom on a 2-core laptop, and 45
#   minutes to read;
# - about 1 GB of free memory, most of it for TensorFlow itself.
#
# **What you'll do**
#
# 1. Load the images and build an untrained network.
# 2. Measure how wrong it is with the cross-entropy loss.
# 3. Relate the loss to the binary formula.
# 4. Take one gradient-descent step by hand.
# 5. Compute the gradients yourself with backpropagation, and train with NumPy.
# 6. Count the iterations of an epoch, and let the network scale its input.
# 7. Train the course's network with Adam and test it.
# 8. Compare Adam with plain SGD, fairly.
#
# An optional last part, *Under the hood*, explains why this training takes seconds
# and fits in 1 GB.
#
# **Notation** (as in every lesson): $\mathbf x$ is an image as 784 numbers,
# $\mathbf z$ the network's 10 outputs before softmax (its **logits**),
# $\mathbf p = \operatorname{softmax}(\mathbf z)$ its 10 probabilities, $y$ the label,
# classes $k = 0, \dots, 9$. Bold letters are vectors; $\log$ is the natural
# logarithm.

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
# Load MNIST as it is stored, grey levels 0..255 in `uint8`; the optional part at the
# end explains why this lesson keeps them as bytes.

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
# For image $i$ with true label $y^{(i)}$, the network gives the probability
# $p^{(i)}_{y^{(i)}}$ to the correct digit. A perfect network gives it 1, and
# $-\log 1 = 0$; a network that gives it 0.01 pays $-\log 0.01 = 4.6$. The
# **cross-entropy** loss of a batch of $m$ images is the mean of these penalties:
#
# $$L = -\frac{1}{m} \sum_{i=1}^{m} \log p^{(i)}_{y^{(i)}}$$
#
# Only the probability of the *true* class enters: raising it lowers the loss, and
# because the 10 probabilities add up to 1, raising it lowers the others.
#
# ### 2.2 Expect about log 10 before training
#
# **Predict, then run.** The untrained network spreads its probability over the 10
# digits almost evenly (row 0 above). What loss do you expect for the batch? Write
# down a number, then run the next cells.
#
# In NumPy, pick for each row $i$ the column $y^{(i)}$, then take the mean of minus
# the logarithm:

# %%
p_true = probs[np.arange(n_batch), batch_y]
loss_by_hand = -np.mean(np.log(p_true))
print(f"cross-entropy by hand: {loss_by_hand:.4f}")

# %% [markdown]
# Each true class gets about $1/10$, so the loss is about $-\log \frac{1}{10} = \log
# 10 \approx 2.30$. Any loss far above that means the network is *confidently wrong*,
# worse than a guess.

# %%
print(f"untrained loss {loss_by_hand:.2f}   log(10) = {np.log(10):.2f}")
assert abs(loss_by_hand - np.log(10)) < 0.3

# %% [markdown]
# Keras calls this loss `sparse_categorical_crossentropy` ("sparse" because the labels
# are the integers 0..9). It returns one value per image; its mean is the batch's
# loss, and it is the number you just computed:

# %%
loss_keras = keras.losses.sparse_categorical_crossentropy(batch_y, probs)
np.testing.assert_allclose(np.mean(loss_keras), loss_by_hand, rtol=1e-6)

# %% [markdown]
# ### 2.3 Write the same loss with one-hot labels
#
# Many texts write the label as a **one-hot** vector $\mathbf e_y$: ten numbers, all 0
# except a 1 at position $y$. Then the loss of one image is a sum over the classes
# $k = 0, \dots, 9$,
#
# $$L = -\sum_{k=0}^{9} e_{y,k} \log p_k ,$$
#
# in which every term but $k = y$ is zero: it is $-\log p_y$ again. Row $i$ of
# `np.eye(10)` is $\mathbf e_i$, so indexing it with the labels gives their one-hot
# rows (Keras's `keras.utils.to_categorical` does the same):

# %%
one_hot = np.eye(10, dtype=np.float32)[batch_y]
print("label", batch_y[0], "-> one-hot", one_hot[0])

# %% [markdown]
# The sum over $k$ gives the loss of section 2.2, and so does Keras's
# `categorical_crossentropy`, the one-hot twin of the sparse loss:

# %%
loss_one_hot = -np.mean(np.sum(one_hot * np.log(probs), axis=1))
np.testing.assert_allclose(loss_one_hot, loss_by_hand, rtol=1e-6)
np.testing.assert_allclose(
    np.mean(keras.losses.categorical_crossentropy(one_hot, probs)),
    loss_by_hand,
    rtol=1e-6,
)
np.testing.assert_array_equal(keras.utils.to_categorical(batch_y, 10), one_hot)

# %% [markdown]
# ### 2.4 Compute the loss from the logits
#
# The network's last layer computes the logits $\mathbf z = W_2^\top \mathbf a +
# \mathbf b_2$ from the hidden layer's output $\mathbf a$, then softmax turns them into
# $\mathbf p$. Recompute the logits from the network's own weights, with the softmax of
# lesson 2:


# %%
def softmax(z: np.ndarray) -> np.ndarray:
    """Return the softmax of each row of z (over the last axis)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


w1, b1, w2, b2 = model.get_weights()
hidden = np.maximum(batch_x.reshape(n_batch, -1) @ w1 + b1, 0)
logits = hidden @ w2 + b2
np.testing.assert_allclose(softmax(logits), probs, rtol=1e-5, atol=1e-7)

# %% [markdown]
# The loss only needs $\log p_y$, and the logarithm undoes the exponential of softmax:
#
# $$\log p_y = z_y - \log \sum_{k=0}^{9} e^{z_k}
#            = (z_y - c) - \log \sum_{k=0}^{9} e^{z_k - c}, \qquad c = \max_k z_k .$$
#
# This **log-softmax** uses the trick of lesson 2's softmax: subtract the largest
# logit, so no exponential overflows, and the sum is at least 1, so its logarithm is
# never $\log 0$. Keras computes the loss this way when you give it the logits and
# `from_logits=True`. On the batch it is the same loss:

# %%
from_probs = keras.losses.sparse_categorical_crossentropy(batch_y, probs)
from_logits = keras.losses.sparse_categorical_crossentropy(
    batch_y, logits, from_logits=True
)
np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5)

# %% [markdown]
# The two differ when the network is very sure. Lesson 2 showed that $e^{1000}$
# overflows; here the opposite happens. Take logits that say "9" with a margin of 200
# for an image that is a 0: its probability $e^{-200}$ is far below the smallest
# `float32`, so softmax rounds it to 0 and $-\log 0$ is infinite. Keras, given the
# probabilities, clips them to at least $10^{-7}$ and reports $-\log 10^{-7} = 16.1$
# whatever the true loss is; given the logits it gets the true loss, 200.

# %%
sure_nine = np.array([[0.0] * 9 + [200.0]], dtype=np.float32)
is_zero = np.array([0])
with np.errstate(divide="ignore"):
    print("-log p_0 from softmax:", -np.log(softmax(sure_nine)[0, 0]))
clipped = keras.losses.sparse_categorical_crossentropy(is_zero, softmax(sure_nine))
exact = keras.losses.sparse_categorical_crossentropy(
    is_zero, sure_nine, from_logits=True
)
print(
    f"Keras from probabilities {float(clipped[0]):.2f}, from logits {float(exact[0]):.2f}"
)

# %%
np.testing.assert_allclose(float(clipped[0]), -np.log(1e-7), rtol=1e-5)
np.testing.assert_allclose(float(exact[0]), 200.0, rtol=1e-6)

# %% [markdown]
# So a network that ends with logits and trains with `from_logits=True` keeps an
# honest loss (and an honest gradient) for its worst mistakes; TensorFlow's
# beginners' tutorial builds its network that way. The course keeps softmax inside the
# network, so that its outputs are probabilities you can read; as long as no true
# class gets a probability below $10^{-7}$, both ways give the same loss, as on the
# batch above.

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
# 0..9. It is the same idea for 2 classes: with $p_1 = p$ and $p_0 = 1 - p$, the
# cross-entropy $-\log p_y$ is $-\log p$ when $y = 1$ and $-\log(1-p)$ when $y = 0$,
# which is exactly the bracket above.
#
# Check it on 8 made-up predictions for a two-class problem:

# %%
rng = np.random.default_rng(0)
p = rng.uniform(0.05, 0.95, size=8)  # p(y=1) for 8 images
y = rng.integers(0, 2, size=8)  # their labels, 0 or 1

binary = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
two_classes = np.stack([1 - p, p], axis=1)  # columns: p_0, p_1
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
# ## 5. Compute the gradients yourself: backpropagation
#
# ### 5.1 Derive them layer by layer
#
# The tape is no magic: it applies the chain rule backwards through the layers, which
# is called **backpropagation**. For one image $\mathbf x$ with label $y$, the network
# of lesson 2 computes
#
# $$\mathbf z_1 = W_1^\top \mathbf x + \mathbf b_1, \quad
#   \mathbf a = \operatorname{ReLU}(\mathbf z_1), \quad
#   \mathbf z_2 = W_2^\top \mathbf a + \mathbf b_2, \quad
#   \mathbf p = \operatorname{softmax}(\mathbf z_2), \quad
#   L = -\log p_y ,$$
#
# with $W_1$ of shape (784, 100) and $W_2$ of shape (100, 10); $\mathbf z_2$ is the
# $\mathbf z$ of section 2.4. Go backwards.
#
# **The logits.** With $\log p_y = z_{2,y} - \log \sum_j e^{z_{2,j}}$ (section 2.4),
# $\partial L / \partial z_{2,k} = p_k - [k = y]$: the probabilities minus the one-hot
# label,
#
# $$\frac{\partial L}{\partial \mathbf z_2} = \mathbf p - \mathbf e_y .$$
#
# **The output layer.** $z_{2,k} = \sum_j W_{2,jk}\, a_j + b_{2,k}$, so
#
# $$\frac{\partial L}{\partial W_2} = \mathbf a \left(\mathbf p - \mathbf e_y
#   \right)^\top \;(100 \times 10), \qquad
#   \frac{\partial L}{\partial \mathbf b_2} = \mathbf p - \mathbf e_y, \qquad
#   \frac{\partial L}{\partial \mathbf a} = W_2 \left(\mathbf p - \mathbf e_y\right).$$
#
# **The ReLU.** $a_j = \max(0, z_{1,j})$ passes the gradient where $z_{1,j} > 0$ and
# blocks it elsewhere: multiply by the mask $[\mathbf z_1 > 0]$ element by element,
#
# $$\boldsymbol\delta_1 = \frac{\partial L}{\partial \mathbf z_1} =
#   \frac{\partial L}{\partial \mathbf a} \odot [\mathbf z_1 > 0] .$$
#
# **The hidden layer**, as the output layer:
#
# $$\frac{\partial L}{\partial W_1} = \mathbf x\, \boldsymbol\delta_1^\top \;(784
#   \times 100), \qquad \frac{\partial L}{\partial \mathbf b_1} = \boldsymbol\delta_1 .$$
#
# **The batch.** The batch's loss is the mean over its $m$ images, so every gradient
# is the mean of the images' gradients. With the images as the rows of a matrix $X$
# (as in lesson 2), the products over images become matrix products: divide
# $P - E$ by $m$ once, and $X^\top \Delta_1$ sums $\mathbf x\, \boldsymbol\delta_1^\top$
# over the images.
#
# ### 5.2 Compute them in NumPy and check them against the tape
#
# The function follows the derivation line by line, for a batch:


# %%
def loss_and_gradients(x, y, w1, b1, w2, b2):
    """Return the batch's cross-entropy and its gradients [dW1, db1, dW2, db2].

    x holds one flattened image per row (m, 784), y the m integer labels.
    """
    m = len(x)
    z1 = x @ w1 + b1  # forward pass
    a = np.maximum(z1, 0)
    p = softmax(a @ w2 + b2)
    loss = -np.mean(np.log(p[np.arange(m), y]))

    dz2 = (p - np.eye(10, dtype=p.dtype)[y]) / m  # p - e_y, averaged
    dw2 = a.T @ dz2
    db2 = dz2.sum(axis=0)
    dz1 = (dz2 @ w2.T) * (z1 > 0)  # back through W2, then the ReLU mask
    dw1 = x.T @ dz1
    db1 = dz1.sum(axis=0)
    return loss, [dw1, db1, dw2, db2]


# %% [markdown]
# Run it on the batch, with the weights the network has now (after the step of
# section 4), and ask the tape for the same gradients:

# %%
numpy_loss, numpy_grads = loss_and_gradients(
    batch_x.reshape(n_batch, -1), batch_y, *model.get_weights()
)
with tf.GradientTape() as tape:
    tape_loss = keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(batch_y, model(batch_x))
    )
tape_grads = tape.gradient(tape_loss, model.trainable_variables)

for name, mine, tapes in zip(
    ["dL/dW1", "dL/db1", "dL/dW2", "dL/db2"], numpy_grads, tape_grads, strict=True
):
    print(f"{name}: shape {mine.shape}, the tape's {tuple(tapes.shape)}")

# %% [markdown]
# The same loss, and all four gradients equal to the tape's, up to `float32`
# rounding:

# %%
np.testing.assert_allclose(numpy_loss, float(tape_loss), rtol=1e-6)
for mine, tapes in zip(numpy_grads, tape_grads, strict=True):
    np.testing.assert_allclose(mine, tapes.numpy(), rtol=1e-4, atol=1e-7)

# %% [markdown]
# ### 5.3 Train with NumPy alone
#
# With the gradients in hand, training needs nothing but NumPy. Start from fresh
# weights drawn as Keras draws them (Glorot-uniform: uniform in
# $\pm\sqrt{6 / (n_\text{in} + n_\text{out})}$, biases 0) and take 500 steps of
# plain SGD with $\alpha = 0.1$ on batches of 32 images, each image once: 16,000 of the
# 60,000. Record the loss of every batch.

# %%
rng = np.random.default_rng(0)
n_input, n_hidden, n_output = 784, 100, 10
limit1 = np.sqrt(6 / (n_input + n_hidden))
limit2 = np.sqrt(6 / (n_hidden + n_output))
params = [
    rng.uniform(-limit1, limit1, (n_input, n_hidden)).astype(np.float32),
    np.zeros(n_hidden, dtype=np.float32),
    rng.uniform(-limit2, limit2, (n_hidden, n_output)).astype(np.float32),
    np.zeros(n_output, dtype=np.float32),
]
order = rng.permutation(len(train_x))
numpy_losses = []
for step in range(500):
    batch = order[step * n_batch : (step + 1) * n_batch]
    x = data.scale_images(train_x[batch]).reshape(n_batch, -1)
    loss, gradients = loss_and_gradients(x, train_y[batch], *params)
    numpy_losses.append(loss)
    for param, gradient in zip(params, gradients, strict=True):
        param -= alpha * gradient

# %% [markdown]
# Test it on the 10,000 test images with the forward pass alone, and compare the
# mean loss of the first and the last 50 batches:

# %% tags=["nbval-ignore-output"]
test_probs = softmax(
    np.maximum(data.scale_images(test_x).reshape(-1, 784) @ params[0] + params[1], 0)
    @ params[2]
    + params[3]
)
numpy_accuracy = np.mean(test_probs.argmax(axis=1) == test_y)
first_loss, last_loss = np.mean(numpy_losses[:50]), np.mean(numpy_losses[-50:])
print(f"mean batch loss: first 50 steps {first_loss:.3f}, last 50 {last_loss:.3f}")
print(f"test accuracy after 500 NumPy steps: {numpy_accuracy:.2%}")

# %% [markdown]
# It learned: the loss starts near $\log 10$ and falls to about 0.3, and about 91 of
# 100 test digits are read correctly after a quarter of an epoch.

# %%
assert 2.0 < numpy_losses[0] < 2.6  # about log 10 at the start
assert 1.0 < first_loss < 1.4
assert 0.22 < last_loss < 0.36
assert 0.895 <= numpy_accuracy <= 0.925

# %%
# figure: loss of each NumPy training step
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, 501), numpy_losses, lw=0.8)
ax.set_xlabel("step (batch of 32 images)")
ax.set_ylabel("batch loss (cross-entropy)")
ax.grid(alpha=0.3)
ax.set_title("500 steps of NumPy SGD: the loss falls from log 10")
fig.tight_layout()

# %% [markdown]
# Keras's `fit` does the same with all its layers, optimizers and losses, and faster;
# from now on it trains.

# %% [markdown]
# ## 6. Count the iterations and scale the input
#
# ### 6.1 Count the iterations of an epoch
#
# An **iteration** is one step on one batch of `n_batch` images. An **epoch** is as
# many iterations as it takes to show every training image once. The course trains
# for `n_epoch` = 5 epochs with batches of 32.
#
# **Predict, then run.** How many iterations does one epoch of the 60,000 training
# images take? And 5 epochs? Work it out, then run the cell.
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
# ### 6.2 Let the network scale its input
#
# `fit` takes the `uint8` images as they are; the division by 255 becomes the
# network's first layer, `Rescaling(1 / 255)`, which scales each batch as it arrives
# (the optional part at the end explains why). Check it on the network of section 4:
# wrapped behind a `Rescaling` layer, it gives the same probabilities for the bytes as
# it gave for the scaled images.

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
# ## 7. Train the course's network with Adam and test it
#
# ### 7.1 Write Adam's update
#
# The course trains with **Adam**, a variant of gradient descent that gives every
# weight its own step size. At step $t$, with the batch's gradient $\mathbf g_t =
# \nabla_\omega L$, it keeps two running means per weight, of the gradient and of its
# square (element by element), starting from $\mathbf m_0 = \mathbf v_0 = \mathbf 0$:
#
# $$\mathbf m_t = \beta_1 \mathbf m_{t-1} + (1 - \beta_1)\, \mathbf g_t, \qquad
#   \mathbf v_t = \beta_2 \mathbf v_{t-1} + (1 - \beta_2)\, \mathbf g_t^2 .$$
#
# Starting from 0 makes both too small in the first steps ($\mathbf m_1$ is only
# $0.1\,\mathbf g_1$), so Adam divides by what is missing, the **bias corrections**,
# and steps:
#
# $$\hat{\mathbf m}_t = \frac{\mathbf m_t}{1 - \beta_1^t}, \qquad
#   \hat{\mathbf v}_t = \frac{\mathbf v_t}{1 - \beta_2^t}, \qquad
#   \omega := \omega - \alpha\, \frac{\hat{\mathbf m}_t}{\sqrt{\hat{\mathbf v}_t} +
#   \epsilon} .$$
#
# The gradient's size cancels between $\hat{\mathbf m}_t$ and
# $\sqrt{\hat{\mathbf v}_t}$: in the first step $\hat{\mathbf m}_1 = \mathbf g_1$ and
# $\hat{\mathbf v}_1 = \mathbf g_1^2$, so every weight whose gradient is well above
# $\epsilon$ moves by almost exactly $\alpha$, whether its gradient is large or small.
# Weights with small gradients move as fast as the others.
# Keras's defaults are $\alpha = 0.001$, $\beta_1 = 0.9$, $\beta_2 = 0.999$ and
# $\epsilon = 10^{-7}$. Keras computes the same update rearranged, with $\epsilon$
# added before the correction of $\mathbf v_t$:
# $\omega := \omega - \alpha_t\, \mathbf m_t / (\sqrt{\mathbf v_t} + \epsilon)$ with
# $\alpha_t = \alpha \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)$.

# %%
adam = keras.optimizers.Adam()
print(
    f"learning rate {float(adam.learning_rate):g}, beta_1 {adam.beta_1}, "
    f"beta_2 {adam.beta_2}, epsilon {adam.epsilon}"
)

# %%
np.testing.assert_allclose(float(adam.learning_rate), 0.001, rtol=1e-6)
assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.999, 1e-7)

# %% [markdown]
# ### 7.2 Check two Adam steps by hand
#
# As for SGD in section 4: take two steps on a copy of the network, on two batches,
# with Keras's `Adam` and with the formulas above in NumPy, and compare the weights.

# %%
net = keras.models.clone_model(model)
net.set_weights(model.get_weights())
lr, beta1, beta2, eps = 0.001, 0.9, 0.999, 1e-7
mine = [w.numpy() for w in net.trainable_variables]
m = [np.zeros_like(w) for w in mine]
v = [np.zeros_like(w) for w in mine]
start_w1 = mine[0].copy()

for t in (1, 2):
    images = data.scale_images(train_x[t * n_batch : (t + 1) * n_batch])
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                train_y[t * n_batch : (t + 1) * n_batch], net(images)
            )
        )
    grads = tape.gradient(loss, net.trainable_variables)
    adam.apply(grads, net.trainable_variables)  # Keras's step

    alpha_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    for j, g in enumerate(grads):  # the same step by hand
        m[j] = beta1 * m[j] + (1 - beta1) * g.numpy()
        v[j] = beta2 * v[j] + (1 - beta2) * g.numpy() ** 2
        mine[j] = mine[j] - alpha_t * m[j] / (np.sqrt(v[j]) + eps)

    for w, expected in zip(net.trainable_variables, mine, strict=True):
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-7)
    if t == 1:  # kept for the next cell
        first_g, first_move = grads[0].numpy(), np.abs(mine[0] - start_w1)
del net

# %% [markdown]
# **Predict, then run.** In the first step, how far did a weight of $W_1$ move whose
# gradient was 0.002? And one whose gradient was 0.2? By section 7.1, both by about
# $\alpha = 0.001$, where SGD would move the second 100 times as far as the first. A
# weight with no gradient (its pixel is 0 in every image of the batch, or its unit is
# off for all of them) does not move:

# %%
not_tiny = np.abs(first_g) > 1e-3
assert not_tiny.sum() > 10_000  # a third of W1's weights
np.testing.assert_allclose(first_move[not_tiny], lr, rtol=0.01)
np.testing.assert_array_equal(first_move[first_g == 0], 0)  # no gradient, no step

# %% [markdown]
# ### 7.3 Compile with the loss and the optimizer
#
# `compile` tells Keras which loss to minimise, which optimizer to use and which
# metric to report. Start again from a fresh network with the same seed, and keep its
# starting weights for section 8. (`steps_per_execution=100` changes how fast
# training runs, not what it computes; the optional part at the end explains it.)

# %%
repro.set_seed(42)
model = models.build_ann(rescale=True)
initial_weights = model.get_weights()  # kept for the comparison in section 8

model.compile(
    optimizer=keras.optimizers.Adam(),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)

# %% [markdown]
# ### 7.4 Train for 5 epochs
#
# `fit` runs the loop of sections 4 and 5: every epoch it shuffles the training
# images, cuts them into batches of `n_batch`, and takes one Adam step per batch.
# `verbose=2` prints one line per epoch: iterations done, time taken (masked as `TIME`
# when the notebook is tested, because it varies), and the mean loss and accuracy over
# the epoch. The digits depend on the machine's floating-point arithmetic in their
# last places; the checks after each training hold on any machine.

# %% tags=["nbval-ignore-output"]
history = model.fit(train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %% [markdown]
# Each line starts with `1875/1875`: every epoch took `n_iter` steps, as computed. The
# loss falls every epoch, to about 0.05, while the training accuracy rises to about
# 98.7%:

# %%
loss_per_epoch = history.history["loss"]
assert history.params["steps"] == n_iter
assert all(np.diff(loss_per_epoch) < 0)
assert 0.24 < loss_per_epoch[0] < 0.30
assert 0.040 < loss_per_epoch[-1] < 0.056
assert 0.983 < history.history["accuracy"][-1] < 0.990

# %% [markdown]
# ### 7.5 Plot the training curves
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
# ### 7.6 Test it on images it has never seen
#
# The numbers above are measured on the training images, while the weights were
# still changing. The honest measure is the accuracy on the 10,000 test images, which
# training never touched.

# %% tags=["nbval-ignore-output"]
test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")

# %% [markdown]
# The trained network reads about 97.5 of 100 test digits correctly, against 10 of 100
# before training:

# %%
assert 0.970 <= test_accuracy <= 0.980
assert 0.070 <= test_loss <= 0.095

# %% [markdown]
# Lesson 4 looks at the digits it gets wrong.

# %% [markdown]
# ## 8. Compare Adam with plain SGD, fairly
#
# Is Adam worth it? A fair comparison changes only the optimizer: train the same
# network with plain SGD from the **same starting weights**, on the same batches (with
# the same seed, `fit` shuffles the images in the same order), for the same 5
# epochs of 1875 iterations. Use SGD's learning rate of section 4, $\alpha = 0.1$,
# and, to see what the learning rate does, also Keras's default for SGD, 0.01.
#
# What still differs is what a learning rate means. SGD's step is $\alpha$ times the
# gradient, so it is large where the gradient is large; Adam's step is about
# $\alpha = 0.001$ for every weight (section 7.1). Each optimizer uses its own usual
# scale; no single number makes the two the same.
#
# **Predict, then run.** Will SGD at 0.1 end above or below Adam's training loss?
# And SGD at 0.01?


# %%
def train_with_sgd(learning_rate: float) -> tuple[keras.callbacks.History, float]:
    """Train the course's network with SGD from initial_weights, as Adam trained.

    Return the history of fit and the test accuracy.
    """
    repro.set_seed(42)
    sgd_model = models.build_ann(rescale=True)
    sgd_model.set_weights(initial_weights)
    sgd_model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=100,
    )
    sgd_history = sgd_model.fit(
        train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=0
    )
    _, sgd_accuracy = sgd_model.evaluate(test_x, test_y, verbose=0)
    return sgd_history, sgd_accuracy


# %% tags=["nbval-ignore-output"]
sgd_history, sgd_accuracy = train_with_sgd(0.1)
slow_history, slow_accuracy = train_with_sgd(0.01)
print("optimizer         training loss per epoch                   test accuracy")
for name, losses, accuracy in [
    ("Adam, 0.001", history.history["loss"], test_accuracy),
    ("SGD, 0.1", sgd_history.history["loss"], sgd_accuracy),
    ("SGD, 0.01", slow_history.history["loss"], slow_accuracy),
]:
    print(f"{name:16s}", " ".join(f"{x:.4f}" for x in losses), f"   {accuracy:.2%}")

# %% [markdown]
# Adam reaches a lower training loss than SGD at 0.1 in every epoch (about 0.05
# against 0.07 after 5) and a slightly higher test accuracy (about 97.5% against
# 97.2%); SGD at Keras's default 0.01 stays far behind (about 93.5%).

# %%
adam_losses = history.history["loss"]
sgd_losses = sgd_history.history["loss"]
slow_losses = slow_history.history["loss"]
assert all(
    a < s < w for a, s, w in zip(adam_losses, sgd_losses, slow_losses, strict=True)
)
assert 0.060 < sgd_losses[-1] < 0.080
assert sgd_losses[-1] - adam_losses[-1] > 0.012
assert 0.967 <= sgd_accuracy <= 0.977 and sgd_accuracy < test_accuracy
assert 0.925 <= slow_accuracy <= 0.945

# %%
# figure: training loss per epoch, Adam against SGD
epochs = np.arange(1, n_epoch + 1)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, adam_losses, marker="o", label="Adam, α = 0.001")
ax.plot(epochs, sgd_losses, marker="o", label="SGD, α = 0.1")
ax.plot(epochs, slow_losses, marker="o", label="SGD, α = 0.01")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (cross-entropy)")
ax.set_xticks(epochs)
ax.grid(alpha=0.3)
ax.legend()
ax.set_title("Adam reaches the lowest loss; SGD depends on α")
fig.tight_layout()

# %% [markdown]
# On the same budget Adam wins, narrowly against SGD with a good learning rate and
# clearly against SGD with a poor one. SGD is not wrong: with $\alpha = 0.1$ it is
# close, with 0.01 it is slow, because every weight takes a step proportional to its
# gradient and small gradients make small steps. Adam's step does not depend on the
# gradient's size, so its default works without tuning, which is why the course uses
# it.

# %% [markdown]
# ## Under the hood: why this training is fast and small (optional)
#
# This part explains engineering choices, not ideas of machine learning; skip it on a
# first reading.
#
# ### Why the images stay bytes
#
# `fit` copies the arrays you give it into TensorFlow, several times over. The
# `float32` images take 188 MB and their copies would take this lesson past 1 GB of
# memory; as bytes they take 47 MB. That is why the division by 255 is the network's
# first layer (section 6.2).
#
# ### Why `float32`
#
# Keras's layers compute in `float32`. The bytes become `float32` in the `Rescaling`
# layer, one batch at a time, and stay `float32`; `float64` images (what
# `train_x / 255.0` gives in NumPy) would take twice the bytes of `float32`, and `fit`
# would first convert the whole training set to `float32`: one more 188 MB copy, and
# about a second before the first step, at every call of `fit`.

# %%
hidden_layer = model.get_layer("hidden")
print("scaled batches are", model.get_layer("scale").compute_dtype)
print("the hidden layer's weights are", hidden_layer.kernel.dtype)
print(
    f"all 60,000 images: {train_x.nbytes / 1e6:.0f} MB as bytes, "
    f"{train_x.size * 4 / 1e6:.0f} MB in float32, "
    f"{train_x.size * 8 / 1e6:.0f} MB in float64"
)

# %%
assert model.get_layer("scale").compute_dtype == "float32"
assert hidden_layer.kernel.dtype == "float32"

# %% [markdown]
# ### Why `steps_per_execution=100`
#
# Every call from Python into TensorFlow has a fixed cost, comparable to a whole step
# of this small network, so Keras runs 100 batches per call instead of one, and an
# epoch pays that cost 19 times instead of 1875.

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
# same as with one batch per call: section 7 still took 1875 steps per epoch.
#
# ### What is left is overhead, not arithmetic
#
# Each image costs one multiply and one add per weight going forward, and about twice
# that going backward (section 5: two matrix products per layer): 6 floating-point
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
# later epochs reuse both. The course's benchmark measures all of this side by side
# (see the README).

# %% [markdown]
# ## What you learned
#
# - The loss for 10 classes is the cross-entropy $L = -\frac1m \sum_i
#   \log p^{(i)}_{y^{(i)}}$, or $-\sum_k e_{y,k} \log p_k$ with one-hot labels
#   (`sparse_categorical_crossentropy`, `categorical_crossentropy`); an untrained
#   network scores about $\log 10 \approx 2.30$. From the logits, with
#   `from_logits=True`, Keras computes it with a stable log-softmax.
# - The binary formula $-[y \log p + (1-y)\log(1-p)]$ is its 2-class case, not the
#   loss for MNIST.
# - Gradient descent updates every weight with $\omega := \omega - \alpha
#   \nabla_\omega L$. Backpropagation computes the gradient layer by layer, starting
#   from $\partial L / \partial \mathbf z_2 = \mathbf p - \mathbf e_y$; your NumPy
#   gradients equal `tf.GradientTape`'s, and 500 NumPy steps already read about 91% of
#   the test digits.
# - With batches of 32, an epoch is $\lceil 60\,000 / 32 \rceil = 1875$ iterations;
#   5 epochs of Adam train the course's network to about 97.5% test accuracy.
# - Adam scales each weight's step by its running gradient statistics (checked by
#   hand against Keras); on the same budget it beats SGD, narrowly at SGD's good
#   learning rate 0.1 and clearly at 0.01.
#
# ## Try it yourself
#
# Your instructor hands out the graded exercise **Exercise 3: Train the ANN**
# (`03_train_the_ann.ipynb`). It practises this lesson part by part:
#
# - **Part 1, softmax**, and **part 2, cross-entropy**: sections 2.1 to 2.4 (lesson 2
#   for softmax);
# - **Part 3, iterations per epoch**: section 6.1;
# - **Part 4, compile and train the model**: sections 7.3 and 7.4.
#
# To explore further in this notebook: repeat section 4 with $\alpha = 1$ and
# $\alpha = 10$ (does the loss on the batch still go down after one step?), or run
# section 5.3 with $\alpha = 0.01$ and compare the loss curve.
