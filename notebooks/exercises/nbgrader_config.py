# nbgrader configuration of the course's graded exercises. Run nbgrader from this folder
# (`make student` does), or pass --CourseDirectory.root=notebooks/exercises.
#
# source/<assignment>/<assignment>.ipynb: what instructors write, solutions included.
# release/, submitted/, autograded/, feedback/, gradebook.db: generated, ignored by git.
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from grading import MESSAGE, RefuseAutograde
from traitlets.config import Application

c = get_config()  # noqa: F821

c.CourseDirectory.root = str(HERE)
c.CourseDirectory.course_id = "ann-with-mnist"

# Student releases: the solution stub, and no hidden tests.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.enforce_metadata = True

# Feedback pages and the formgrader render what students wrote: as text, never as
# script (student Markdown is also made inert when a submission is rebuilt).
c.HTMLExporter.sanitize_html = True

# Grading is `make grade` (python -m grader grade): each submission rebuilt from the
# gradebook and run in a sandbox, with its limits as options (--cell-timeout,
# --total-timeout, --memory). `nbgrader autograde` would run student code unconfined;
# it stops here with a message naming the command to use.
c.Autograde.sanitize_preprocessors = [RefuseAutograde]
c.Autograde.autograde_preprocessors = [RefuseAutograde]

# ... and `nbgrader autograde` from the command line stops here, before it has touched
# autograded/ (nbgrader deletes a student's folder there when a preprocessor fails).
if (
    Application.initialized()
    and type(Application.instance()).__name__ == "AutogradeApp"
):
    sys.exit(f"nbgrader autograde: {MESSAGE}")
