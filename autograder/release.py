"""release: nbgrader generate_assignment, in-process, then strip non-nbgrader cell metadata."""

import io
import logging
import sys

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
        with course.environment():
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
        nb.metadata["language_info"] = kernel_language_info()
        nb.metadata["kernelspec"] = kernel_spec(nb.metadata.get("kernelspec", {}).get("name"))
        nbformat.write(nb, path)
    return folder


def kernel_language_info():
    """The language_info the Python kernel reports when JupyterLab connects to it.

    JupyterLab writes the kernel's language_info (and its kernelspec) into the notebook on open;
    when the file holds less (the sources keep only {"name": "python"}) or another display name,
    every notebook is marked unsaved before the student has typed anything. Released with the full record, it opens clean (for students on
    the same Python minor release as this one; another version still differs in `version`).
    """
    try:
        from ipykernel.ipkernel import IPythonKernel

        return dict(IPythonKernel.language_info)
    except Exception:  # no ipykernel here: what it would say for this interpreter
        return {
            "name": "python",
            "version": sys.version.split()[0],
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
            "pygments_lexer": "ipython%d" % sys.version_info[0],
            "nbconvert_exporter": "python",
            "file_extension": ".py",
        }


def kernel_spec(name=None):
    """The kernelspec record JupyterLab writes on open, from the installed kernel (python3)."""
    name = name or "python3"
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(name)
        return {"display_name": spec.display_name, "language": spec.language, "name": name}
    except Exception:  # no such kernel here: ipykernel's own record
        return {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def release(course, names, out):
    """Release the named assignments (all when empty); prints one line per assignment."""
    for name in course.check_assignments(names):
        folder = generate(course, name)
        out.write("released %s -> %s\n" % (name, folder))
    return 0
