"""Authoring helpers for the source notebooks.

    python -m autograder.authoring new NN_slug "Title" [--source DIR] [--wrong-answers DIR]
    python -m autograder.authoring normalize [NOTEBOOK ...]   (default: every source notebook)

new writes a notebook skeleton that follows AUTHORING.md (learning goals, set-up cell, a
derivation step checked in code, one exercise with answer cell, visible check and hidden tests,
a written answer, a summary; metadata normalized) to <source>/NN_slug/NN_slug.ipynb, with its
recorded wrong answers in <wrong-answers>/NN_slug.json. It passes
``python -m autograder selfcheck NN_slug`` as written; replace the example with your own.

normalize sets, from each cell's nbgrader metadata, what JupyterLab needs for the student:
- locked cells and test cells: ``editable: false`` and ``deletable: false`` (JupyterLab honours
  them, so a student cannot change or remove them by accident);
- answer code cells and test cells: the ``raises-exception`` tag, so Run All goes on past an
  unanswered or failing exercise (the error is still shown, and still fails the test in every
  grading path);
and clears outputs and execution counts. A test checks that every source notebook is normalized.
"""

import argparse
import json
import sys
from pathlib import Path

import nbformat

from .config import ASSIGNMENT_RE, REPO
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


# ----------------------------------------------------------------------------------------------
# python -m autograder.authoring new NN_slug "Title": a notebook skeleton
# ----------------------------------------------------------------------------------------------

SETUP = """\
import numpy as np
import sympy as sp
import matplotlib.pyplot as plt

import bpkit
from bpkit.course import checks

rng = np.random.default_rng({seed})"""

INTRO = """\
# {number} · {title}

**Follows:** name the source text (author, title) and the section or equations this notebook
walks through, in that text's notation.

**Learning goals.** After this notebook you can

1. state the first goal as something the reader can do;
2. state the second goal;
3. connect the result to the other three texts' notation.

Replace the example below (the output delta of Laux eqs 13 and 19) with this notebook's own
steps, exercises and written answers; keep the rhythm: a derivation step checked in code, then
an exercise with its visible check and hidden tests."""

STEP = """\
## 1. A derivation step, checked in code

Laux eq 19 writes the error of a batch as $E = \\tfrac12\\,\\lVert Y - T\\rVert^2$. Its derivative
with respect to one output $y_k$ is eq 13, $\\partial E/\\partial y_k = y_k - t_k$: the factor 2
of the square cancels the $\\tfrac12$. SymPy confirms it."""

STEP_CODE = """\
y, t = sp.symbols("y t", real=True)
E = sp.Rational(1, 2) * (y - t) ** 2
assert sp.diff(E, y) == y - t
sp.diff(E, y)"""

EXERCISE = """\
### Exercise `output_delta` (2 points)

Write `output_delta(Y, T)`: the gradient $\\partial E/\\partial Y$ of Laux eq 19 for outputs `Y`
and targets `T` of shape (N, K), as an array of the same shape. At Laux's worked example
($y = 13$, $t = 1$, sec 5) it is 12."""

ANSWER = '''\
def output_delta(Y, T):
    """dE/dY for E = 1/2 sum (Y - T)^2.

    Y, T: float arrays of shape (N, K). Returns an array of shape (N, K).
    """
    ### BEGIN SOLUTION
    return Y - T
    ### END SOLUTION'''

TEST = """\
with checks.forbidden(bpkit.loss):
    _got = checks.call("output_delta", output_delta, np.array([[13.0]]), np.array([[1.0]]))
checks.check_array(
    "output_delta",
    _got,
    np.array([[checks.sealed("{sealed}")]]),
    hints=[
        (np.array([[-12.0]]), "sign: dE/dy = y - t, not t - y"),
        (np.array([[24.0]]), "factor 2: the 1/2 in E cancels the 2 of the square"),
    ],
)
### BEGIN HIDDEN TESTS
_Y, _T = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
_, _want = bpkit.loss("sse", _Y, _T)  # the reference, outside the forbidden block
with checks.forbidden(bpkit.loss):
    _got = checks.call("output_delta", output_delta, _Y, _T)
checks.check_array("output_delta (other inputs)", _got, _want)
### END HIDDEN TESTS"""

WRITTEN_PROMPT = """\
### Written answer `why_one_half` (1 point)

Why do Laux and Micheli put the factor $\\tfrac12$ in front of the squared error? Would the
trained network be any different without it?"""

WRITTEN = """\
### BEGIN SOLUTION
The $\\tfrac12$ cancels the 2 that differentiating the square brings down, so the output delta is
simply $y_k - t_k$ (Laux eq 13). It changes nothing about where the minimum is: without it every
gradient doubles, which is the same as doubling the learning rate.
### END SOLUTION"""

