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
# # Lesson 2 · The ANN structure
#
# The course's network is small enough to write out by hand: 784 inputs, one hidden
# layer of 100 units, 10 outputs. In this lesson you compute what it does with NumPy,
# formula by formula, then build the same network with Keras and prove that the two
# give the same numbers. Nothing is trained yet, and you will see what that means.
#
# **What you'll learn**
#
# - what the network's weights and biases are, and how many there are;
# - the three formulas of the forward pass: the linear activation
#   $\mathbf z_1 = W_1^\top \mathbf x + \mathbf b_1$, ReLU, and softmax, which turns
#   the logits $\mathbf z$ into probabilities $\mathbf p$;
# - how to build the network with `keras.Sequential` and read `model.summary()`;
# - how Keras chooses the starting weights;
# - why a network that has not been trained only guesses.
#
# **What you need**
#
# - Lesson 1, *The MNIST data*: the images are (n, 28, 28) `float32` in [0, 1];
# - under 20 seconds to run top to bottom, and about 30 minutes to read;
# - under 1 GB of memory, half of it for TensorFlow.
#
# **What you'll do**
#
# 1. Load the images, fix the layer sizes and draw the network.
# 2. Compute the hidden layer by hand: weights, linear activation, ReLU.
# 3. Compute the output layer by hand: logits, softmax.
# 4. Run the whole forward pass on a batch.
# 5. Build the same network in Keras, count its parameters and look at its starting
#    weights.
# 6. Give Keras your weights and check that it computes what you computed.
# 7. Ask the untrained network what it sees.
#
# Section 8, *Under the hood*, is optional: why Keras and NumPy agree only up to the
# last digits.
#
# **Notation.** Bold letters are vectors: $\mathbf x$ the 784 inputs of an image,
# $\mathbf z$ the output layer's 10 logits, $\mathbf p$ its 10 probabilities; $y$ is
# the label, and the classes are $k = 0, \dots, 9$. $\mathcal N(\mu, \sigma^2)$ is
# the normal distribution with mean $\mu$ and variance $\sigma^2$, and $\log$ is the
# natural logarithm.

# %% [markdown]
# ## 1. Load the images, fix the layer sizes and draw the network
#
# Silence TensorFlow before Keras imports it, then import the rest.

# %%
from course_utils import repro

repro.quiet_tensorflow()

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, models, plots

# %% [markdown]
# Load MNIST already scaled to `float32` in [0, 1], as lesson 1 explained.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist(scaled=True)
print(train_x.shape, train_x.dtype, test_x.shape, test_x.dtype)

# %% [markdown]
# The network has three layers of numbers:
#
# | layer  | size | what it holds |
# |--------|------|---------------|
# | input  | `n_input` = 784 | the 28 × 28 grey levels of one image, flattened |
# | hidden | `n_hidden` = 100 | 100 units, each looking at all 784 inputs |
# | output | `n_output` = 10 | one probability for each digit 0..9 |

# %%
n_input = 28 * 28
n_hidden = 100
n_output = 10

# %% [markdown]
# Every input is connected to every hidden unit by a weight, and every hidden unit to
# every output: the weights of a layer form a matrix, one row per input and one column
# per unit, and each unit adds a bias. The picture shows a few of the units of each
# layer, and the shapes of the four arrays you will build.

# %%
# figure: the network 784 -> 100 -> 10 and the shapes of its weights


