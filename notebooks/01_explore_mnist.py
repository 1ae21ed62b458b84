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
# # Lesson 1 · The MNIST data
#
# Before you build a network you look at what it will learn from. This lesson opens
# MNIST, the 70,000 handwritten digits every lesson of the course trains and tests on,
# and turns its numbers into pictures and its pictures back into numbers.
#
# **What you'll learn**
#
# - where MNIST comes from and what is in it;
# - how an image is stored: a 28 × 28 grid of grey levels 0..255;
# - why you scale the grey levels to `float32` numbers in [0, 1];
# - that the arrays stay 28 × 28 and the model itself flattens each image into 784
#   numbers.
#
# **What you need**
#
# - the course environment (`make lab`); this is the first lesson, so nothing before it;
# - under 20 seconds to run top to bottom, and about 20 minutes to read;
# - about 0.9 GB of memory: half of it for TensorFlow, 188 MB for the scaled
#   training images.
#
# **What you'll do**
#
# 1. Read where MNIST comes from.
# 2. Load the images and labels, and check them.
# 3. Look at one digit as an image and as numbers, then at many.
# 4. Count the digits of each class.
# 5. Scale the grey levels to [0, 1] and measure their statistics.
# 6. Average the images of each digit.
# 7. Flatten an image into 784 numbers, the way the model does.

# %% [markdown]
# ## 1. Meet MNIST
#
# In the early 1990s the US National Institute of Standards and Technology (NIST)
# collected handwritten characters on forms. Its *Special Database 3* was written by
# employees of the Census Bureau, its *Special Database 1* by high-school students.
# NIST trained on the employees' digits and tested on the students', which are harder
# to read, so a score said as much about the two sets as about the method.
#
# Yann LeCun, Corinna Cortes and Christopher Burges re-mixed the two into the
# *Modified* NIST database, **MNIST**:
#
# - **70,000** digits: **60,000** for training and **10,000** for testing, each half
#   from Special Database 3 and half from Special Database 1; no one wrote digits in
#   both the training and the test set;
# - each digit was scaled to fit a 20 × 20 box, anti-aliased (which creates the grey
#   levels) and centred in a **28 × 28** image;
# - each pixel is a **grey level from 0 (background) to 255 (ink)**, and each image has
#   a label, the digit 0..9 the writer was asked to write.
#
# The course ships the whole database inside `course_utils`, so nothing is downloaded.

# %% [markdown]
# ## 2. Load the images and labels
#
# Start every lesson the same way: silence TensorFlow's start-up messages *before*
# Keras imports it, then import the rest.

# %%
from course_utils import repro

repro.quiet_tensorflow()

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

from course_utils import data, plots

# %% [markdown]
# `data.load_mnist()` returns two pairs, `(images, labels)` for training and for
# testing, exactly as `keras.datasets.mnist.load_data()` would.

# %%
(train_x, train_y), (test_x, test_y) = data.load_mnist()

# %% [markdown]
# ### 2.1 Check the shapes and types
#
# The images are 3-D arrays: *number of images × 28 rows × 28 columns*. Grey levels
# 0..255 fit in one byte each, so they are stored as `uint8`, and so are the labels.

# %%
print("train_x", train_x.shape, train_x.dtype, "  train_y", train_y.shape)
print("test_x ", test_x.shape, test_x.dtype, "  test_y ", test_y.shape)

# %%
assert train_x.shape == (60000, 28, 28)
assert test_x.shape == (10000, 28, 28)
assert train_x.dtype == test_x.dtype == train_y.dtype == np.uint8
assert train_x.min() == 0 and train_x.max() == 255

# %% [markdown]
# The labels are plain digits, in the order of the images:

# %%
print("first 10 training labels:", train_y[:10])
print("first 10 test labels:    ", test_y[:10])

# %% [markdown]
# ### 2.2 Trust the data because it is checked
#
# A file can be cut short by a failed copy, or replaced by another "MNIST" that is
# subtly different. So `load_mnist()` computes a SHA-256 digest (a fingerprint) of each
# of the four arrays and compares it with the digest of the real MNIST. Any difference,
# even in one pixel, raises an error that names the file and the fix. You can redo the
# check yourself:

