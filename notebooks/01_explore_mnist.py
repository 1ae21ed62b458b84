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
# - the course environment; this is the first lesson, so nothing before it;
# - under 20 seconds to run top to bottom, and about 20 minutes to read;
# - under 1 GB of memory, half of it for TensorFlow.
#
# **What you'll do**
#
# 1. Read where MNIST comes from.
# 2. Load the images and labels, and check them.
# 3. Look at one digit as an image and as numbers, then at many.
# 4. Count the digits of each class.
# 5. Count the pixels of each grey level, and scale the grey levels to [0, 1].
# 6. Average the images of each digit.
# 7. Flatten an image into 784 numbers, the way the model does.
#
# Sections 8 and 9, *Under the hood*, are optional: how the course knows its copy of
# MNIST is the real one, and what the arrays cost in memory.

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
#   a label $y$, the digit 0..9 the writer was asked to write.
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
# testing, exactly as `keras.datasets.mnist.load_data()` would. It also checks that
# the file holds the real MNIST (section 8 shows how).

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

# %%
assert digit.max() == 255 and np.mean(digit == 0) > 0.5

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
#
# **Predict, then run:** 60,000 images and 10 classes; if the classes were exactly
# balanced, how many images would each have? Then look at the real counts.

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
# training set, and the test set has the same mix, from 8.9% to 11.3%. A model that
# always answered "1" would be right on only about 11% of the test images.

# %%
train_share = train_counts / train_counts.sum()
test_share = test_counts / test_counts.sum()
print(f"training: {train_share.min():.1%} to {train_share.max():.1%}")
print(f"test:     {test_share.min():.1%} to {test_share.max():.1%}")
print(f'always "1" on the test set: {np.mean(test_y == 1):.1%} right')

# %%
assert train_share.argmin() == 5 and train_share.argmax() == 1
assert test_share.argmin() == 5 and test_share.argmax() == 1

# %% [markdown]
# ## 5. Measure and scale the grey levels
#
# ### 5.1 Count the pixels of each grey level
#
# Count how many of the 47 million training pixels have each grey level 0..255:
# `np.histogram` with 256 bins, one per level, gives the 256 counts $c_0, \dots,
# c_{255}$.

# %%
level_counts, _ = np.histogram(train_x, bins=256, range=(0, 256))
n_pixels = level_counts.sum()
print(f"{n_pixels:,} pixels; {level_counts[0] / n_pixels:.1%} of them are 0")

# %%
assert n_pixels == train_x.size == 60000 * 28 * 28
assert level_counts[0] == train_x.size - np.count_nonzero(train_x)

# %%
# figure: how many training pixels have each grey level
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.bar(np.arange(256), level_counts, width=1.0)
ax.set_yscale("log")
ax.set_xlabel("grey level (0 = background, 255 = ink)")
ax.set_ylabel("training pixels (log scale)")
ax.set_title("Most pixels are background (0), and many strokes reach full ink")
plt.show()

# %% [markdown]
# Four pixels in five are background. Between 0 and 255 lie the softer edges of the
# strokes, and near the top is a second peak: the centre of a stroke is full ink.
# Find the most frequent level after 0, and compare its count with the middle levels:

# %%
ink_level = 1 + level_counts[1:].argmax()
middle = np.median(level_counts[1:252])
print(f"most frequent level after 0: {ink_level}, {level_counts[ink_level]:,} pixels")
print(f"median count of the levels 1 to 251: {middle:,.0f} pixels")

# %%
assert ink_level == 253 and level_counts[ink_level] > 50 * middle

# %% [markdown]
# The counts give the mean grey level $\mu$ and the standard deviation $\sigma$ of all
# $N$ pixels, each level $v$ weighted by its count:
#
# $$
# \mu = \frac{1}{N}\sum_{v=0}^{255} v\, c_v, \qquad
# \sigma = \sqrt{\frac{1}{N}\sum_{v=0}^{255} (v - \mu)^2\, c_v} .
# $$