def draw_layer(
    ax: plt.Axes, x: float, n_units: int, shown: int, label: str
) -> np.ndarray:
    """Draw `shown` units of a layer of `n_units` at x; return their heights."""
    heights = np.linspace(0.9, 0.1, shown)
    if shown < n_units:  # leave a gap for the units not drawn
        heights = np.r_[heights[: shown // 2], heights[shown // 2 + 1 :]]
        ax.text(x, 0.5, "⋮", ha="center", va="center", fontsize=16)
    ax.scatter(
        np.full(len(heights), x),
        heights,
        s=160,
        zorder=3,
        facecolor="white",
        edgecolor="black",
    )
    ax.text(x, -0.02, label, ha="center", va="top")
    return heights


fig, ax = plt.subplots(figsize=(8, 4.6))
columns = [
    (0.0, n_input, 9, "input $\\mathbf{x}$\n784 grey levels"),
    (1.0, n_hidden, 9, "hidden layer $\\mathbf{a}$\n100 ReLU units"),
    (2.0, n_output, 10, "output $\\mathbf{p}$\n10 softmax units,\none per digit 0..9"),
]
heights = [draw_layer(ax, *column) for column in columns]
for left in range(2):
    for h_from in heights[left]:
        for h_to in heights[left + 1]:
            ax.plot([left, left + 1], [h_from, h_to], color="grey", lw=0.3, zorder=1)
ax.text(
    0.5, 1.0, "$W_1$: (784, 100)\n$\\mathbf{b}_1$: (100,)", ha="center", va="bottom"
)
ax.text(1.5, 1.0, "$W_2$: (100, 10)\n$\\mathbf{b}_2$: (10,)", ha="center", va="bottom")
ax.set_xlim(-0.4, 2.4)
ax.set_ylim(-0.3, 1.15)
ax.axis("off")
ax.set_title("The course's network: 784 inputs → 100 hidden units → 10 outputs")
plt.show()

# %% [markdown]
# Work on a small batch of training images so that every array stays printable.
# Flatten them into rows of 784 numbers, the way lesson 1 did.

# %%
n_batch = 4
batch_x = train_x[:n_batch]
batch_y = train_y[:n_batch]
flat_x = batch_x.reshape(n_batch, n_input)
print("labels:", batch_y, "  images:", batch_x.shape, "→ rows:", flat_x.shape)

# %% [markdown]
# ## 2. Compute the hidden layer by hand
#
# ### 2.1 Draw the weights and biases
#
# Hidden unit $j$ multiplies every input $x_i$ by its own **weight** $w_{ij}$ and adds
# its **bias** $b_j$. With 784 inputs and 100 units, the weights form a matrix $W_1$
# of shape (784, 100), one column per unit, and the biases a vector $\mathbf b_1$ of
# 100 numbers: `w_hidden` and `b_hidden` in the code.
#
# Before training nobody knows good values, so start from random ones: draw each
# weight from a normal distribution with mean 0 and standard deviation 0.1, that is
# variance $0.1^2 = 0.01$: $w_{ij} \sim \mathcal N(0, 0.1^2)$. Set every bias to 0.
# A seeded NumPy `Generator` gives the same numbers on every run.

# %%
rng = np.random.default_rng(seed=42)
w_hidden = rng.normal(0.0, 0.1, size=(n_input, n_hidden)).astype(np.float32)
b_hidden = np.zeros(n_hidden, dtype=np.float32)
print("w_hidden", w_hidden.shape, "  b_hidden", b_hidden.shape)
print(f"weights: mean {w_hidden.mean():.4f}, standard deviation {w_hidden.std():.4f}")

# %%
assert w_hidden.shape == (784, 100) and b_hidden.shape == (100,)
assert abs(w_hidden.std() - 0.1) < 0.002

# %% [markdown]
# ### 2.2 Compute the linear activation
#
# Each hidden unit first computes a weighted sum of the inputs plus its bias, its
# **linear activation**:
#
# $$
# z_{1,j} = \sum_{i=1}^{784} w_{ij}\, x_i + b_j,
# \qquad\text{or, for all 100 units at once,}\qquad
# \mathbf z_1 = W_1^\top \mathbf x + \mathbf b_1 .
# $$
#
# In NumPy an image is a *row* of 784 numbers, so $W_1^\top \mathbf x$ becomes
# `x @ w_hidden`, and a batch of rows $X$ is computed in one product, $X W_1 +
# \mathbf b_1$. Adding `b_hidden`, of shape (100,), adds the same biases to every row.
#
# **Predict, then run:** `flat_x` has shape (4, 784) and `w_hidden` (784, 100). What
# shape does `flat_x @ w_hidden + b_hidden` have?

# %%
z_hidden = flat_x @ w_hidden + b_hidden
print(flat_x.shape, "@", w_hidden.shape, "+", b_hidden.shape, "→", z_hidden.shape)

# %% [markdown]
# One row per image, one column per hidden unit. The matrix product is only the sum in
# the formula, done for every unit and every image. Check it for unit 0 of the first
# image:

# %%
z_00 = np.sum(w_hidden[:, 0] * flat_x[0]) + b_hidden[0]
print(f"by the sum: {z_00:.5f}   by the product: {z_hidden[0, 0]:.5f}")

# %%
np.testing.assert_allclose(z_00, z_hidden[0, 0], rtol=1e-5)

# %% [markdown]
# ### 2.3 Apply ReLU
#
# A network that only added weighted sums would be one big linear function, however
# many layers it had. The hidden layer bends it with an **activation function**. The
# course uses the rectified linear unit, ReLU, applied to each number:
#
# $$
# \operatorname{ReLU}(z) = \max(0, z), \qquad \mathbf a = \operatorname{ReLU}(\mathbf z_1).
# $$


# %%
def relu(z: np.ndarray) -> np.ndarray:
    """Return max(0, z) element by element."""
    return np.maximum(z, 0)


# %% [markdown]
# Try it on a few numbers, and compare it with Keras's own `keras.activations.relu`:

# %%
z_demo = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=np.float32)
print("z:      ", z_demo)
print("ReLU(z):", relu(z_demo))

# %%
np.testing.assert_allclose(
    relu(z_hidden), keras.ops.convert_to_numpy(keras.activations.relu(z_hidden))
)

# %%
# figure: the ReLU function
z_line = np.linspace(-3, 3, 121)
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(z_line, relu(z_line))
ax.set_xlabel("linear activation z")
ax.set_ylabel("ReLU(z)")
ax.set_title("ReLU passes positive z and turns negative z into 0")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Apply it to the hidden layer. With random weights, about half of the 400 linear
# activations are negative, so about half of the units output 0.

# %%
a_hidden = relu(z_hidden)
print("a_hidden", a_hidden.shape, f"  share of zeros: {np.mean(a_hidden == 0):.0%}")

# %%
assert 0.4 < np.mean(a_hidden == 0) < 0.6

# %% [markdown]
# ## 3. Compute the output layer by hand
#
# ### 3.1 Compute the logits
#
# The output layer does the same weighted sum, now over the 100 hidden outputs
# $\mathbf a$, with its own weights $W_2$ of shape (100, 10) and biases $\mathbf b_2$
# (`w_output` and `b_output`):
#
# $$
# \mathbf z = W_2^\top \mathbf a + \mathbf b_2 .
# $$
#
# Its 10 numbers $z_0, \dots, z_9$, one per digit, can be any real numbers: they are
# the network's **logits**, not yet probabilities. (When both layers are meant, the
# course writes $\mathbf z_1$ for the hidden layer's linear activation and
# $\mathbf z_2$ for the logits.) Draw $W_2$ the same way as $W_1$.

# %%
w_output = rng.normal(0.0, 0.1, size=(n_hidden, n_output)).astype(np.float32)
b_output = np.zeros(n_output, dtype=np.float32)
z_output = a_hidden @ w_output + b_output
print(a_hidden.shape, "@", w_output.shape, "+", b_output.shape, "→", z_output.shape)

# %%
with np.printoptions(precision=3, suppress=True):
    print(z_output)

# %% [markdown]
# ### 3.2 Turn the logits into probabilities with softmax
#
# **Softmax** makes the 10 logits positive, with the exponential, and divides them by
# their sum so that they add up to 1:
#
# $$
# p_k = \operatorname{softmax}(\mathbf z)_k = \frac{e^{z_k}}{\sum_{m=0}^{9} e^{z_m}},
# \qquad k = 0, \dots, 9 .
# $$
#
# The largest logit gets the largest probability. Subtracting the same number from
# every $z_k$ does not change the result (it cancels between top and bottom), so
# subtract the largest one first: then no exponential can overflow.


# %%
def softmax(z: np.ndarray) -> np.ndarray:
    """Return the softmax of each row of logits z (over the last axis)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# %% [markdown]
# Check `softmax` against Keras's `keras.activations.softmax` on the logits:

# %%
probs = softmax(z_output)
np.testing.assert_allclose(
    probs,
    keras.ops.convert_to_numpy(keras.activations.softmax(z_output)),
    rtol=1e-5,
    atol=1e-6,
)

# %% [markdown]
# Every row now holds 10 probabilities that add up to 1:

# %%
with np.printoptions(precision=3, suppress=True):
    print(probs)
print("row sums:", probs.sum(axis=1).round(6))

# %%
np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)

# %% [markdown]
# ### 3.3 Keep the logits when you need the log of a probability
#
# Logits can be large, for example once a network is trained and sure of itself.
# Without the subtraction, large logits break the formula: $e^{1000}$ is larger than
# any `float32`, and infinity divided by infinity is "not a number" (`nan`).

# %%
big_logits = np.array([1000.0, 1001.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    print("naive: ", np.exp(big_logits) / np.exp(big_logits).sum())
print("stable:", softmax(big_logits))

# %% [markdown]
# The subtraction fixes the probabilities, but not everything. Training (lesson 3)
# scores a network by $-\log p_y$, the log of the probability it gives the right
# label. When one logit is far below another, its probability is smaller than the
# smallest `float32` (about $10^{-45}$) and rounds to 0, and $\log 0 = -\infty$.
# From the logits themselves the log stays finite, with the same subtraction:
#
# $$
# \log p_k = (z_k - z_{\max}) - \log \sum_{m=0}^{9} e^{z_m - z_{\max}} .
# $$


# %%
def log_softmax(z: np.ndarray) -> np.ndarray:
    """Return the log of the softmax of each row of logits z, computed stably."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# %%
far_logits = np.array([0.0, 1000.0], dtype=np.float32)
with np.errstate(divide="ignore"):
    print("log of the probabilities:", np.log(softmax(far_logits)))
print("log-softmax of the logits:", log_softmax(far_logits))

# %%
with np.errstate(divide="ignore"):
    assert np.isneginf(np.log(softmax(far_logits))[0])
np.testing.assert_array_equal(log_softmax(far_logits), [-1000.0, 0.0])
np.testing.assert_allclose(
    log_softmax(z_output),
    keras.ops.convert_to_numpy(keras.ops.log_softmax(z_output)),
    rtol=1e-5,
    atol=1e-6,
)

# %% [markdown]
# So a loss is best computed from the logits, not from the probabilities. Keras's
# losses can take the logits for that reason: lesson 3 shows their option
# `from_logits=True`.

# %% [markdown]
# ## 4. Run the whole forward pass on a batch
#
# Put the steps together into one function: flatten, hidden layer, output layer.
# This computation from image to probabilities is the network's **forward pass**:
#
# $$
# \mathbf p = \operatorname{softmax}\bigl(W_2^\top \operatorname{ReLU}(W_1^\top
# \mathbf x + \mathbf b_1) + \mathbf b_2\bigr).
# $$


# %%
def forward(images: np.ndarray) -> np.ndarray:
    """Return the 10 class probabilities of each (28, 28) image, computed in NumPy."""
    flat = images.reshape(len(images), n_input)
    a = relu(flat @ w_hidden + b_hidden)
    return softmax(a @ w_output + b_output)


# %% [markdown]
# **Predict, then run:** for the batch of 4 images, write down the shape of the data
# after each step (flattened, hidden layer before and after ReLU, logits,
# probabilities). Then follow it through the forward pass:

# %%
numpy_probs = forward(batch_x)
steps = {
    "images": batch_x,
    "flattened": flat_x,
    "hidden, z1": z_hidden,
    "hidden, ReLU(z1)": a_hidden,
    "logits, z": z_output,
    "softmax, p": numpy_probs,
}
for step, array in steps.items():
    print(f"{step:>16}: {array.shape}")

# %%
np.testing.assert_allclose(numpy_probs, probs)
assert numpy_probs.dtype == np.float32

# %% [markdown]
# ## 5. Build the same network in Keras
#
# ### 5.1 Add the layers one by one
#
# Keras's `Sequential` model is a stack of layers, each feeding the next. Declare the
# input, (28, 28) images, then add what you just computed by hand:
#
# - `Flatten` turns each image into 784 numbers;
# - `Dense(n_hidden, activation="relu")` is
#   $\operatorname{ReLU}(W_1^\top\mathbf x + \mathbf b_1)$: "dense" because every
#   unit sees every input;
# - `Dense(n_output, activation="softmax")` is
#   $\operatorname{softmax}(W_2^\top\mathbf a + \mathbf b_2)$.
#
# Keras draws the starting weights at random, so seed it first: `repro.set_seed`
# seeds Python, NumPy and TensorFlow together.

# %%
repro.set_seed(42)
model = keras.Sequential(name="ann_784_100_10")
model.add(keras.Input(shape=(28, 28), name="image"))
model.add(keras.layers.Flatten(name="flatten"))
model.add(keras.layers.Dense(n_hidden, activation="relu", name="hidden"))
model.add(keras.layers.Dense(n_output, activation="softmax", name="output"))

# %% [markdown]
# `model.summary()` lists the layers, the shape of their output and their number of
# parameters. `None` in a shape stands for the batch size, which can be anything.
#
# **Predict, then run:** what output shape will each of the three layers show, and
# how many parameters will the whole network have? Count the weights and biases from
# the shapes in the picture of section 1.

# %%
model.summary()

# %% [markdown]
# ### 5.2 Count the parameters
#
# The parameters are all the numbers training may change: the weights and the biases.
#
# $$
# \underbrace{784 \cdot 100 + 100}_{\text{hidden}} +
# \underbrace{100 \cdot 10 + 10}_{\text{output}}
# = 78\,500 + 1\,010 = 79\,510 .
# $$
#
# `Flatten` only rearranges numbers, so it has none.

# %%
n_params = (n_input * n_hidden + n_hidden) + (n_hidden * n_output + n_output)
print(f"by the formula: {n_params:,}   by Keras: {model.count_params():,}")

# %%
assert n_params == 79_510
assert model.count_params() == 79_510

# %% [markdown]
# ### 5.3 See how Keras chose the starting weights
#
# Keras did not draw its weights from $\mathcal N(0, 0.1^2)$ as you did. A `Dense`
# layer starts its biases at 0 and its weights **Glorot-uniform** (after Xavier
# Glorot and Yoshua Bengio, 2010): uniform between $-\ell$ and $\ell$, with
#
# $$
# \ell = \sqrt{\frac{6}{n_{\text{in}} + n_{\text{out}}}},
# $$
#
# where $n_{\text{in}}$ is the layer's number of inputs and $n_{\text{out}}$ its number
# of units. A uniform distribution on $[-\ell, \ell]$ has standard deviation
# $\ell / \sqrt 3$, so the weights' variance is $2 / (n_{\text{in}} + n_{\text{out}})$:
# the more connections a layer has, the smaller its weights, which keeps the size of
# the numbers about the same from layer to layer.
#
# **Predict, then run:** for the hidden layer, $\ell = \sqrt{6 / 884}$. Is its
# standard deviation larger or smaller than your 0.1?

# %%
for name in ("hidden", "output"):
    kernel, bias = model.get_layer(name).get_weights()
    n_in, n_out = kernel.shape
    limit = np.sqrt(6 / (n_in + n_out))
    print(
        f"{name:>6}: limit {limit:.4f}, largest |w| {np.abs(kernel).max():.4f}, "
        f"std {kernel.std():.4f} (limit/√3 = {limit / np.sqrt(3):.4f}), "
        f"biases all 0: {not bias.any()}"
    )

# %%
for name in ("hidden", "output"):
    kernel, bias = model.get_layer(name).get_weights()
    limit = np.sqrt(6 / sum(kernel.shape))
    assert np.abs(kernel).max() <= limit and not bias.any()
    np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.02)