# %%
shape, digest = data.EXPECTED["x_train"]
print(f"expected x_train: {shape}, digest {digest[:16]}…")
print(f"your train_x:     {train_x.shape}, digest {data.array_digest(train_x)[:16]}…")

# %%
assert data.array_digest(train_x) == digest

# %% [markdown]
# ## 3. Look at the digits
#
# ### 3.1 Draw one digit as an image
#
# Take training image number 5. Its label says it is a 2:

# %%
digit = train_x[5]
print("label:", train_y[5], "  shape:", digit.shape)

# %%
assert train_y[5] == 2

# %%
# figure: training image 5 drawn from its grey levels
fig, ax = plt.subplots(figsize=(4, 3.4))
image = ax.imshow(digit, cmap=plots.DIGIT_CMAP)
fig.colorbar(image, ax=ax, label="grey level (0 = background, 255 = ink)")
ax.set_xticks([])
ax.set_yticks([])
ax.set_xlabel("28 columns of pixels")
ax.set_ylabel("28 rows of pixels")
ax.set_title("Training image 5 is a handwritten 2")
plt.show()

# %% [markdown]
# ### 3.2 Read the same digit as numbers
#
# The picture above is only a way to show these 784 numbers. Most are 0, the
# background; the stroke is a band of values up to 255, with softer values at its edges
# where the anti-aliasing blended ink and paper.

# %%
with np.printoptions(linewidth=120):
    print(digit)

# %% [markdown]
# ### 3.3 Look at many digits
#
# Every lesson draws digits with their labels, so we saved a function for it as
# `course_utils.plots.show_digits`: give it images and labels.

# %%
# figure: the first 30 training digits with their labels
plots.show_digits(
    train_x[:30], train_y[:30], title="The first 30 training digits and their labels"
)
plt.show()

# %% [markdown]
# Notice how differently people write the same digit: the 1s lean at different
# angles, some 2s have a loop at the bottom and some do not, the 3s range from thin to
# bold. The network has to learn what the digits of a class share.

# %% [markdown]
# ## 4. Count the digits of each class
#
# If one digit were rare, a model could ignore it and still look good. Count how many
# images each class has with `np.bincount`, which counts the 0s, the 1s, … the 9s.

# %%
train_counts = np.bincount(train_y, minlength=10)
test_counts = np.bincount(test_y, minlength=10)
print("training:", train_counts)
print("test:    ", test_counts)

# %% [markdown]
# These are the counts published for MNIST:

# %%
np.testing.assert_array_equal(
    train_counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
)
np.testing.assert_array_equal(
    test_counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
)
assert train_counts.sum() == 60_000 and test_counts.sum() == 10_000

# %%
# figure: share of each digit in the training and the test set
digits = np.arange(10)  # the bars' x positions
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.bar(digits - 0.2, 100 * train_counts / train_counts.sum(), 0.4, label="training")
ax.bar(digits + 0.2, 100 * test_counts / test_counts.sum(), 0.4, label="test")
ax.axhline(10, color="black", linewidth=0.8, linestyle="--")
ax.set_xticks(digits)
ax.set_xlabel("digit")
ax.set_ylabel("share of the set's images (%)")
ax.set_title("Every digit is close to 10% of both sets")
ax.set_ylim(0, 14)
ax.legend(loc="upper center", ncols=2)
plt.show()

# %% [markdown]
# The classes are nearly balanced: from 9.0% (the 5s) to 11.2% (the 1s) of the
# training set, and the test set has the same mix. A model that always answered "1"
# would be right only about 11% of the time.

# %% [markdown]
# ## 5. Scale the grey levels to [0, 1]
#
# A network computes with floating-point numbers, and it learns best when its inputs
# are small, around 0 to 1: large inputs make large outputs and large, unstable
# updates. So divide every grey level by 255.
#
# Which float type? NumPy's default is `float64`, 8 bytes a number. Keras computes in
# `float32`, 4 bytes, whose 7 significant digits are far more than 256 grey levels
# need. Compute what the 47 million training pixels cost in each type:

