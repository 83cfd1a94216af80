"""Course paths and the nbgrader configuration (loaded from autograder/nbgrader_config.py)."""

import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
ASSIGNMENT_RE = re.compile(r"^\d\d_[a-z0-9_]+$")


class UserError(Exception):
    """A mistake in how the tool was called: one line on stderr, exit code 2."""


class Course:
    """Where things are: source notebooks, course state folder, gradebook; nbgrader config."""

    def __init__(self, course=None, source=None):
        course = course or os.environ.get("BPKIT_COURSE_DIR") or REPO / "course"
        source = source or os.environ.get("BPKIT_SOURCE_DIR") or REPO / "notebooks"
        self.root = Path(course).resolve()
        self.source = Path(source).resolve()
        # nbgrader_config.py reads these variables: one place for the settings
        os.environ["BPKIT_COURSE_DIR"] = str(self.root)
        os.environ["BPKIT_SOURCE_DIR"] = str(self.source)
        venv_bin = str(Path(os.sys.executable).parent)
        if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
        self._config = None

    @property
    def config(self):
        if self._config is None:
            from traitlets.config.loader import PyFileConfigLoader

            self._config = PyFileConfigLoader("nbgrader_config.py", path=str(HERE)).load_config()
        return self._config

    @property
    def db_url(self):
        return "sqlite:///" + str(self.root / "gradebook.db")

    def assignments(self):
        """Sorted names of the assignments in the source folder (NN_slug with NN_slug.ipynb)."""
        if not self.source.is_dir():
            return []
        return sorted(
            p.name
            for p in self.source.iterdir()
            if p.is_dir() and any(p.glob("*.ipynb")) and not p.name.startswith(".")
        )

    def notebooks(self, assignment):
        """Names (without .ipynb) of the source notebooks of an assignment, sorted."""
        return sorted(p.stem for p in (self.source / assignment).glob("*.ipynb"))

    def source_path(self, assignment, notebook):
        return self.source / assignment / (notebook + ".ipynb")

    def check_assignments(self, names):
        """Validate assignment names; [] means all. Raises UserError listing the valid ones."""
        valid = self.assignments()
        if not valid:
            raise UserError(
                "no assignments found in %s (expected NN_slug/NN_slug.ipynb)" % self.source
            )
        bad = [n for n in names if n not in valid]
        if bad:
            raise UserError("unknown assignment %s; valid: %s" % (", ".join(bad), ", ".join(valid)))
        return list(names) or valid

    def wrong_answers_path(self, assignment):
        return HERE / "wrong_answers" / (assignment + ".json")