hidden_std = model.get_layer("hidden").get_weights()[0].std()
assert 0.45 < hidden_std / w_hidden.std() < 0.55

# %% [markdown]
# Keras's hidden weights are about half as spread out as yours: a standard deviation
# of about 0.048 against 0.1. The output layer, where $n_{\text{in}} + n_{\text{out}}$
# is only 110, gets about 0.135, a little more than your 0.1. Section 6 replaces
# Keras's weights with yours so that you can compare the two computations.

# %% [markdown]
# ### 5.4 Use the saved version
#
# Every later lesson and exercise needs this network, so we saved this as
# `course_utils.models.build_ann`. Check that it builds the same layers, with weights
# of the same shapes:


# %%
def weight_shapes(network: keras.Model) -> list[tuple[str, tuple[int, ...]]]:
    """Return (layer name, shape) for every weight array of a network."""
    return [
        (layer.name, tuple(weight.shape))
        for layer in network.layers
        for weight in layer.weights
    ]


# %%
saved = models.build_ann()
for name, shape in weight_shapes(saved):
    print(f"{name:>6}: {shape}")

# %%
assert weight_shapes(saved) == weight_shapes(model)
assert saved.output_shape == model.output_shape == (None, 10)
del saved

# %% [markdown]
# The hidden layer's `kernel` has the shape of your `w_hidden`, (784, 100): Keras
# computes `x @ kernel + bias`, exactly your `flat_x @ w_hidden + b_hidden`.

