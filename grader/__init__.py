"""The course's autograder: every submission rebuilt, run in an OS sandbox, in parallel.

Apart from ``course_utils`` (which students import), and never imported by student
code. Modules by concern: :mod:`grader.submission` (what a submission is, the notebook
rebuilt from the gradebook), :mod:`grader.sandbox` (the security boundary),
:mod:`grader.execute` and :mod:`grader.bridge` (running a notebook: student code and
tests in separate kernels), :mod:`grader.pipeline` (one submission), :mod:`grader.pool`
(many, on Dask), :mod:`grader.report` and :mod:`grader.cli` (``python -m grader``).
"""