SUMMARY = """\
## Summary

* The error of the output layer, $\\partial E/\\partial y_k = y_k - t_k$, in each text's notation:

| text | objective | output error signal |
|---|---|---|
| Laux (000) | $E = \\tfrac12\\sum_k (y_k - t_k)^2$ | $\\delta_k = (y_k - t_k)\\,g'(a_k)$ |
| Betke (001) | $P = -\\sum_z (d_z - o_z)^2$, maximised | $\\beta_z = d_z - o_z$ |
| Frermann (002) | $E = \\tfrac{1}{2N}\\sum (y - \\hat y)^2$ | $\\delta = -\\partial E/\\partial z$ |
| Micheli (003) | $E_p = \\tfrac12\\sum_k (d_k - o_k)^2$ | $\\delta_k = (d_k - o_k)\\,f_k'(net_k)$ |

Next: say which notebook comes next and what it builds on."""

WRONG_ANSWERS = {
    "output_delta": [
        {
            "why": "sign error",
            "source": "def output_delta(Y, T):\n    return T - Y",
            "message": "sign",
        },
        {
            "why": "factor 2 kept",
            "source": "def output_delta(Y, T):\n    return 2 * (Y - T)",
            "message": "factor 2",
        },
    ]
}


def _cell(kind, cell_id, source, grade_id, **nbgrader):
    meta = {
        "nbgrader": {
            "schema_version": 3,
            "grade": False,
            "solution": False,
            "locked": False,
            "task": False,
            "grade_id": grade_id,
            **nbgrader,
        }
    }
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata=meta, id=cell_id)


def skeleton(slug, title):
    """A source notebook that follows AUTHORING.md, with one worked example of each part."""
    from bpkit.course.checks import seal

    number = slug.split("_", 1)[0]
    locked = {"locked": True}
    cells = [
        _cell("markdown", "intro", INTRO.format(number=number, title=title), "intro", **locked),
        _cell("code", "setup", SETUP.format(seed=int(number)), "setup", **locked),
        _cell("markdown", "md-01", STEP, "md_01", **locked),
        _cell("code", "code-02", STEP_CODE, "code_02", **locked),
        _cell("markdown", "md-03", EXERCISE, "md_03", **locked),
        _cell("code", "output-delta", ANSWER, "output_delta", solution=True),
        _cell(
            "code",
            "output-delta-test",
            TEST.format(sealed=seal(12.0)),
            "output_delta_test",
            grade=True,
            locked=True,
            points=2,
        ),
        _cell("markdown", "md-04", WRITTEN_PROMPT, "md_04", **locked),
        _cell(
            "markdown", "why-one-half", WRITTEN, "why_one_half", solution=True, grade=True, points=1
        ),
        _cell("markdown", "summary", SUMMARY, "summary", **locked),
    ]
    nb = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
    )
    normalize(nb)
    nbformat.validate(nb)
    return nb


def new(slug, title, source=None, wrong_answers=None):
    """Write <source>/<slug>/<slug>.ipynb and <wrong_answers>/<slug>.json; returns their paths.

    Refuses (ValueError) a slug that is not NN_slug or a notebook or wrong-answers file that
    already exists.
    """
    if not ASSIGNMENT_RE.match(slug):
        raise ValueError(f"{slug!r} is not a notebook name like 10_my_topic (NN_ and lowercase)")
    if not title.strip():
        raise ValueError("the title is empty")
    notebook = Path(source or REPO / "notebooks") / slug / f"{slug}.ipynb"
    wrong = Path(wrong_answers or REPO / "autograder" / "wrong_answers") / f"{slug}.json"
    for path in (notebook, wrong):
        if path.exists():
            raise ValueError(f"{path} exists already; choose another name or remove it")
    text = nbformat.writes(skeleton(slug, title.strip()))
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    wrong.parent.mkdir(parents=True, exist_ok=True)
    wrong.write_text(json.dumps(WRONG_ANSWERS, indent=1) + "\n", encoding="utf-8")
    return notebook, wrong


def main(argv):
    if argv and argv[0] == "new":
        p = argparse.ArgumentParser(prog="python -m autograder.authoring new")
        p.add_argument("slug", metavar="NN_slug")
        p.add_argument("title")
        p.add_argument("--source", help="source notebooks folder (default: <repo>/notebooks)")
        p.add_argument(
            "--wrong-answers", help="wrong answers folder (default: autograder/wrong_answers)"
        )
        args = p.parse_args(argv[1:])
        try:
            notebook, wrong = new(args.slug, args.title, args.source, args.wrong_answers)
        except ValueError as exc:
            sys.stderr.write(f"authoring: error: {exc}\n")
            return 2
        print(f"wrote {notebook}\nwrote {wrong}")
        print(f"next: replace the example, then python -m autograder selfcheck {args.slug}")
        return 0
    if not argv or argv[0] != "normalize":
        sys.stderr.write(
            "usage: python -m autograder.authoring new NN_slug TITLE [--source DIR] "
            "[--wrong-answers DIR]\n"
            "       python -m autograder.authoring normalize [NOTEBOOK ...]\n"
        )
        return 2
    paths = [Path(p) for p in argv[1:]] or sorted(REPO.glob("notebooks/*/*.ipynb"))
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
