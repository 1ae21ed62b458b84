"""Keep ``nbgrader autograde`` from running student code (loaded by nbgrader_config.py).

``nbgrader autograde`` runs a submission's cells in one unconfined kernel, in the same
Python process as the tests: a student cell can rewrite what the tests use, read the
hidden tests in ``source/`` and the gradebook, or write to them. No check of the
student's Python can close that. This course grades with ``python -m grader grade``
(``make grade``) instead: each submission rebuilt from the gradebook, run in an
operating-system sandbox, its tests in a separate kernel (see ``grader/sandbox.py``).

:class:`RefuseAutograde` stops ``nbgrader autograde`` before it runs anything, and says
which command to use. The other nbgrader commands (``generate_assignment``,
``validate``, ``generate_feedback``, ``export``, the formgrader) work as usual.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

MESSAGE = (
    "this course does not grade with `nbgrader autograde` (it runs student code "
    "unsandboxed, beside the tests): run `make grade` or `python -m grader grade "
    "--course notebooks/exercises` from the repository"
)


class RefuseAutograde(NbGraderPreprocessor):
    """Raise before ``nbgrader autograde`` executes a submission."""

    def preprocess(self, nb, resources):
        raise RuntimeError(MESSAGE)
