"""Shared set-up: TensorFlow quiet before anything imports it, figures off-screen."""

import matplotlib

from course_utils import repro

matplotlib.use("Agg")
repro.quiet_tensorflow()

# Notebooks under tests/ are fixtures (exercise submissions), not lessons for nbval.
collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]
