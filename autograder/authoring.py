"""Authoring helpers for the source notebooks.

    python -m autograder.authoring normalize [NOTEBOOK ...]   (default: every source notebook)

normalize sets, from each cell's nbgrader metadata, what JupyterLab needs for the student:
- locked cells and test cells: ``editable: false`` and ``deletable: false`` (JupyterLab honours
  them, so a student cannot change or remove them by accident);
- answer code cells and test cells: the ``raises-exception`` tag, so Run All goes on past an
  unanswered or failing exercise (the error is still shown, and still fails the test in every
  grading path);
and clears outputs and execution counts. A test checks that every source notebook is normalized.
"""

import sys
from pathlib import Path

import nbformat

from .nbtools import nbg

RUN_ON = "raises-exception"


def normalize(nb):
    """Set the locks and tags above on nb's cells (in place); returns nb."""
    for cell in nb.cells:
        md = nbg(cell)
        meta = cell.setdefault("metadata", {})
        code = cell.get("cell_type") == "code"
        test = code and bool(md.get("grade"))
        answer = code and bool(md.get("solution"))
        if md.get("locked") or test:
            meta["editable"] = False
            meta["deletable"] = False
        else:
            meta.pop("editable", None)
            meta.pop("deletable", None)
        tags = [t for t in meta.get("tags", []) if t != RUN_ON]
        if test or answer:
            tags.append(RUN_ON)
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
        if code:
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def main(argv):
    if not argv or argv[0] != "normalize":
        sys.stderr.write("usage: python -m autograder.authoring normalize [NOTEBOOK ...]\n")
        return 2
    repo = Path(__file__).resolve().parent.parent
    paths = [Path(p) for p in argv[1:]] or sorted(repo.glob("notebooks/*/*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        after = nbformat.writes(normalize(nb))
        if after != before:
            path.write_text(after + "\n" if not after.endswith("\n") else after, encoding="utf-8")
            print(f"normalized {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
