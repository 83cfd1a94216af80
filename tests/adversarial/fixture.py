"""A tiny nbgrader source course used to attack the grader.

One assignment, ``tiny``, with three autograded exercises (max score 4):

=============  =========  ======  ===========================================================
exercise       kind       points  what the test cell checks
=============  =========  ======  ===========================================================
``relu``       implement  2       visible ``checks.check_array`` on fixed inputs, then hidden
                                  random inputs compared with ``np.allclose`` (the reference
                                  ``bpkit.relu`` is forbidden while the student code runs)
``dP_dw1``     numeric    1       ``checks.check_number`` (sign-error hint)
``nth_prime``  numeric    1       visible: answered at all; hidden: ``abs(x - 7919) < 0.5``
=============  =========  ======  ===========================================================

The expected answers are facts, not outputs of the code under test: relu(a) = max(a, 0);
dP/dw1 = -11 is the value the fixture states; the 1000th prime is 7919.
The value 7919 appears only in the solution and in the hidden test, so a submission can only
get it by reading instructor files (see the ``read_solution`` case).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ASSIGNMENT = "tiny"
POINTS = {"relu": 2, "dP_dw1": 1, "nth_prime": 1}
MAX_SCORE = sum(POINTS.values())

SETUP = """\
import numpy as np
import bpkit
from bpkit.course import checks
"""

RELU_ANSWER = '''\
def relu(a):
    """Rectified linear unit, elementwise: max(a, 0). a: array of any shape."""
    ### BEGIN SOLUTION
    return np.maximum(a, 0.0)
    ### END SOLUTION
'''

RELU_TEST = """\
a = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
with checks.forbidden(bpkit.relu):
    got = checks.call("relu", relu, a)
checks.check_array("relu", got, np.array([0.0, 0.0, 0.0, 0.5, 3.0]))
### BEGIN HIDDEN TESTS
a2 = np.random.default_rng(7).normal(size=(3, 4))
with checks.forbidden(bpkit.relu):
    got2 = relu(a2)
assert np.allclose(got2, np.where(a2 > 0, a2, 0.0)), "relu: wrong values on random inputs"
### END HIDDEN TESTS
"""

DP_ANSWER = """\
dP_dw1 = None   # replace None with your answer
### BEGIN SOLUTION
dP_dw1 = -11
### END SOLUTION
"""

DP_TEST = """\
checks.check_number("dP_dw1", dP_dw1, -11, hints=[(11, "sign error?")])
"""

PRIME_ANSWER = """\
nth_prime = None   # replace None with the 1000th prime
### BEGIN SOLUTION
nth_prime = 7919
### END SOLUTION
"""

PRIME_TEST = """\
if nth_prime is None:
    raise checks.NotAnswered("nth_prime: replace None with your answer")
### BEGIN HIDDEN TESTS
assert abs(nth_prime - 7919) < 0.5, "nth_prime: not the 1000th prime"
### END HIDDEN TESTS
"""

# Plausible wrong answers (whole answer-cell sources), one per exercise.
WRONG = {
    "relu": "def relu(a):\n    return a\n",
    "dP_dw1": "dP_dw1 = 11\n",
    "nth_prime": "nth_prime = 7907\n",
}


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {
        "schema_version": 3,
        "grade": grade,
        "solution": solution,
        "locked": locked,
        "grade_id": grade_id,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
    """The instructor (source) version of the ``tiny`` assignment, validated."""
    cells = [
        new_markdown_cell(
            "# Tiny fixture\nThree exercises used to test the grader.",
            metadata=_meta("intro", locked=True),
        ),
        new_code_cell(SETUP, metadata=_meta("setup", locked=True)),
        new_markdown_cell("Implement `relu`.", metadata=_meta("relu_text", locked=True)),
        new_code_cell(RELU_ANSWER, metadata=_meta("relu", solution=True)),
        new_code_cell(
            RELU_TEST, metadata=_meta("relu_test", grade=True, locked=True, points=POINTS["relu"])
        ),
        new_markdown_cell("Give dP/dw1.", metadata=_meta("dP_dw1_text", locked=True)),
        new_code_cell(DP_ANSWER, metadata=_meta("dP_dw1", solution=True)),
        new_code_cell(
            DP_TEST, metadata=_meta("dP_dw1_test", grade=True, locked=True, points=POINTS["dP_dw1"])
        ),
        new_markdown_cell("Give the 1000th prime.", metadata=_meta("nth_prime_text", locked=True)),
        new_code_cell(PRIME_ANSWER, metadata=_meta("nth_prime", solution=True)),
        new_code_cell(
            PRIME_TEST,
            metadata=_meta("nth_prime_test", grade=True, locked=True, points=POINTS["nth_prime"]),
        ),
    ]
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(nb)
    return nb


def write_source(source_dir: Path) -> Path:
    """Write ``source_dir/tiny/tiny.ipynb`` and return its path."""
    path = Path(source_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), path)
    return path


_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|\Z)", re.MULTILINE)


def strip_markers(source: str) -> str:
    """A solution cell as a student would write it: the solution without nbgrader's markers."""
    return _MARKERS.sub("", source)