# %%
n_pixels = train_x.size
for dtype in (np.uint8, np.float32, np.float64):
    megabytes = n_pixels * np.dtype(dtype).itemsize / 1e6
    print(f"{np.dtype(dtype).name:>8}: {megabytes:4.0f} MB")

# %% [markdown]
# `float64` would take 376 MB for a copy Keras would convert to `float32` anyway. So
# convert to `float32` first, then divide. Try it on the digit of section 3:

# %%
scaled_digit = digit.astype(np.float32) / 255
print("grey levels:", digit[10, 9:16])
print("scaled:     ", scaled_digit[10, 9:16].round(3), scaled_digit.dtype)

# %% [markdown]
# We saved this as `course_utils.data.scale_images`, which also refuses images that
# are already scaled. It gives the same numbers:

# %%
np.testing.assert_array_equal(data.scale_images(digit), scaled_digit)

# %% [markdown]
# Scale both sets. Assigning the results to the same names lets Python free the
# `uint8` arrays, once nothing else points into them: `digit` is a *view* of
# `train_x`, not a copy, so delete it first.

# %%
del digit, scaled_digit
train_x = data.scale_images(train_x)
test_x = data.scale_images(test_x)
print(train_x.dtype, f"{train_x.nbytes / 1e6:.0f} MB", train_x.min(), train_x.max())

# %%
assert train_x.dtype == test_x.dtype == np.float32
assert train_x.nbytes == 188_160_000
assert train_x.min() == 0.0 and train_x.max() == 1.0

# %% [markdown]
# From the next lesson on you will load the scaled images in one step, with
# `data.load_mnist(scaled=True)`.

# %% [markdown]
# ### 5.1 Measure the pixel statistics
#
# Over all $N$ = 47 million training pixels $x_1, \dots, x_N$, the mean grey level is
# $\mu = 0.1307$ and the standard deviation $\sigma = 0.3081$; on the 0..255 scale
# that is 33.3184 and 78.5675. You will meet these two numbers in many MNIST programs,
# which use them to standardise the inputs.
#
# `train_x.std()` would compute them, but it first builds $x_i - \mu$ for every pixel:
# a second 188 MB array. The same $\sigma$ follows from two sums, with no copy:
#
# $$
# \mu = \frac{1}{N}\sum_{i=1}^{N} x_i, \qquad
# \sigma = \sqrt{\frac{1}{N}\sum_{i=1}^{N} x_i^2 - \mu^2} .
# $$
#
# `np.einsum("nij,nij->n", x, x)` multiplies each pixel by itself and adds up the 784
# squares of each image, without storing the squares.


# %%
def pixel_std(images: np.ndarray) -> float:
    """Return the standard deviation of all pixels, from sums (no copy of images)."""
    mean = images.mean(dtype=np.float64)
    squares = np.einsum("nij,nij->n", images, images)
    return float(np.sqrt(squares.mean(dtype=np.float64) / (28 * 28) - mean**2))


# %% [markdown]
# Check it against `np.std` on the test images, where a temporary copy costs only
# 31 MB:

# %%
print(f"pixel_std: {pixel_std(test_x):.6f}   np.std: {test_x.std():.6f}")

# %%
np.testing.assert_allclose(pixel_std(test_x), test_x.std(), rtol=1e-5)

# %% [markdown]
# Now measure the training set:

# %%
pixel_mean = train_x.mean(dtype=np.float64)
train_std = pixel_std(train_x)
print(f"scaled to [0, 1]: mean {pixel_mean:.4f}, std {train_std:.4f}")
print(f"on 0..255:        mean {255 * pixel_mean:.4f}, std {255 * train_std:.4f}")

# %%
np.testing.assert_allclose(pixel_mean, 0.1307, atol=5e-5)
np.testing.assert_allclose(train_std, 0.3081, atol=5e-5)
np.testing.assert_allclose(255 * pixel_mean, 33.3184, atol=1e-3)
np.testing.assert_allclose(255 * train_std, 78.5675, atol=1e-3)

