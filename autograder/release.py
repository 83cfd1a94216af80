"""release: nbgrader generate_assignment, in-process, then strip non-nbgrader cell metadata."""

import io
import logging

import nbformat

from .config import UserError
from .nbtools import strip_foreign_metadata


def generate(course, assignment, log=None):
    """Run nbgrader's generate_assignment for one assignment (also records it in the gradebook)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    course.root.mkdir(parents=True, exist_ok=True)
    cfg = course.config
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    api.log.addHandler(handler)
    try:
        res = api.generate_assignment(assignment, force=True, create=True)
    finally:
        api.log.removeHandler(handler)
    if not res.get("success"):
        raise UserError(
            "generate_assignment %s failed: %s"
            % (assignment, (res.get("error") or res.get("log") or "").strip().splitlines()[-1:])
        )
    folder = course.root / "release" / assignment
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        strip_foreign_metadata(nb)
        nbformat.write(nb, path)
    return folder


def release(course, names, out):
    """Release the named assignments (all when empty); prints one line per assignment."""
    for name in course.check_assignments(names):
        folder = generate(course, name)
        out.write("released %s -> %s\n" % (name, folder))
    return 0
