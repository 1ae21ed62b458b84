"""Helpers shared by the lessons and exercises of the course "ANN with MNIST".

Modules by subject: ``data`` (load and check MNIST), ``plots`` (figures several lessons
draw), ``repro`` (seeds, quiet TensorFlow), ``models`` (the course's network). Importing
``course_utils`` imports none of them, so TensorFlow is never loaded by accident before
``repro.quiet_tensorflow()``.
"""

__version__ = "1.0.0"