# %% [markdown]
# The mean is low because most pixels are background. Count the pixels that are not
# 0 with `np.count_nonzero`, which, unlike `train_x == 0`, makes no 47 MB array of
# answers:

# %%
background = 1 - np.count_nonzero(train_x) / train_x.size
print(f"{background:.1%} of the training pixels are 0")

# %%
assert 0.80 < background < 0.82

# %% [markdown]
# ## 6. Average the images of each digit
#
# Averaging all the 2s pixel by pixel gives a blurred "typical 2". Select each class
# with a boolean mask (`train_y == d`) and take the mean over the images' axis.

# %%
mean_images = np.stack([train_x[train_y == d].mean(axis=0) for d in range(10)])
print(mean_images.shape, mean_images.dtype)

# %%
# figure: the average training image of each digit
plots.show_digits(
    mean_images, np.arange(10), title="The average training image of each digit"
)
plt.show()

# %% [markdown]
# Every average is still recognisable: the writers agree on the broad shape, and the
# centring puts it in the same place. Where the averages overlap (a 3, a 5 and an 8
# share a lot of pixels) the network will have to look harder.

# %% [markdown]
# ## 7. Flatten an image into 784 numbers
#
# A common claim is that the MNIST arrays are "784-long vectors" of shape
# (60000, 784). **Not here**: `load_mnist()`, like Keras, returns images of shape
# (n, 28, 28), and the course's functions expect that shape. The network's first
# layer, `keras.layers.Flatten`, turns each 28 × 28 image into 784 numbers inside the
# model.
#
# You can do the same in NumPy with `reshape`. The `-1` tells NumPy to work out the
# number of images itself.

# %%
flat_x = train_x.reshape(-1, 784)
print(train_x.shape, "→", flat_x.shape)

# %%
assert flat_x.shape == (60000, 784)
assert np.shares_memory(flat_x, train_x)

# %% [markdown]
# `np.shares_memory` says that no pixel was copied: the flat view reads the same
# memory, row after row. So numbers 28 to 55 of image 5 are its second row:

# %%
np.testing.assert_array_equal(flat_x[5, 28:56], train_x[5, 1])

# %% [markdown]
# Keras's `Flatten` layer gives exactly the same numbers, in the same order.

# %%
flatten = keras.layers.Flatten()
keras_flat = keras.ops.convert_to_numpy(flatten(train_x[:5]))
print(keras_flat.shape, keras_flat.dtype)

# %%
np.testing.assert_array_equal(keras_flat, flat_x[:5])

# %% [markdown]
# Keep the images 28 × 28 outside the model. If you pass flattened images to a course
# function, it tells you what went wrong and how to fix it:

# %%
try:
    plots.show_digits(flat_x[:3], train_y[:3])
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## What you learned
#
# - MNIST is 70,000 handwritten digits re-mixed from two NIST databases: 60,000 for
#   training and 10,000 for testing, with about 10% of each digit in both.
# - Each image is a 28 × 28 grid of grey levels 0..255 (`uint8`); `load_mnist()`
#   checks every array against MNIST's SHA-256 digests.
# - You scale the grey levels to [0, 1] in `float32`: 188 MB for the training images,
#   half of what `float64` would take. Their mean is 0.1307 and their standard
#   deviation 0.3081.
# - The arrays stay (n, 28, 28); flattening to 784 numbers, row after row, is the
#   model's first layer, `Flatten`.
#
# ## Try it yourself
#
# - Do the graded exercise **`01_explore_mnist`** in `notebooks/exercises` (10 points;
#   `make student` writes your copy to `notebooks/exercises/release/01_explore_mnist/`):
#   scale and flatten images, count labels, find the rarest digit and average the
#   images of one digit.
# - Find the training image of each class that is farthest from its class average:
#   with `mean_images`, sum `np.abs(train_x[train_y == d] - mean_images[d])` over
#   each image's pixels, and draw the image with the largest sum for every class with
#   `plots.show_digits`. Are they badly written, or wrongly labelled?
# - Which digit uses the most ink? Compare `train_x[train_y == d].mean()` across the
#   ten classes, then check your answer against the averages of section 6.
