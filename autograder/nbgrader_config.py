"""nbgrader configuration of the bpkit course (the one place for these settings).

Used by nbgrader's own commands run from this folder (`cd autograder && nbgrader ...`) and loaded
by `python -m autograder`. Paths: env BPKIT_COURSE_DIR (default: <repo>/course) and
BPKIT_SOURCE_DIR (default: <repo>/notebooks); gradebook: env BPKIT_DB_URL (default: SQLite in
<course>/gradebook.db).
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)


_repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_course = os.path.abspath(os.environ.get("BPKIT_COURSE_DIR") or os.path.join(_repo, "course"))
_source = os.path.abspath(os.environ.get("BPKIT_SOURCE_DIR") or os.path.join(_repo, "notebooks"))

os.makedirs(_course, exist_ok=True)  # nbgrader chdirs into the root before anything else
c.CourseDirectory.root = _course
c.CourseDirectory.source_directory = _source  # absolute: nbgrader joins it onto root unchanged
# the gradebook: SQLite in the course folder unless BPKIT_DB_URL names another database (e.g.
# postgresql+psycopg://user:password@host/bpkit, shared by several graders); python -m autograder
# --db-url sets that variable for itself and for the nbgrader steps it runs
c.CourseDirectory.db_url = os.environ.get("BPKIT_DB_URL") or "sqlite:///" + os.path.join(
    _course, "gradebook.db"
)
c.CourseDirectory.course_id = "bpkit"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.json~"]

c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
# no raise in the stub: Run All goes on past an unanswered exercise, whose check says so in one
# line (None answers and functions returning None are NotAnswered, see bpkit.course.checks)
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# grading (nbgrader autograde; python -m autograder grade uses the same numbers as defaults)
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