# %% [markdown]
# ## 6. Give Keras your weights and compare
#
# Replace Keras's starting weights with yours: a `Dense` layer's weights are the list
# `[kernel, bias]`.

# %%
model.get_layer("hidden").set_weights([w_hidden, b_hidden])
model.get_layer("output").set_weights([w_output, b_output])

# %% [markdown]
# `model.get_weights()` now returns your four arrays, in the order
# $[W_1, \mathbf b_1, W_2, \mathbf b_2]$:

# %%
for kept, yours in zip(
    model.get_weights(), [w_hidden, b_hidden, w_output, b_output], strict=True
):
    np.testing.assert_array_equal(kept, yours)

# %% [markdown]
# Now the Keras model and your NumPy `forward` hold the same numbers, so they must
# give the same probabilities, up to the rounding of `float32` arithmetic:

# %%
keras_probs = model.predict(batch_x, verbose=0)
print(keras_probs.dtype, keras_probs.shape)
with np.printoptions(precision=4, suppress=True):
    print("Keras:", keras_probs[0])
    print("NumPy:", numpy_probs[0])

# %%
np.testing.assert_allclose(keras_probs, numpy_probs, rtol=1e-5, atol=1e-6)

# %% [markdown]
# You now know exactly what the model computes: nothing in it is hidden from you.