# %%
levels = np.arange(256)
level_mean = (levels * level_counts).sum() / n_pixels
level_std = np.sqrt(((levels - level_mean) ** 2 * level_counts).sum() / n_pixels)
print(f"on 0..255: mean {level_mean:.4f}, std {level_std:.4f}")

# %%
np.testing.assert_allclose(level_mean, 33.3184, atol=1e-4)
np.testing.assert_allclose(level_std, 78.5675, atol=1e-4)

# %% [markdown]
# You will meet these two numbers, or the same divided by 255, in many MNIST programs,
# which use them to standardise the inputs.
#
# ### 5.2 Scale the grey levels to [0, 1]
#
# A network computes with floating-point numbers, and it learns best when its inputs
# are small, around 0 to 1: large inputs make large outputs and large, unstable
# updates. So divide every grey level by 255.
#
# Keras computes in `float32`, whose 7 significant digits are far more than 256 grey
# levels need, so convert to `float32` first, then divide. (NumPy's default would be
# `float64`, twice the memory: section 9 counts the megabytes.) Try it on the digit of
# section 3:

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
# Scale both sets. (`digit` is a window onto `train_x`, so delete it first: then
# Python can free the `uint8` images once `train_x` names the scaled ones.)

# %%
del digit, scaled_digit
train_x = data.scale_images(train_x)
test_x = data.scale_images(test_x)
print(train_x.dtype, train_x.min(), train_x.max())

# %%
assert train_x.dtype == test_x.dtype == np.float32
assert train_x.min() == 0.0 and train_x.max() == 1.0

# %% [markdown]
# Dividing every pixel by 255 divides the mean and the standard deviation by 255 too:
# $\mu = 0.1307$ and $\sigma = 0.3081$ on the scaled images. Check the mean on the
# scaled pixels themselves:

# %%
pixel_mean = train_x.mean(dtype=np.float64)
pixel_std = level_std / 255
print(f"scaled to [0, 1]: mean {pixel_mean:.4f}, std {pixel_std:.4f}")

# %%
np.testing.assert_allclose(pixel_mean, level_mean / 255, rtol=1e-6)
np.testing.assert_allclose([pixel_mean, pixel_std], [0.1307, 0.3081], atol=5e-5)

# %% [markdown]
# From the next lesson on you will load the scaled images in one step, with
# `data.load_mnist(scaled=True)`.

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
# centring puts it in the same place. Some averages share many pixels, and there the
# network will have to look harder. Measure how alike two averages are with the cosine
# of the angle between them as vectors of 784 numbers (1 means the same picture up to
# brightness), and list the three most alike pairs:

# %%
unit = mean_images.reshape(10, 784)
unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
cosine = unit @ unit.T
pairs = sorted(
    ((cosine[a, b], a, b) for a in range(10) for b in range(a + 1, 10)), reverse=True
)
for similarity, a, b in pairs[:3]:
    print(f"{a} and {b}: {similarity:.3f}")

# %%
assert [(int(a), int(b)) for _, a, b in pairs[:3]] == [(4, 9), (5, 8), (3, 5)]

# %% [markdown]
# The 4 and the 9 are the most alike (a closed 4 is nearly a 9), then the 5 and the 8,
# and the 3 and the 5.

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
#
# **Predict, then run:** what shape will `train_x.reshape(-1, 784)` have?

# %%
flat_x = train_x.reshape(-1, 784)
print(train_x.shape, "→", flat_x.shape)

# %%
assert flat_x.shape == (60000, 784)

# %% [markdown]
# The 784 numbers of an image are its rows, one after the other. So numbers 28 to 55
# of image 5 are its second row:

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
# ## 8. Under the hood: check that the data is MNIST (optional)
#
# A file can be cut short by a failed copy, or replaced by another "MNIST" that is
# subtly different. So `load_mnist()` computes a SHA-256 digest (a fingerprint) of each
# of the four arrays and compares it with the digest of the real MNIST. Any difference,
# even in one pixel, raises an error that names the file and the fix. Redo the check
# yourself on the test images, read again as `uint8` from the file `load_mnist()`
# uses:

