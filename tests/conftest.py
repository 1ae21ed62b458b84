"""Shared set-up: TensorFlow quiet before anything imports it, figures off-screen."""

import matplotlib

from course_utils import repro

matplotlib.use("Agg")
repro.quiet_tensorflow()
