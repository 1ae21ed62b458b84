# nbgrader configuration of the course's graded exercises. Run nbgrader from this folder
# (`make student`, `make grade` do), or pass --CourseDirectory.root=notebooks/exercises.
#
# source/<assignment>/<assignment>.ipynb: what instructors write, solutions included.
# release/, submitted/, autograded/, feedback/, gradebook.db: generated, ignored by git.
import sys
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    IgnorePattern,
    LimitOutput,
    OverwriteKernelspec,
    SaveAutoGrades,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from grading import GuardUntrustedCells, LimitedExecute, RestoreCells

c = get_config()  # noqa: F821

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.course_id = "ann-with-mnist"

# Student releases: the solution stub, and no hidden tests.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.enforce_metadata = True

# Every cell has this long on a grading kernel (the slowest answer trains for a few
# seconds); a cell that runs longer is interrupted and its tests fail.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# A grading kernel may allocate 4 GiB (the exercises need about 1) and write files of
# 64 MiB at most; beyond that it gets a MemoryError (or OSError), not the machine.
c.LimitedExecute.memory_limit = 4 * 1024**3
c.LimitedExecute.file_size_limit = 64 * 1024**2

# Test cells a student deleted come back from the gradebook, and are graded
# (RestoreCells: nbgrader's OverwriteCells without its crashes, see grading.py).
c.RestoreCells.add_missing_cells = True

c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreCells,
    GuardUntrustedCells,
    CheckCellMetadata,
]
c.Autograde.autograde_preprocessors = [
    LimitedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
