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
# # Lesson 5 · Go further with a CNN
#
# The networks of lessons 2 to 4 read a digit as 784 numbers in a row. They have no
# idea that pixel 300 sits right next to pixel 301, or that a stroke means the same
# thing at the top of the image as at the bottom. A **convolutional neural network**
# (CNN) builds the first fact into its structure and part of the second. Trained the
# same way as lesson 4's best fully connected network, with less than a tenth of its
# weights, it makes about half as many mistakes.
#
# **What you'll learn**
#
# - what a convolution computes: one small filter slid over the whole image;
# - why that suits images: each output looks at a small neighbourhood (locality), the
#   same weights are used everywhere (weight sharing), and a shifted digit gives a
#   shifted feature map (translation *equivariance*);
# - how to build, count and train a small CNN in Keras;
# - how its mistakes compare with those of a fully connected network trained the
#   same way, and how both cope with shifted digits;
# - what its first layer looks for.
#
# **What you need**
#
# - Lessons 1 to 4: MNIST, the 784-100-10 network, training with Adam, reading
#   mistakes, dropout;
# - 2 to 4 minutes to run top to bottom on a 2-core laptop (the training takes most
#   of it), and 30 minutes to read;
# - about 1 GB of free memory (TensorFlow alone takes 0.6 GB).
#
# **What you'll do**
#
# 1. Slide a filter over a digit by hand, and check Keras does the same.
# 2. Build a small CNN and count its parameters.
# 3. Train it and test it.
# 4. Compare it with the best fully connected network of lesson 4, trained alike.
# 5. Shift the test digits by a few pixels and see what each network loses.
# 6. Look at what the CNN's first layer learned.
#
# Section 7, *Under the hood*, is optional: arithmetic, memory and time.

# %% [markdown]
# ## 1. Slide a filter over a digit
#
# Start the same way as every lesson: quiet TensorFlow, then import.

# %%
from course_utils import repro

repro.quiet_tensorflow()

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, models, plots

# %% [markdown]
# Load the images as they are stored, grey levels 0..255 in `uint8`. The networks of
# this lesson divide by 255 themselves, in a `Rescaling` layer, as in lessons 3 and
# 4; for now, scale one digit by hand.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist()
digit = train_x[5] / np.float32(255)
print(train_x.dtype, train_x.shape, "  digit:", digit.dtype, digit.shape)

# %%
assert train_x.dtype == np.uint8 and digit.dtype == np.float32
assert train_y[5] == 2

# %% [markdown]
# ### 1.1 Compute a convolution with NumPy
#
# A **filter** (or kernel) is a small grid of weights, here 3 × 3. Put it on the top
# left 3 × 3 patch of the image, multiply the 9 pixels by the 9 weights and add them
# up: that is one output number. Slide it one pixel to the right and do it again,
# and so on over every position. On a 28 × 28 image a 3 × 3 filter fits in
# 26 × 26 positions, so the output, the **feature map** $h$, is 26 × 26. With
# $x_{i,j}$ the pixel in row $i$ and column $j$, $w_{u,v}$ the filter's weights,
# $s = 3$ its side and $b$ its bias:
#
# $$ h_{i,j} = \sum_{u=0}^{s-1} \sum_{v=0}^{s-1} w_{u,v}\, x_{i+u,\, j+v} + b $$
#
# This filter has negative weights on the left and positive ones on the right: it
# answers strongly where the image gets darker from left to right, at the left edge
# of a stroke, and negatively at the right edge.