# %% [markdown]
# ## 7. Ask the untrained network what it sees
#
# ### 7.1 Look at one digit
#
# Give the network the first test image, a 7, and draw its 10 probabilities with
# `plots.plot_probabilities`.

# %%
test_probs = model.predict(test_x, verbose=0)
print(test_probs.shape, "  label of test image 0:", test_y[0])

# %%
# figure: the untrained network's probabilities for test image 0
plots.plot_probabilities(
    test_x[0],
    test_probs[0],
    label=test_y[0],
    title="The untrained network spreads its bets across all digits",
)
plt.show()

# %% [markdown]
# No class stands out: a network with no idea would give every class $1/10$, and
# these probabilities stay between about 0.04 and 0.24, far from the near-certainty
# of a trained network.

# %%
print(f"image 0: from {test_probs[0].min():.3f} to {test_probs[0].max():.3f}")

# %%
assert 0.02 < test_probs[0].min() <= test_probs[0].max() < 0.3

# %% [markdown]
# The same holds for the whole test set: the most probable class of an image gets, on
# average, less than one chance in five. Every row of the 10,000 predictions still
# adds up to 1.

# %%
top_probability = test_probs.max(axis=1)
print(f"average probability of the top class: {top_probability.mean():.2f}")

# %%
assert 0.15 < top_probability.mean() < 0.2
np.testing.assert_allclose(test_probs.sum(axis=1), 1.0, rtol=1e-5)

