"""Shared test fixtures: a tiny nbgrader course built in a temp folder, and a CLI runner."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)
# Debian's chromium for every browser test (launched by playwright; never `playwright install`)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def nbg_md(grade_id, **kw):
    """Schema-3 nbgrader cell metadata."""
    md = {
        "schema_version": 3,
        "grade": False,
        "solution": False,
        "locked": False,
        "grade_id": grade_id,
        "task": False,
    }
    md.update(kw)
    return {"nbgrader": md}


def fixture_notebook():
    """Source notebook with a numeric exercise (ex_x, 2 pts), an implement exercise (ex_f, 1 + 2
    hidden pts) and a written answer (why, 1 pt). Needs no bpkit."""
    cells = [
        new_markdown_cell("# Fixture course", metadata=nbg_md("intro", locked=True)),
        new_code_cell(
            "import numpy as np\nclass NotAnswered(AssertionError):\n    pass",
            metadata=nbg_md("setup", locked=True),
        ),
        new_code_cell(
            "x = None  # replace None with your answer\n"
            "### BEGIN SOLUTION\nx = 2\n### END SOLUTION",
            metadata=nbg_md("ex_x", solution=True),
        ),
        new_code_cell(
            "if x is None:\n    raise NotAnswered('ex_x: replace None with your answer')\n"
            "assert x == 2, 'ex_x: expected 2, got %r (sign?)' % (x,)\nprint('ex_x: correct')\n"
            "### BEGIN HIDDEN TESTS\nassert 3 * x == 6\n### END HIDDEN TESTS",
            metadata=nbg_md("ex_x_test", grade=True, locked=True, points=2),
        ),
        new_code_cell(
            'def f(a):\n    """Twice a."""\n    ### BEGIN SOLUTION\n    return 2 * a\n'
            "    ### END SOLUTION",
            metadata=nbg_md("ex_f", solution=True),
        ),
        new_code_cell(
            "assert f(1) == 2, 'ex_f: f(1) should be 2'",
            metadata=nbg_md("ex_f_test", grade=True, locked=True, points=1),
        ),
        new_code_cell(
            "### BEGIN HIDDEN TESTS\nassert np.allclose(f(np.arange(3.0)), [0, 2, 4])\n"
            "### END HIDDEN TESTS",
            metadata=nbg_md("ex_f_test2", grade=True, locked=True, points=2),
        ),
        new_markdown_cell(
            "Why is f linear?\n\n### BEGIN SOLUTION\nBecause 2(a+b) = 2a + 2b.\n### END SOLUTION",
            metadata=nbg_md("why", solution=True, grade=True, points=1),
        ),
    ]
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.validate(nb)
    return nb


FIXTURE_WRONG = {
    "ex_x": [{"why": "sign error", "source": "x = -2"}],
    "ex_f": [
        {"why": "forgot the factor 2", "source": "def f(a):\n    return a"},
        {"why": "right on 1 only", "source": "def f(a):\n    return 2"},
    ],
}


class FixtureCourse:
    def __init__(self, root):
        self.root = Path(root)
        self.source = self.root / "src"
        self.course = self.root / "course"
        self.wrong = self.root / "wrong"
        self.assignment = "01_fix"
        (self.source / self.assignment).mkdir(parents=True)
        self.wrong.mkdir()
        self.src_nb = fixture_notebook()
        nbformat.write(self.src_nb, self.source / self.assignment / "01_fix.ipynb")
        (self.wrong / "01_fix.json").write_text(json.dumps(FIXTURE_WRONG))

    def args(self):
        return [
            "--course",
            str(self.course),
            "--source",
            str(self.source),
            "--wrong-answers",
            str(self.wrong),
        ]


def run_cli(*args, timeout=600, env=None, cwd=None):
    """Run `python -m autograder ARGS`; returns CompletedProcess with text stdout/stderr.
    The environment is the one every grader subprocess of the tests gets (harness.grader_env)."""
    from adversarial.harness import grader_env

    full_env = grader_env()
    full_env["PYTHONPATH"] = str(REPO)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "autograder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or REPO,
    )


@pytest.fixture(scope="session")
def fixture_course(tmp_path_factory):
    """A released fixture course (source, course state and wrong answers in a temp folder)."""
    fc = FixtureCourse(tmp_path_factory.mktemp("fixture_course"))
    proc = run_cli(*fc.args(), "release")
    assert proc.returncode == 0, proc.stderr
    fc.release_nb = nbformat.read(fc.course / "release" / "01_fix" / "01_fix.ipynb", as_version=4)
    return fc


def series_notebooks():
    """Paths of notebooks/NN_slug/NN_slug.ipynb present in the repo."""
    return sorted(
        p
        for p in (REPO / "notebooks").glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
        if p.stem == p.parent.name
    )