# %%
edge_filter = np.array(
    [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float32
)  # left-to-right edges


def convolve(image, kernel):
    """Slide ``kernel`` over ``image`` (no padding, stride 1) and return the map."""
    side = kernel.shape[0]
    n_out = image.shape[0] - side + 1
    out = np.zeros((n_out, n_out), dtype=np.float32)
    for i in range(n_out):
        for j in range(n_out):
            out[i, j] = np.sum(image[i : i + side, j : j + side] * kernel)
    return out


edges = convolve(digit, edge_filter)
print(edges.shape, f"from {edges.min():.2f} to {edges.max():.2f}")

# %%
assert edges.shape == (26, 26)

# %%
# figure: a digit, the edge filter, and the feature map it produces
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(digit, cmap=plots.DIGIT_CMAP)
axes[0].set_title("the digit (28 × 28)")
axes[1].imshow(edge_filter, cmap="RdBu_r", vmin=-1, vmax=1)
axes[1].set_title("the 3 × 3 filter")
for (row, col), weight in np.ndenumerate(edge_filter):
    color = "white" if weight else "black"
    axes[1].text(col, row, f"{weight:.0f}", ha="center", va="center", color=color)
limit = np.abs(edges).max()
image = axes[2].imshow(edges, cmap="RdBu_r", vmin=-limit, vmax=limit)
axes[2].set_title("feature map h (26 × 26)")
fig.colorbar(image, ax=axes[2], label="filter output")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("The filter lights up the left edges (red) and right edges (blue)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### 1.2 Check that Keras's `Conv2D` computes the same
#
# Keras's `Conv2D` layer does exactly this slide-multiply-add. Give it one filter,
# set its weights to the edge filter and its bias to 0, and compare. Keras wants a
# *channel* axis: a grey image has one channel, so the digit becomes 28 × 28 × 1, and
# a batch of one digit 1 × 28 × 28 × 1.

# %%
conv = keras.layers.Conv2D(filters=1, kernel_size=3)
conv.build((None, 28, 28, 1))
conv.set_weights([edge_filter.reshape(3, 3, 1, 1), np.zeros(1, dtype=np.float32)])
keras_edges = keras.ops.convert_to_numpy(conv(digit[None, :, :, None]))
print(keras_edges.shape)

# %%
np.testing.assert_allclose(keras_edges[0, :, :, 0], edges, atol=1e-5)

# %% [markdown]
# Same numbers. (Mathematicians would call this a *cross-correlation*: a true
# convolution flips the filter first. Deep-learning libraries skip the flip, since
# the filter's weights are learned anyway.)

# %% [markdown]
# ### 1.3 See why this suits images
#
# Three properties make convolutions the standard tool for images:
#
# - **Locality.** Each output number depends on a 3 × 3 neighbourhood only. Strokes,
#   edges and corners are local patterns, so that is where to look first.
# - **Weight sharing.** The same 9 weights (plus one bias) are used at all 676
#   positions. The course network's hidden layer has a separate weight for every
#   pixel and every unit: 78,400 of them.
# - **Translation equivariance.** Move the digit, and the feature map moves with
#   it, unchanged: a stroke is detected wherever it is, and its response stays
#   where the stroke is.
#
# Check the last one. Write a function that moves images by a few pixels, filling
# the border it leaves with background (0); you will use it again in section 5.


# %%
def shift_images(images, right, down):
    """Move images ``right`` pixels right and ``down`` pixels down (negative: left,
    up); what moves out of the 28 × 28 frame is lost, the border left is 0."""
    n_rows, n_cols = images.shape[1:3]
    rows_to = slice(max(down, 0), n_rows + min(down, 0))
    rows_from = slice(max(-down, 0), n_rows + min(-down, 0))
    cols_to = slice(max(right, 0), n_cols + min(right, 0))
    cols_from = slice(max(-right, 0), n_cols + min(-right, 0))
    out = np.zeros_like(images)
    out[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return out


shifted = shift_images(digit[None], right=3, down=0)[0]
print(shifted.shape, "ink kept:", shifted.sum() == digit.sum())

# %% [markdown]
# Shift the digit 3 pixels to the right and compute the map again:

# %%
shifted_edges = convolve(shifted, edge_filter)

# %%
np.testing.assert_allclose(shifted_edges[:, 3:], edges[:, :-3], atol=1e-6)
np.testing.assert_array_equal(
    shift_images(test_x[:2], -2, 1)[:, 1:, :-2], test_x[:2, :-1, 2:]
)

# %% [markdown]
# The shifted digit's feature map is the old one moved 3 pixels to the right. A
# fully connected network, by contrast, sends the shifted ink to different inputs,
# which meet different weights: it has to learn each position separately.
#
# Equivariant is not *invariant*: the map moves, it does not stay the same. Whether
# a whole network gives the same answer for a shifted digit is another question,
# and section 5 measures it.

# %%
del conv, keras_edges, shifted, shifted_edges

# %% [markdown]
# ## 2. Build a small CNN
#
# A CNN stacks a few such layers:
#
# 1. `Conv2D(32, 3)`: 32 filters of 3 × 3, each giving a feature map, then ReLU;
# 2. `MaxPooling2D(2)`: keep the largest value of every 2 × 2 block, halving each
#    side. The network keeps *that* a feature is there and roughly where, and the
#    next layer sees a larger part of the digit;
# 3. `Conv2D(64, 3)`: 64 filters, each of 3 × 3 × 32 weights since it reads all 32
#    maps, then ReLU;
# 4. `MaxPooling2D(2)` again (an odd row and column are dropped);
# 5. `Flatten` the maps into one row, `Dropout(0.5)` (lesson 4) during training, and
#    a `Dense` softmax layer of 10 classes, as in the course network.
#
# The model takes the `uint8` images with their channel axis, 28 × 28 × 1, and its
# first layer, `Rescaling`, divides by 255.
#
# **Predict, then run.** Before you run the next cells, work out on paper the output
# shape of `conv1`, `pool1`, `conv2`, `pool2` and `flatten`, and how many numbers
# `Flatten` hands to the last layer.


# %%
def build_cnn():
    """Build the lesson's small CNN (uncompiled) for 28 × 28 × 1 images 0..255."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            keras.layers.Rescaling(1 / 255, name="scale"),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(0.5, name="dropout"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name="small_cnn",
    )


repro.set_seed(42)
cnn = build_cnn()
shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in cnn.layers}
print(shapes)

# %% [markdown]
# A 3 × 3 filter loses one pixel on each side (28 → 26), pooling halves and rounds
# down (26 → 13, 11 → 5), and `Flatten` gives 5 · 5 · 64 = 1,600 numbers:

# %%
assert shapes["conv1"] == (26, 26, 32)
assert shapes["pool1"] == (13, 13, 32)
assert shapes["conv2"] == (11, 11, 64)
assert shapes["pool2"] == (5, 5, 64)
assert shapes["flatten"] == (1600,)

# %% [markdown]
# ### 2.1 Count its parameters
#
# **Predict, then run.** A `Conv2D` layer with $c_\text{out}$ filters of
# $s \times s$ over $c_\text{in}$ input channels has
# $(s \cdot s \cdot c_\text{in} + 1)\, c_\text{out}$ parameters: one weight per
# filter cell and input channel, and one bias per filter. Pooling, flattening and
# dropout have none. How many has `conv2`? The whole CNN? Then run:


# %%
def conv_params(side, c_in, c_out):
    return (side * side * c_in + 1) * c_out


n_params = {
    "conv1": conv_params(3, 1, 32),
    "conv2": conv_params(3, 32, 64),
    "output": (5 * 5 * 64 + 1) * 10,
}
print(n_params, "total", sum(n_params.values()))

# %%
assert n_params == {"conv1": 320, "conv2": 18_496, "output": 16_010}
assert cnn.count_params() == sum(n_params.values()) == 34_826
for name, count in n_params.items():
    assert cnn.get_layer(name).count_params() == count

# %% [markdown]
# Keras's summary says the same, layer by layer:

# %%
cnn.summary()

# %% [markdown]
# The course network has more than twice as many parameters, and lesson 4's best
# fully connected network, with 512 hidden units, more than ten times as many:

# %%
ann_params = models.build_ann().count_params()
wide_params = models.build_ann(n_hidden=512).count_params()
print(
    f"course network {ann_params:,}, 512 units {wide_params:,}, CNN {cnn.count_params():,}"
)

# %%
assert ann_params == 79_510 and wide_params == 784 * 512 + 512 + 512 * 10 + 10
assert cnn.count_params() < ann_params / 2 and cnn.count_params() < wide_params / 10

# %% [markdown]
# ## 3. Train the CNN and test it
#
# ### 3.1 Train for 10 epochs
#
# Add the channel axis to the images with `[..., None]` (NumPy makes a *view*, no
# copy). Compile as in lesson 3: Adam with its default settings, the cross-entropy
# loss, accuracy, and 100 batches per call to TensorFlow. The batch size is the
# course's 32.

# %%
train_images = train_x[..., None]
test_images = test_x[..., None]
print(train_images.shape, test_images.shape, train_images.dtype)

# %%
assert train_images.shape == (60000, 28, 28, 1) and test_images.shape[1:] == (28, 28, 1)

# %%
n_batch = 32
n_epoch = 10

cnn.compile(
    optimizer=keras.optimizers.Adam(),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)

# %% tags=["nbval-ignore-output"]
history = cnn.fit(train_images, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %% [markdown]
# The log's digits depend on the machine (its processor, its number of threads),
# so check what holds on every machine: the loss falls, and the training accuracy
# ends near 99%.

# %%
cnn_train_loss = history.history["loss"]
cnn_train_accuracy = history.history["accuracy"][-1]
assert cnn_train_loss[-1] < cnn_train_loss[0] / 4
assert 0.984 <= cnn_train_accuracy <= 0.994, cnn_train_accuracy

# %%
# figure: the CNN's training loss and accuracy per epoch
fig = plots.plot_history(
    history.history,
    title=f"The CNN's training accuracy reaches "
    f"{history.history['accuracy'][-1]:.2%} in {n_epoch} epochs",
)
plt.show()

# %% [markdown]
# ### 3.2 Test it
#
# The training accuracy is measured with dropout switched on, so it understates the
# network. The test accuracy does not. Predict the test images 250 at a time, one
# batch per call with `predict_on_batch` (section 7.3 says why not `predict`):


# %%
def predict_probs(model, images, batch_size=250):
    """The model's probabilities p for ``images``, one batch per call."""
    return np.concatenate(
        [
            model.predict_on_batch(images[start : start + batch_size])
            for start in range(0, len(images), batch_size)
        ]
    )


# %% tags=["nbval-ignore-output"]
cnn_probs = predict_probs(cnn, test_images)
cnn_pred = cnn_probs.argmax(axis=1)
cnn_accuracy = (cnn_pred == test_y).mean()
print(f"CNN test accuracy {cnn_accuracy:.2%}")

# %% [markdown]
# On every machine tried, the CNN reaches about 99.1 to 99.2%: above 99%.

# %%
assert 0.9900 <= cnn_accuracy <= 0.9940, cnn_accuracy

# %% [markdown]
# ## 4. Compare it with the best fully connected network
#
# Is the CNN better because it is a CNN, or because it was trained longer and with
# dropout? Lesson 4's best fully connected network had 512 hidden units and
# dropout 0.2. Train it here **with the CNN's budget**: the same 60,000 images,
# 10 epochs, batches of 32, Adam with its defaults, the same seed. Only two things
# differ:
#
# - the architecture, which is what we want to compare;
# - the dropout rate: 0.2 after the hidden layer (lesson 4's choice for this
#   network) against 0.5 before the CNN's last layer.
#
# (Lesson 4 trained it in batches of 128; with batches of 32 it ends at about the
# same accuracy, about 98.2%.) Lesson 4 wrote this network out layer by layer; the
# course keeps it as `models.build_ann(512, rescale=True, dropout=0.2)`.

# %%
repro.set_seed(42)
mlp = models.build_ann(512, rescale=True, dropout=0.2)
mlp.compile(
    optimizer=keras.optimizers.Adam(),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
    steps_per_execution=100,
)
print(f"{mlp.count_params():,} parameters")

# %%
assert mlp.count_params() == wide_params == 407_050

# %% tags=["nbval-ignore-output"]
mlp_history = mlp.fit(train_x, train_y, batch_size=n_batch, epochs=n_epoch, verbose=2)

# %%
assert mlp_history.history["loss"][-1] < mlp_history.history["loss"][0] / 3
assert 0.985 <= mlp_history.history["accuracy"][-1] <= 0.997

# %% tags=["nbval-ignore-output"]
mlp_probs = predict_probs(mlp, test_x)
mlp_pred = mlp_probs.argmax(axis=1)
mlp_accuracy = (mlp_pred == test_y).mean()
print(f"fully connected test accuracy {mlp_accuracy:.2%}, CNN {cnn_accuracy:.2%}")

# %%
assert 0.975 <= mlp_accuracy <= 0.986, mlp_accuracy
assert cnn_accuracy > mlp_accuracy + 0.005

# %% [markdown]
# ### 4.1 Count the mistakes of each
#
# Compare the two sets of mistakes image by image: which mistakes does the CNN fix,
# and does it make new ones?

# %% tags=["nbval-ignore-output"]
mlp_wrong = mlp_pred != test_y
cnn_wrong = cnn_pred != test_y
fixed = mlp_wrong & ~cnn_wrong
new = cnn_wrong & ~mlp_wrong
both = mlp_wrong & cnn_wrong
mistake_ratio = cnn_wrong.sum() / mlp_wrong.sum()
print(f"fully connected: {mlp_wrong.sum()} mistakes, CNN: {cnn_wrong.sum()}")
print(
    f"the CNN fixes {fixed.sum()} of {mlp_wrong.sum()}, makes {new.sum()} new, "
    f"shares {both.sum()}: it makes {mistake_ratio:.2f} times as many"
)

# %% [markdown]
# On every machine tried, the CNN makes about half as many mistakes (0.4 to 0.5
# times as many), fixes about three quarters of the fully connected network's
# mistakes, and makes a few dozen new ones:

# %%
assert fixed.sum() + both.sum() == mlp_wrong.sum()
assert new.sum() + both.sum() == cnn_wrong.sum()
assert cnn_wrong.sum() < mlp_wrong.sum()
assert 0.35 <= mistake_ratio <= 0.60, mistake_ratio
assert 0.55 <= fixed.sum() / mlp_wrong.sum() <= 0.85
assert 10 <= new.sum() <= 60

# %% [markdown]
# ### 4.2 Look at the CNN's mistakes
#
# Show the CNN's mistakes, most confident first. Many are digits a person would
# hesitate over too.

# %%
# figure: the CNN's 20 most confident mistakes
wrong_idx = np.flatnonzero(cnn_wrong)
confidence = cnn_probs[wrong_idx, cnn_pred[wrong_idx]]
worst = wrong_idx[np.argsort(-confidence)][:20]
plots.show_digits(
    test_x[worst],
    test_y[worst],
    predicted=cnn_pred[worst],
    confidence=cnn_probs[worst, cnn_pred[worst]],
    title="The CNN's most confident mistakes",
)
plt.show()

# %% [markdown]
# And a sample of the fully connected network's mistakes that the CNN gets right
# (the titles give the fully connected network's answer):

# %%
# figure: 20 of the fully connected network's mistakes that the CNN fixes
fixed_idx = np.flatnonzero(fixed)[:20]
plots.show_digits(
    test_x[fixed_idx],
    test_y[fixed_idx],
    predicted=mlp_pred[fixed_idx],
    title="Mistakes of the fully connected network that the CNN reads correctly",
)
plt.show()

# %% [markdown]
# ## 5. Shift the digits: equivariant layers, not an invariant network
#
# Section 1.3 showed that a convolution's map moves with the digit. Does the CNN
# therefore recognise a shifted digit as well as a centred one? Not necessarily:
# pooling keeps only rough positions, and after the second pooling each of the
# 5 × 5 positions sees a 10 × 10 patch of the image, but the last `Dense` layer has a
# separate weight for each of those 25 positions. It has learned where features
# are *in centred digits*. MNIST's digits are all centred, so it never saw
# anything else.
#
# Measure it: move every test image by 1, 2 and 3 pixels, each in one of the four
# directions (up, down, left or right, drawn at random once, the same for both
# networks), and compare the accuracy of both networks.

# %%
rng = np.random.default_rng(0)
direction = rng.integers(4, size=len(test_y))  # 0 right, 1 left, 2 down, 3 up
steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def shift_test_images(n_pixels):
    """Every test image moved n_pixels in its own direction."""
    out = np.empty_like(test_x)
    for d, (right, down) in enumerate(steps):
        chosen = direction == d
        out[chosen] = shift_images(test_x[chosen], n_pixels * right, n_pixels * down)
    return out


print("images per direction:", np.bincount(direction))

# %%
assert np.bincount(direction).sum() == len(test_y) == 10_000
np.testing.assert_array_equal(shift_test_images(0), test_x)

# %% tags=["nbval-ignore-output"]
shift_accuracy = {"fully connected": [mlp_accuracy], "CNN": [cnn_accuracy]}
for n_pixels in (1, 2, 3):
    moved = shift_test_images(n_pixels)
    for name, model, images in (
        ("fully connected", mlp, moved),
        ("CNN", cnn, moved[..., None]),
    ):
        pred = predict_probs(model, images).argmax(axis=1)
        shift_accuracy[name].append((pred == test_y).mean())
del moved, images
for name, accuracies in shift_accuracy.items():
    print(
        f"{name:16s}", "  ".join(f"{a:.2%}" for a in accuracies), "(0, 1, 2, 3 pixels)"
    )

# %% [markdown]
# On every machine tried, both lose accuracy at each pixel of shift, the fully
# connected network much more (nearly 40 points at 3 pixels) than the CNN (about 11
# points): the CNN is more robust, but it is not invariant.

# %%
mlp_shift = np.array(shift_accuracy["fully connected"])
cnn_shift = np.array(shift_accuracy["CNN"])
assert (np.diff(mlp_shift) < 0).all() and (np.diff(cnn_shift) < 0).all()
assert (cnn_shift > mlp_shift).all()
assert (cnn_shift[0] - cnn_shift[1:] < (mlp_shift[0] - mlp_shift[1:]) / 2).all()
assert 0.25 <= mlp_shift[0] - mlp_shift[3] <= 0.50, mlp_shift
assert 0.04 <= cnn_shift[0] - cnn_shift[3] <= 0.20, cnn_shift

# %%
# figure: test accuracy of both networks on digits shifted by 0 to 3 pixels
fig, ax = plt.subplots(figsize=(5, 3.4))
for name, accuracies in shift_accuracy.items():
    ax.plot(range(4), np.array(accuracies) * 100, marker="o", label=name)
ax.set_xticks(range(4))
ax.set_xlabel("shift of every test image (pixels)")
ax.set_ylabel("test accuracy (%)")
ax.legend()
ax.set_title("Both networks lose accuracy on shifted digits, the CNN less")
fig.tight_layout()
plt.show()

# %% [markdown]
# Two ways to get closer to invariance, if a task needs it: train on shifted
# copies of the images (*data augmentation*), or end the convolutions with a
# *global* pooling that forgets positions altogether.

# %%
del mlp, mlp_history, mlp_probs

# %% [markdown]
# ## 6. Look at what the first layer learned
#
# ### 6.1 Draw its 32 filters
#
# Each filter of `conv1` is a 3 × 3 grid of weights, like the edge filter of
# section 1, but learned. Red weights add the pixel's ink, blue ones subtract it.
# All 32 share one colour scale, symmetric around 0.

# %%
kernels, biases = cnn.get_layer("conv1").get_weights()
filters = kernels[:, :, 0, :].transpose(2, 0, 1)  # (32, 3, 3): one grid per filter
print(kernels.shape, biases.shape, "→", filters.shape)

# %%
assert kernels.shape == (3, 3, 1, 32) and biases.shape == (32,)

# %%
# figure: the 32 learned 3 × 3 filters of the first convolution
limit = np.abs(filters).max()
fig, axes = plt.subplots(4, 8, figsize=(9, 4.6))
for f, ax in enumerate(axes.flat):
    image = ax.imshow(filters[f], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"filter {f}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(image, ax=axes, label="weight", shrink=0.8)
fig.suptitle("The 32 learned filters of conv1, on one colour scale")
plt.show()

# %% [markdown]
# Some look like the edge filter of section 1 turned in some direction; others do
# not. Make "looks like an edge filter" a number: compare each filter with four
# ideal edge filters, vertical, horizontal and the two diagonals, by their
# **cosine similarity** (the weights as vectors of 9 numbers; 1 is the same pattern
# up to scale, 0 nothing in common). Because the ideal edges sum to 0, a filter that
# also responds to plain ink scores lower. Count a filter as an edge detector when
# its best |cosine| (either sign: a left or a right edge) is at least 0.8.

# %%
diagonal = np.array([[0, 1, 1], [-1, 0, 1], [-1, -1, 0]], dtype=np.float32)
ideal_edges = np.stack([edge_filter, edge_filter.T, diagonal, np.fliplr(diagonal)])


def edge_score(grids):
    """Best |cosine similarity| of each 3 × 3 grid with the four ideal edges."""
    rows = grids.reshape(len(grids), 9)
    ideal = ideal_edges.reshape(4, 9)
    cosine = rows @ ideal.T
    cosine /= np.linalg.norm(rows, axis=1)[:, None] * np.linalg.norm(ideal, axis=1)
    return np.abs(cosine).max(axis=1)


print("scores of the ideal edges:", edge_score(ideal_edges))

# %%
np.testing.assert_allclose(edge_score(ideal_edges), 1.0, rtol=1e-6)
assert edge_score(np.ones((1, 3, 3)))[0] == 0  # plain ink is no edge

# %% tags=["nbval-ignore-output"]
scores = edge_score(filters)
is_edge = scores >= 0.8
print("edge scores, highest first:", np.round(np.sort(scores)[::-1], 2))
print(
    f"{is_edge.sum()} of 32 filters are edge detectors by this test:",
    np.flatnonzero(is_edge),
)

# %% [markdown]
# About a third of the filters pass (11 of 32 on every machine tried): a good
# share of the first layer detects edges, but not most of it. The others mix an edge
# with a response to plain ink, or detect spots and corners.

# %%
assert 6 <= is_edge.sum() <= 16, is_edge.sum()
assert is_edge.sum() < 32 / 2

# %% [markdown]
# ### 6.2 See the feature maps of one digit
#
# Feed the 2 of section 1 through each learned filter with the `convolve` function
# of section 1.1, adding each filter's bias: 32 maps $h$, one per filter. `conv1`
# then applies ReLU, which keeps the positive part; check that against Keras.

# %%
maps = np.stack([convolve(digit, f) + b for f, b in zip(filters, biases, strict=True)])
first_layer = keras.Model(cnn.inputs, cnn.get_layer("conv1").output)
keras_maps = first_layer.predict(train_images[5:6], verbose=0)[0].transpose(2, 0, 1)
print(maps.shape, keras_maps.shape)

# %%
assert maps.shape == keras_maps.shape == (32, 26, 26)
np.testing.assert_allclose(np.maximum(maps, 0), keras_maps, atol=1e-4)

# %% [markdown]
# Draw the maps before the ReLU, all on one symmetric colour scale: red where a
# filter's pattern is present (ReLU keeps it), blue where its opposite is (ReLU
# sets it to 0).

# %%
# figure: the 32 feature maps of the first convolution for one digit
limit = np.abs(maps).max()
fig, axes = plt.subplots(4, 8, figsize=(9, 4.8))
for f, ax in enumerate(axes.flat):
    image = ax.imshow(maps[f], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"filter {f}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(image, ax=axes, label="filter output h (before ReLU)", shrink=0.8)
fig.suptitle("Each filter responds to a different part of the stroke of a 2")
plt.show()

# %% [markdown]
# Some maps light up along one side of the stroke and go negative along the other,
# like the edge filter of section 1; others follow the whole stroke or its
# background. The second convolution combines these 32 maps into 64 more complex
# features, and the last layer decides the digit from them.

# %%
del first_layer, maps, keras_maps

# %% [markdown]
# ## 7. Under the hood (optional): arithmetic, memory and time
#
# ### 7.1 Count the multiply-adds
#
# The CNN has few weights but does much more arithmetic: each of the 32 first-layer
# filters is applied at 676 positions, and the second layer's 64 filters at 121
# positions over 32 channels. Count the multiply-adds per image:

# %%
cnn_macs = 26 * 26 * 32 * 3 * 3 * 1 + 11 * 11 * 64 * 3 * 3 * 32 + 1600 * 10
ann_macs = 784 * 100 + 100 * 10
wide_macs = 784 * 512 + 512 * 10
print(
    f"CNN {cnn_macs:,} multiply-adds per image: {cnn_macs / ann_macs:.0f}× the "
    f"course network's {ann_macs:,}, {cnn_macs / wide_macs:.0f}× the 512-unit one's "
    f"{wide_macs:,}"
)

# %%
assert cnn_macs == 2_440_960 and ann_macs == 79_400 and wide_macs == 406_528

# %% [markdown]
# That is why, in the logs of sections 3.1 and 4, each CNN epoch takes several
# times as long as an epoch of the 512-unit network: 5 to 10 seconds on a 2-core
# laptop. Large convolutions keep the processor busier than small matrix products,
# so the time grows less than the arithmetic.
#
# ### 7.2 Keep the images as bytes
#
# Keras copies the training images while it trains. In `float32` they take 188 MB;
# as bytes they take 47 MB. So, as in lesson 3, the lesson passes the `uint8`
# images and lets each model's `Rescaling` layer divide by 255, one batch at a time,
# and the channel axis, `[..., None]`, is a view that shares the bytes of `train_x`:

# %%
print(
    f"{train_images.nbytes / 1e6:.0f} MB as bytes, {train_images.size * 4 / 1e6:.0f} MB as float32"
)

# %%
assert np.shares_memory(train_images, train_x)

# %% [markdown]
# ### 7.3 Predict one batch per call
#
# `steps_per_execution=100` also applies to `predict`: Keras hands TensorFlow up to
# 100 batches in one call, as one graph with a copy of the network for each batch,
# and TensorFlow may work on several of them at once. For this CNN and the 40
# batches of the test set, that took about 250 MB more than one batch per call when
# we measured it, enough to push the lesson past 1 GB. `predict_probs` calls
# `predict_on_batch` once per batch instead, so TensorFlow holds one batch's
# feature maps at a time. The probabilities are the same:

# %%
np.testing.assert_allclose(
    predict_probs(cnn, test_images[:500]),
    cnn.predict(test_images[:500], batch_size=250, verbose=0),
    atol=1e-6,
)

# %% [markdown]
# ## What you learned
#
# - A convolution slides one small filter over the image, multiplying and adding:
#   NumPy's loop and Keras's `Conv2D` give the same feature map.
# - It suits images because it is local and shares its weights across all
#   positions, and it is translation-equivariant: a shifted digit gives a shifted
#   map.
# - A small CNN (two `Conv2D`/`MaxPooling2D` pairs, then `Dense`) has 34,826
#   parameters, less than a tenth of lesson 4's 512-unit network. Trained with the
#   same budget (10 epochs, batches of 32, Adam, dropout), it reaches about 99.1%
#   against about 98.2%: about half as many mistakes.
# - The network as a whole is not shift-invariant: 3 pixels of shift cost the CNN
#   about 11 points of accuracy, the fully connected network nearly 40.
# - About a third of its first-layer filters are edge detectors by a simple test;
#   the rest respond to ink, spots or mixtures.
#
# ## Try it yourself
#
# There is no graded exercise for this lesson; try these instead.
#
# - Replace the edge filter of section 1.1 with its transpose, `edge_filter.T`. Which
#   edges does it find now? Check your answer against `Conv2D`.
# - Train the CNN without its `Dropout` layer. Is the training accuracy higher? The
#   test accuracy?
# - Halve the filters (16 and 32) and count the parameters by formula before you
#   build it. How much accuracy do you lose, and how much time do you save?
# - Train the CNN on shifted copies of the training images (`shift_images`, a
#   random direction per image) and measure section 5 again. How much of the loss
#   at 3 pixels does it win back?
# - Draw the CNN's confusion matrix with `plots.plot_confusion_matrix`, as in lesson
#   4 (`np.bincount(test_y * 10 + cnn_pred, minlength=100).reshape(10, 10)`). Which
#   pairs of digits does it still confuse?
