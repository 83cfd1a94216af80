"""Course paths, the gradebook's database URL and the nbgrader configuration (loaded from
autograder/nbgrader_config.py)."""

import contextlib
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
    """Where things are: source notebooks, course state folder, gradebook; nbgrader config.

    The gradebook is SQLite in <course>/gradebook.db unless a database URL is given (`db_url`
    argument, else env BPKIT_DB_URL), e.g.
    postgresql+psycopg://user:password@host:5432/bpkit.
    """

    def __init__(self, course=None, source=None, db_url=None):
        course = course or os.environ.get("BPKIT_COURSE_DIR") or REPO / "course"
        source = source or os.environ.get("BPKIT_SOURCE_DIR") or REPO / "notebooks"
        self.root = Path(course).resolve()
        self.source = Path(source).resolve()
        self._db_url = check_db_url(db_url or os.environ.get("BPKIT_DB_URL") or None)
        self._config = None

    def env(self):
        """The variables nbgrader_config.py reads (one place for the settings), and the venv on
        PATH (nbgrader runs `alembic` by bare name)."""
        env = {"BPKIT_COURSE_DIR": str(self.root), "BPKIT_SOURCE_DIR": str(self.source)}
        if self._db_url:
            env["BPKIT_DB_URL"] = self._db_url
        venv_bin = str(Path(os.sys.executable).parent)
        path = os.environ.get("PATH", "")
        if venv_bin not in path.split(os.pathsep):
            env["PATH"] = venv_bin + os.pathsep + path
        return env

    @contextlib.contextmanager
    def environment(self):
        """os.environ with env() while nbgrader's code runs; as it was afterwards."""
        new = self.env()
        saved = {k: os.environ.get(k) for k in new}
        os.environ.update(new)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @property
    def config(self):
        if self._config is None:
            from traitlets.config.loader import PyFileConfigLoader

            with self.environment():
                loader = PyFileConfigLoader("nbgrader_config.py", path=str(HERE))
                self._config = loader.load_config()
        return self._config

    @property
    def db_url(self):
        """SQLAlchemy URL of the gradebook (what nbgrader's Gradebook and every command use)."""
        return self._db_url or "sqlite:///" + str(self.root / "gradebook.db")

    @property
    def db_shown(self):
        """The database URL for messages: password hidden."""
        from sqlalchemy.engine import make_url

        return make_url(self.db_url).render_as_string(hide_password=True)

    def check_db(self):
        """A database server given by URL must answer now (one-line UserError, not a traceback
        from deep inside a grading run). SQLite files are created on first use: not checked."""
        if not self._db_url or self._db_url.startswith("sqlite"):
            return
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        engine = create_engine(self._db_url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise UserError(
                "cannot use the gradebook database %s: %s"
                % (self.db_shown, reason[0] if reason else type(exc).__name__)
            ) from None
        finally:
            engine.dispose()

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


def check_db_url(url):
    """None, or a database URL SQLAlchemy can parse whose driver is installed; else UserError."""
    if url is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = url.split("@")[-1]  # never print a password
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
        (getattr(dialect, "import_dbapi", None) or dialect.dbapi)()  # SQLAlchemy 2 / 1.4
    except NoSuchModuleError:
        raise UserError("unknown database in URL %r" % shown) from None
    except ArgumentError:
        raise UserError(
            "bad database URL %r (expected e.g. postgresql+psycopg://user:password@host/bpkit "
            "or sqlite:////path/gradebook.db)" % shown
        ) from None
    except ImportError as exc:
        hint = ""
        if parsed.get_backend_name() == "postgresql":
            hint = "pip install 'bpkit[postgres]' (psycopg 3) and use postgresql+psycopg://..."
        raise UserError(
            "database driver missing for %s (%s)%s" % (parsed.drivername, exc, hint and ": " + hint)
        ) from None
    return url