# %% [markdown]
# ### 7.2 Count its answers on the whole test set
#
# The network's answer is the class with the largest probability, `argmax`. Count how
# often it gives each answer over the 10,000 test images, and how often it is right.
#
# **Predict, then run:** if the network answered at random, about how many times would
# it name each digit, and what share of its answers would be right?

# %% tags=["nbval-ignore-output"]
predicted = test_probs.argmax(axis=1)
answer_counts = np.bincount(predicted, minlength=n_output)
accuracy = np.mean(predicted == test_y)
print("answers per class:", answer_counts)
print(f"accuracy: {accuracy:.1%}")

# %% [markdown]
# On another computer one or two of these answers can differ (section 8 shows why), so
# check them with that tolerance: the counts, the accuracy, and that Keras gives the
# answers of your NumPy `forward` for all but at most two of the 10,000 images.

# %%
np.testing.assert_allclose(
    answer_counts, [1778, 535, 235, 1402, 665, 131, 1358, 1207, 1292, 1397], atol=2
)
assert answer_counts.sum() == len(test_y)
assert 0.1255 <= accuracy <= 0.1265
assert np.sum(predicted != forward(test_x).argmax(axis=1)) <= 2

# %%
# figure: how often the untrained network gives each answer
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.bar(np.arange(n_output), answer_counts)
ax.axhline(len(test_y) / n_output, color="black", linewidth=0.8, linestyle="--")
ax.set_xticks(np.arange(n_output))
ax.set_xlabel("predicted digit")
ax.set_ylabel("test images")
ax.set_title("The untrained network's answers are far from even")
plt.show()