# %%
with np.load(data.resolve_path()) as mnist_file:
    raw_test_x = mnist_file["x_test"]
shape, digest = data.EXPECTED["x_test"]
print(f"expected x_test: {shape}, digest {digest[:16]}…")
print(
    f"your file:       {raw_test_x.shape}, digest {data.array_digest(raw_test_x)[:16]}…"
)

# %%
assert data.array_digest(raw_test_x) == digest
raw_test_x[0, 0, 0] = 1  # change one pixel of one image
assert data.array_digest(raw_test_x) != digest

# %% [markdown]
# ## 9. Under the hood: what the arrays cost in memory (optional)
#
# Each `uint8` grey level takes 1 byte, a `float32` number 4 and a `float64` number 8.
# For the 47 million training pixels:

# %%
n_pixels = train_x.size
for dtype in (np.uint8, np.float32, np.float64):
    megabytes = n_pixels * np.dtype(dtype).itemsize / 1e6
    print(f"{np.dtype(dtype).name:>8}: {megabytes:4.0f} MB")

# %%
assert train_x.nbytes == 188_160_000

# %% [markdown]
# That is why section 5 converts to `float32` before dividing: a `float64` copy would
# take 376 MB, only for Keras to convert it to `float32` again.
#
# `reshape` in section 7 copied nothing: `flat_x` is a *view* that reads the same
# memory as `train_x`, row after row, which `np.shares_memory` confirms.

# %%
assert np.shares_memory(flat_x, train_x)

# %% [markdown]
# Section 5.1 found $\sigma$ from the 256 counts. The usual `train_x.std()` would
# first build $x_i - \mu$ for every pixel, a second 188 MB array, for a moment. The
# same $\sigma$ also follows from two sums, with no copy:
#
# $$
# \sigma = \sqrt{\frac{1}{N}\sum_{i=1}^{N} x_i^2 - \mu^2} .
# $$
#
# `np.einsum("nij,nij->n", x, x)` multiplies each pixel by itself and adds up the 784
# squares of each image, without storing the squares.


# %%
def std_from_sums(images: np.ndarray) -> float:
    """Return the standard deviation of all pixels, from sums (no copy of images)."""
    mean = images.mean(dtype=np.float64)
    squares = np.einsum("nij,nij->n", images, images)
    return float(np.sqrt(squares.mean(dtype=np.float64) / (28 * 28) - mean**2))


# %%
print(f"from sums: {std_from_sums(train_x):.5f}   from the counts: {pixel_std:.5f}")

# %%
np.testing.assert_allclose(std_from_sums(train_x), pixel_std, rtol=1e-5)

# %% [markdown]
# ## What you learned
#
# - MNIST is 70,000 handwritten digits re-mixed from two NIST databases: 60,000 for
#   training and 10,000 for testing, with about 10% of each digit in both.
# - Each image is a 28 × 28 grid of grey levels 0..255 (`uint8`), with a label
#   $y$ from 0 to 9.
# - Four pixels in five are background (0). You scale the grey levels to [0, 1] in
#   `float32`, the type Keras computes in; their mean is then 0.1307 and their
#   standard deviation 0.3081.
# - The arrays stay (n, 28, 28); flattening to 784 numbers, row after row, is the
#   model's first layer, `Flatten`.
#
# ## Try it yourself
#
# - Do **Exercise 1: Explore MNIST** (10 points), which your instructor gives you:
#   part 1 scales and flattens images, part 2 counts the labels, part 3 finds the
#   rarest digit and part 4 averages the images of one digit.
# - Find the training image of each class that is farthest from its class average:
#   with `mean_images`, sum `np.abs(train_x[train_y == d] - mean_images[d])` over
#   each image's pixels, and draw the image with the largest sum for every class with
#   `plots.show_digits`. Are they badly written, or wrongly labelled?
# - Which digit uses the most ink? Compare `train_x[train_y == d].mean()` across the
#   ten classes, then check your answer against the averages of section 6.