# %% [markdown]
# The dashed line is where each bar would stand if the answers were spread evenly:
# the 0 is named more than ten times as often as the 5. And about one answer in eight
# is right, close to the one in ten of a blind guess.

# %%
assert answer_counts.max() > 10 * answer_counts.min()
assert abs(accuracy - 0.1) < 0.05

# %% [markdown]
# ### 7.3 Understand why it guesses
#
# The weights are random numbers: nothing in them links a pattern of pixels to a
# digit. Each hidden unit responds to whatever pixels its random weights happen to
# favour, each output unit to whatever hidden units its weights favour. The answer is
# a fixed but arbitrary function of the image: some classes come up often because
# their random weights suit the typical image, not because of the digit shown. Such
# an answer is right about as often as a guess, one time in ten.
#
# Training changes this. It nudges all 79,510 parameters, a little at a time, so that
# the probability of the correct label grows. That is the next lesson.

# %% [markdown]
# ## 8. Under the hood: why Keras and NumPy agree only up to the last digits (optional)
#
# A `float32` number keeps about 7 significant digits, so every addition rounds, and
# $(a + b) + c$ can differ from $a + (b + c)$ in the last digit. Keras and NumPy add
# the 784 products of a unit in different orders, and that order also depends on the
# computer's processor and on how many threads share the work. So the two
# computations differ by about $10^{-7}$: far too little to matter, except where two
# probabilities are nearly equal.
#
# Find the test images whose two largest probabilities differ by less than
# $5 \cdot 10^{-6}$:

# %%
top_two = np.sort(forward(test_x), axis=1)[:, -2:]
near_ties = np.flatnonzero(top_two[:, 1] - top_two[:, 0] < 5e-6)
print("near ties among the 10,000 test images:", near_ties)

# %%
assert near_ties.tolist() == [9351]
np.testing.assert_allclose(test_probs, forward(test_x), atol=1e-6)

# %% [markdown]
# Only one image is that close: its answer may be one digit on one computer and
# another digit on another, which is why section 7.2 checks its counts with a
# tolerance of two (one class loses the image, another gains it).

# %% [markdown]
# ## What you learned
#
# - The course's network is 784 inputs → 100 ReLU units → 10 softmax outputs, with
#   79,510 parameters: $784 \cdot 100 + 100$ in the hidden layer and
#   $100 \cdot 10 + 10$ in the output layer.
# - A layer computes $W^\top\mathbf x + \mathbf b$, in NumPy `x @ W + b` for a whole
#   batch of rows; ReLU keeps $\max(0, z)$; softmax turns the 10 logits $\mathbf z$
#   into probabilities $\mathbf p$ that add up to 1, and the log of a probability is
#   best computed from the logits.
# - `keras.Sequential` with `Flatten` and two `Dense` layers computes exactly your
#   NumPy forward pass; `course_utils.models.build_ann()` builds it for you. Keras
#   starts the weights Glorot-uniform, not $\mathcal N(0, 0.1^2)$.
# - Before training, the weights are random and the network only guesses: about one
#   test digit in eight is right.
#
# ## Try it yourself
#
# - Do **Exercise 2: Build the ANN** (10 points), which your instructor gives you:
#   part 1 counts the parameters of any 784-n-10 network, part 2 builds it to a
#   specification, and part 3 writes its forward pass in NumPy from
#   `model.get_weights()`.
# - Build the network with `models.build_ann(n_hidden=32)`: predict its parameter
#   count with the formula first, then check it with `count_params()`.
# - Draw the starting weights with standard deviation 1 instead of 0.1 and run
#   `forward` again. What happens to the probabilities, and why?
